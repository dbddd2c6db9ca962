//! `TransactionEnvelope::decode`, then the payload through the decoder its transaction type
//! names (what the server's dispatcher does with a request body).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_signaling::error::ErrorCode;
use mimi_signaling::wire::event::{Event, LimitedEvent};
use mimi_signaling::wire::keys::ServerKeys;
use mimi_signaling::wire::transport::*;
use mimi_signaling::wire::encode;

fuzz_target!(|data: &[u8]| {
    let env = match TransactionEnvelope::decode(data) {
        Ok(env) => env,
        Err(e) => {
            if data.len() >= 2 && u16::from_be_bytes([data[0], data[1]]) != PROTOCOL_VERSION {
                assert_eq!(e.code, ErrorCode::UnsupportedVersion, "another version must be unsupported_version");
            }
            return;
        }
    };
    assert_eq!(env.version, PROTOCOL_VERSION);
    assert_eq!(encode(&env).expect("envelope encodes"), data, "encode(TransactionEnvelope::decode(x)) != x");
    let t = std::str::from_utf8(env.transaction_type.as_slice()).expect("decoded transaction type is UTF-8");
    assert!(!t.is_empty() && t.len() <= 255);
    let body = env.serialized_transaction.as_slice();
    match t {
        "mimi.signaling.submit" => {
            if let Ok(ev) = LimitedEvent::decode(body) {
                mimi_fuzz::check_limited(&ev, body);
            }
        }
        "mimi.signaling.deliver" => {
            if let Ok(ev) = Event::decode(body) {
                mimi_fuzz::check_event(&ev, Some(body));
            }
        }
        "mimi.signaling.get_event" => drop(GetEventRequest::decode_checked(body)),
        "mimi.signaling.get_state" => drop(GetStateRequest::decode_checked(body)),
        "mimi.signaling.backfill" => drop(BackfillRequest::decode_checked(body)),
        "mimi.signaling.snapshot" => drop(SnapshotRequest::decode_checked(body)),
        "mimi.signaling.keys" => drop(ServerKeys::decode(body)),
        BATCH => drop(BatchRequest::decode_checked(body)),
        _ => {}
    }
});
