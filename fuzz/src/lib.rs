//! Invariants shared by the fuzz targets in `fuzz_targets/`.
//!
//! Every target feeds arbitrary bytes to one decoder of the core and, for anything that
//! decodes, checks what must hold for every valid value: the encoding is canonical (encoding
//! the decoded value gives back the input bytes), decoding is stable (decode(encode(v)) == v),
//! and the derived computations (hashes, redaction, limited form) succeed and agree with each
//! other. A broken invariant is a panic, which libFuzzer reports as a crash.

use mimi_signaling::crypto::hash::event_id_from_reference_hash;
use mimi_signaling::crypto::keyring::KeyRing;
use mimi_signaling::ids;
use mimi_signaling::verify::{prepare, reference_hash};
use mimi_signaling::wire::content::REGISTERED_TYPES;
use mimi_signaling::wire::event::{Event, LimitedEvent, MAX_EVENT_SIZE};
use mimi_signaling::wire::keys::VerifyKey;
use mimi_signaling::wire::vector::Opaque;
use mimi_signaling::wire::vl;
use std::sync::OnceLock;

/// The golden servers of `shared/vectors/mimi_events.json` (server name, key ID, public key).
/// Copied here so that the targets need no file at run time; the seeds are signed by them.
pub const GOLDEN_SERVERS: [(&str, &str, &str); 2] = [
    ("hub.test", "ed25519:hubkey", "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"),
    ("follower.test", "ed25519:f1", "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"),
];

/// Selector bytes of the `transport` target (first input byte modulo the count).
pub const TRANSPORT_DECODERS: [&str; 7] = [
    "get_event_request",
    "get_state_request",
    "backfill_request",
    "backfill_response",
    "snapshot_request",
    "snapshot_response",
    "error_body",
];

/// Event types of the `content` target beyond the core's registry: one non-`m.` type (opaque
/// content) and one unregistered `m.` type.
const EXTRA_CONTENT_TYPES: [&str; 2] = ["org.example.thing", "m.room.unknown"];

/// How many event types the `content` target picks from.
pub const CONTENT_TYPE_COUNT: usize = REGISTERED_TYPES.len() + EXTRA_CONTENT_TYPES.len();

/// Event type `i` of the `content` target (the first input byte modulo
/// [`CONTENT_TYPE_COUNT`]): the registry of PROFILE.md section 5 in the core's order, then
/// the extras.
pub fn content_type(i: usize) -> &'static str {
    let i = i % CONTENT_TYPE_COUNT;
    REGISTERED_TYPES.get(i).copied().unwrap_or_else(|| EXTRA_CONTENT_TYPES[i - REGISTERED_TYPES.len()])
}

/// Findings that are already reported and not yet fixed in the core, by tag (see
/// docs/FUZZING.md, "Findings"). Listing a tag in the `MIMI_FUZZ_KNOWN` environment variable
/// (comma-separated) makes the targets step over that one finding so that a long campaign can
/// look for others. CI never sets it: a known finding still fails `scripts/fuzz-smoke.sh`.
pub fn known(tag: &str) -> bool {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN
        .get_or_init(|| {
            std::env::var("MIMI_FUZZ_KNOWN")
                .unwrap_or_default()
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .iter()
        .any(|t| t == tag)
}

/// F1: `Event::decode` accepts an `m.room.user` event whose content is not a `UserContent`,
/// but redaction (and so the reference hash, the event ID and `prepare`) needs to parse it.
pub const F1_UNPARSABLE_USER_CONTENT: &str = "F1";

/// F2: `batch::check_events` drops an event's origin-signature checks when the hub's key
/// lookup fails, so a bad content hash is reported instead of the bad origin signature that
/// `verify::verify_event` (and the profile's order) puts first.
pub const F2_BATCH_SKIPS_ORIGIN_CHECK: &str = "F2";

/// True when `ev` hits finding F1 and F1 is listed as known.
pub fn skip_f1(ev: &Event) -> bool {
    known(F1_UNPARSABLE_USER_CONTENT) && ev.origin().redacted_content().is_err()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex literal")).collect()
}

/// A key ring holding the golden servers' keys, built once per process.
pub fn golden_keyring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let mut ring = KeyRing::new();
        for (server, key_id, public_key) in GOLDEN_SERVERS {
            let key = VerifyKey { key_id: vl(key_id), public_key: Opaque::new(unhex(public_key)), expired_ts: 0 };
            ring.add(server, &key).expect("golden key is valid");
        }
        ring
    })
}

