//! The request/response bodies of PROFILE.md section 7 and the `Error` body. The first byte
//! picks the decoder (`mimi_fuzz::TRANSPORT_DECODERS`, modulo 7); the rest is its input.
//! Whatever decodes must re-encode to exactly the input, and every event inside a response
//! must satisfy the event invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_signaling::wire::transport::*;
use mimi_signaling::wire::vector::VarVec;
use mimi_signaling::wire::{decode_exact, encode, vl};

fn canonical<T: tls_codec::Serialize + tls_codec::Size>(value: &T, input: &[u8], what: &str) {
    assert_eq!(encode(value).expect("encodes"), input, "{what}: encode(decode(x)) != x");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    match selector as usize % mimi_fuzz::TRANSPORT_DECODERS.len() {
        0 => {
            if let Ok((room_id, event_id)) = GetEventRequest::decode_checked(body) {
                canonical(&GetEventRequest { room_id: vl(&room_id), event_id: vl(&event_id) }, body, "GetEventRequest");
            }
        }
        1 => {
            if let Ok((room_id, t, sk)) = GetStateRequest::decode_checked(body) {
                canonical(&GetStateRequest { room_id: vl(&room_id), event_type: vl(&t), state_key: vl(&sk) }, body, "GetStateRequest");
            }
        }
        2 => {
            if let Ok((room_id, before, limit)) = BackfillRequest::decode_checked(body) {
                assert!((1..=MAX_BACKFILL_LIMIT).contains(&limit));
                canonical(&BackfillRequest { room_id: vl(&room_id), before: vl(&before), limit }, body, "BackfillRequest");
            }
        }
        3 => {
            if let Ok(events) = BackfillResponse::decode_checked(body) {
                assert!(events.len() <= MAX_BACKFILL_LIMIT as usize);
                for ev in &events {
                    mimi_fuzz::check_event(ev, None);
                }
                canonical(&BackfillResponse { events: VarVec(events) }, body, "BackfillResponse");
            }
        }
        4 => {
            if let Ok(room_id) = SnapshotRequest::decode_checked(body) {
                canonical(&SnapshotRequest { room_id: vl(&room_id) }, body, "SnapshotRequest");
            }
        }
        5 => {
            if let Ok((state, auth_chain, latest)) = SnapshotResponse::decode_checked(body) {
                for ev in state.iter().chain(auth_chain.iter()) {
                    mimi_fuzz::check_event(ev, None);
                }
                let r = SnapshotResponse { state: VarVec(state), auth_chain: VarVec(auth_chain), latest: vl(&latest) };
                canonical(&r, body, "SnapshotResponse");
            }
        }
        _ => {
            let raw = decode_exact::<ErrorBody>(body);
            match ErrorBody::decode_checked(body) {
                Ok((code, message)) => {
                    let raw = raw.expect("decode_checked ok but the raw ErrorBody does not decode");
                    assert_eq!(raw.code, code);
                    if std::str::from_utf8(raw.message.as_slice()).is_ok() {
                        canonical(&ErrorBody { code, message: vl(&message) }, body, "ErrorBody");
                    } else {
                        assert!(message.contains('\u{FFFD}'), "non-UTF-8 message not marked as lossy");
                    }
                }
                Err(_) => assert!(raw.is_err(), "the raw ErrorBody decodes but decode_checked fails"),
            }
        }
    }
});
