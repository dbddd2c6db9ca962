//! The full path of one event: `batch::decode_and_prepare`, then `verify::verify_event`
//! against a key ring of the golden servers, cross-checked with the batch path
//! (`batch::check_events`), the chain validator and, for a good event, `verify_limited` on its
//! limited form. The seeds are the golden events, so mutations start from valid signatures.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_signaling::batch::{check_events, decode_and_prepare, ChainValidator};
use mimi_signaling::crypto::keyring::KeyRing;
use mimi_signaling::error::{ErrorCode, MimiError};
use mimi_signaling::ids::server_of;
use mimi_signaling::verify::Prepared;
use mimi_signaling::verify::{verify_event, verify_limited};
use mimi_signaling::wire::event::Event;

/// F2 (see `mimi_fuzz::F2_BATCH_SKIPS_ORIGIN_CHECK`): origin signature bad, hub key unknown.
fn skip_f2(p: &Prepared, single: &MimiError, ring: &KeyRing) -> bool {
    mimi_fuzz::known(mimi_fuzz::F2_BATCH_SKIPS_ORIGIN_CHECK)
        && single.message.starts_with("origin_signature")
        && ring.tasks("hub_signature", server_of(p.event.room_id_str()), &p.event.hub_signature).is_err()
}

fuzz_target!(|data: &[u8]| {
    let decoded = Event::decode(data);
    let prepared = decode_and_prepare(data);
    let p = match (decoded, prepared) {
        (Ok(ev), Ok(p)) => {
            assert_eq!(p.event, ev);
            p
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "Event::decode and decode_and_prepare fail differently");
            return;
        }
        (Ok(ev), Err(_)) if mimi_fuzz::skip_f1(&ev) => return,
        (Ok(_), Err(e)) => panic!("Event::decode ok but decode_and_prepare fails: {e}"),
        (Err(e), Ok(_)) => panic!("Event::decode fails ({e}) but decode_and_prepare succeeds"),
    };
    let ring = mimi_fuzz::golden_keyring();
    let single = verify_event(&p, ring);
    let batch = check_events(&[data], ring).pop().expect("one outcome per event");
    match (&single, &batch) {
        (Ok(()), Ok(b)) => assert_eq!(b.event_id, p.event_id),
        (Err(a), Err(b)) if a.code != b.code && skip_f2(&p, a, ring) => {}
        (Err(a), Err(b)) => assert_eq!(
            a.code, b.code,
            "verify_event and check_events report different errors: {a} / {b}"
        ),
        (a, b) => panic!("verify_event ({a:?}) and check_events ({:?}) disagree", b.as_ref().map(|p| &p.event_id)),
    }

    // A verified event's limited form is what its origin submitted: it verifies unless the
    // event arrived redacted (then only the content hash differs).
    if single.is_ok() {
        let limited = verify_limited(&p.event.limited(), ring);
        if p.redacted {
            assert_eq!(limited.map_err(|e| e.code), Err(ErrorCode::BadContentHash), "redacted event: limited form");
        } else {
            limited.expect("a verified, unredacted event's limited form verifies");
        }
    }

    // As the first event of a chain: valid exactly when it verifies and has no prev_event.
    let mut chain = ChainValidator::new(ring.clone());
    let (valid, failure) = chain.validate(&[data]);
    let expect_ok = single.is_ok() && p.event.prev_event.as_slice().is_empty();
    assert_eq!(failure.is_none(), expect_ok, "chain validator disagrees with verify_event: {failure:?}");
    assert_eq!(valid.len(), expect_ok as usize);
});
