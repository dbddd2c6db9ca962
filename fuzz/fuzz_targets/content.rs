//! Content decoders of the registered event types: `validate_content(type, bytes)` for every
//! type of the registry (plus an opaque non-`m.` type and an unregistered `m.` type), the typed
//! decoders behind it (`CreateContent`, `UserContent`, `TextContent`, `JoinRulesContent`,
//! `HistoryVisibilityContent`, `RoleContent::decode`, `RoleMapContent::decode`) and
//! `redact_content`. The first byte picks the type (`mimi_fuzz::content_type`, modulo 12).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_signaling::redaction::{kept, redact_content, Kept};
use mimi_signaling::wire::content::*;
use mimi_signaling::wire::{decode_exact, encode};
use std::collections::HashSet;

fn canonical<T: tls_codec::Serialize + tls_codec::Size>(value: &T, input: &[u8], what: &str) {
    assert_eq!(encode(value).expect("encodes"), input, "{what}: encode(decode(x)) != x");
}

/// The typed decoder of `t` must agree with `validate_content` and be canonical.
fn typed_round_trip(t: &str, content: &[u8], valid: bool) {
    let typed_ok = match t {
        "m.room.create" => CreateContent::decode(content).map(|c| canonical(&c, content, t)).is_ok(),
        "m.room.user" => decode_exact::<UserContent>(content).map(|c| canonical(&c, content, t)).is_ok(),
        _ if is_text_type(t) => content.is_empty() || decode_exact::<TextContent>(content).map(|c| canonical(&c, content, t)).is_ok(),
        "m.room.join_rules" => decode_exact::<JoinRulesContent>(content).map(|c| canonical(&c, content, t)).is_ok(),
        "m.room.history_visibility" => {
            decode_exact::<HistoryVisibilityContent>(content).map(|c| canonical(&c, content, t)).is_ok()
        }
        "m.room.role" => match RoleContent::decode(content) {
            Ok(c) => {
                canonical(&c, content, t);
                let mut tags = HashSet::new();
                assert!(c.permissions.iter().all(|p| tags.insert(p.tag())), "m.room.role with a repeated tag decoded");
                true
            }
            Err(_) => false,
        },
        "m.room.role_map" => match RoleMapContent::decode(content) {
            Ok(c) => {
                canonical(&c, content, t);
                let mut ids = HashSet::new();
                let mut orders = HashSet::new();
                for r in c.roles.iter() {
                    assert!(ids.insert(r.role_id.as_slice()), "m.room.role_map with a repeated role ID decoded");
                    assert!(orders.insert(r.order), "m.room.role_map with a repeated order decoded");
                    let mut users = HashSet::new();
                    assert!(
                        r.user_ids.iter().all(|u| users.insert(u.as_slice())),
                        "m.room.role_map listing a user twice in one role decoded"
                    );
                }
                true
            }
            Err(_) => false,
        },
        // opaque (m.room.encrypted, non-m. types) or refused (unregistered m. types)
        _ => return,
    };
    assert_eq!(typed_ok, valid, "{t}: validate_content and the typed decoder disagree");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, content)) = data.split_first() else { return };
    let t = mimi_fuzz::content_type(selector as usize);
    let valid = validate_content(t, content).is_ok();
    typed_round_trip(t, content, valid);
    if t == "m.room.unknown" {
        assert!(!valid, "an unregistered m. type was accepted");
    }
    let redacted = redact_content(t, content);
    if !valid {
        return;
    }
    // Valid content: its redacted form exists, is valid content of the same type, is a fixed
    // point of redaction, and is the content itself where the type keeps everything.
    let redacted = redacted.expect("valid content can be redacted");
    validate_content(t, &redacted).expect("redacted content is valid content");
    assert_eq!(&*redact_content(t, &redacted).expect("redacting twice"), &*redacted, "redaction is not idempotent");
    match kept(t) {
        Kept::Everything => assert_eq!(&*redacted, content),
        Kept::Nothing => assert!(redacted.is_empty()),
        Kept::Participation => assert_eq!(redacted.len(), 2),
    }
});
