//! `mimi.signaling.batch`: `BatchRequest::decode_checked` (what the server does with a batch
//! body) and `BatchResponse::decode_checked` (what the client does with the answer). The first
//! byte picks the decoder (even: request, odd: response with `data[1]` results expected).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_signaling::error::ErrorCode;
use mimi_signaling::wire::transport::*;
use mimi_signaling::wire::{decode_exact, encode};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    if selector % 2 == 0 {
        match BatchRequest::decode_checked(body) {
            Ok(entries) => {
                assert!((1..=MAX_BATCH_ENTRIES).contains(&entries.len()), "a batch of {} entries decoded", entries.len());
                assert!(entries.iter().all(|(t, _)| t != BATCH && !t.is_empty() && t.len() <= 255), "a nested or empty type decoded");
                // Canonical: the checked entries encode back to the very bytes.
                assert_eq!(BatchRequest::encode_checked(entries).expect("decoded entries encode"), body, "encode(decode(x)) != x");
            }
            Err(e) => {
                // A well-formed batch refused for its contents is refused with a typed code,
                // never anything the caller would read as a verdict on one entry.
                assert!(
                    matches!(e.code, ErrorCode::Malformed | ErrorCode::TooLarge | ErrorCode::UnsupportedVersion),
                    "unexpected code {:?}",
                    e.code
                );
                if decode_exact::<BatchRequest>(body).is_ok() {
                    assert_ne!(e.code, ErrorCode::TooLarge, "a body under 16 MiB was too_large");
                }
            }
        }
    } else {
        let Some((&expected, body)) = body.split_first() else { return };
        if let Ok(results) = BatchResponse::decode_checked(body, expected as usize) {
            assert_eq!(results.len(), expected as usize);
            assert!(results.iter().all(|(s, _)| *s == 200 || (400..=599).contains(s)));
            let raw: BatchResponse = decode_exact(body).expect("checked implies raw decode");
            assert_eq!(encode(&raw).expect("encodes"), body, "encode(decode(x)) != x");
        }
    }
});