/// Everything that must hold for an `Event` that decoded. `input` is the bytes it was decoded
/// from, when the caller has them on their own (events inside a response are checked through
/// the response's own round trip).
pub fn check_event(ev: &Event, input: Option<&[u8]>) {
    let bytes = ev.encode().expect("a decoded event encodes");
    if let Some(input) = input {
        assert_eq!(bytes, input, "encode(Event::decode(x)) != x: the encoding is not canonical");
    }
    assert!(bytes.len() <= MAX_EVENT_SIZE, "a decoded event is larger than the event size limit");
    let again = Event::decode(&bytes).expect("a re-encoded event decodes");
    assert_eq!(&again, ev, "decode(encode(ev)) != ev");
    if skip_f1(ev) {
        return;
    }

    // Event::decode(x) ok => reference hash (and so the event ID) computable.
    let hash = reference_hash(ev).expect("Event::decode ok but the reference hash is not computable");
    let prepared = prepare(ev.clone()).expect("Event::decode ok but prepare() fails");
    assert_eq!(prepared.reference_hash, hash, "prepare() and reference_hash() disagree");
    assert_eq!(prepared.event_id, event_id_from_reference_hash(&hash));
    ids::validate_event_id(&prepared.event_id).expect("a computed event ID passes the event ID grammar");

    // The derived forms share the head and end with the content hash; the content-hash input
    // is the head of the encoding itself.
    let origin = ev.origin();
    assert!(bytes.starts_with(&origin.content_hash_input().expect("content-hash input")), "content-hash input is not the head of the encoding");
    let redacted_content = origin.redacted_content().expect("redacted content of a decoded event");
    let signed = origin.origin_signed_form(&redacted_content, &ev.origin_content_hash).expect("origin-signed form");
    let reference_input = ev.reference_hash_input(&redacted_content).expect("reference-hash input");
    assert!(reference_input.starts_with(&signed[..signed.len() - 32]), "reference-hash input and origin-signed form differ in the head");
    assert_eq!(&signed[signed.len() - 32..], &ev.origin_content_hash[..]);
    assert_eq!(&reference_input[reference_input.len() - 32..], &ev.origin_content_hash[..]);

    // Redaction keeps the ID, is idempotent, never grows the event, and its result decodes.
    let redacted = ev.redacted().expect("a decoded event can be redacted");
    assert_eq!(redacted.content.as_slice(), &redacted_content[..]);
    let redacted_bytes = redacted.encode().expect("a redacted event encodes");
    assert!(redacted_bytes.len() <= bytes.len(), "redaction made the event larger");
    let redacted_again = Event::decode(&redacted_bytes).expect("a redacted event decodes");
    assert_eq!(reference_hash(&redacted_again).expect("reference hash of the redacted event"), hash, "redaction changed the event ID");
    assert_eq!(redacted_again.redacted().expect("redacting twice"), redacted_again, "redaction is not idempotent");
    if prepared.redacted {
        assert_eq!(ev.content.as_slice(), &redacted_content[..], "flagged redacted but the content is not its redacted form");
    }

    // The limited form decodes and rebuilds the same event.
    let limited = ev.limited();
    let limited_bytes = limited.encode().expect("the limited form encodes");
    let limited_again = LimitedEvent::decode(&limited_bytes).expect("the limited form of a decoded event decodes");
    assert_eq!(limited_again, limited);
    let rebuilt = limited_again.into_event(ev.auth_events.clone(), ev.prev_event.clone(), ev.hub_signature.clone());
    assert_eq!(&rebuilt, ev, "limited + hub fields != event");
}

/// Everything that must hold for a `LimitedEvent` that decoded from `input`.
pub fn check_limited(ev: &LimitedEvent, input: &[u8]) {
    let bytes = ev.encode().expect("a decoded limited event encodes");
    assert_eq!(bytes, input, "encode(LimitedEvent::decode(x)) != x: the encoding is not canonical");
    let again = LimitedEvent::decode(&bytes).expect("a re-encoded limited event decodes");
    assert_eq!(&again, ev);
    let origin = ev.origin();
    let content_input = origin.content_hash_input().expect("content-hash input");
    // The content-hash input is the encoding's head: everything before origin_content_hash.
    assert!(input.starts_with(&content_input), "content-hash input is not the head of the encoding");
    assert_eq!(&input[content_input.len()..content_input.len() + 32], &ev.origin_content_hash[..]);
}
