//! `RoomFileReader::open` + `read_events` on an in-memory room file, then the import path:
//! the file's `ServerKeys` into a key ring and its events through `ChainValidator`.
//! Invariants: reading ends, chunks respect their size, an error ends the stream, a file that
//! reads without error is rebuilt byte for byte from what was read, and a chain failure's
//! index is right after the valid prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_signaling::batch::ChainValidator;
use mimi_signaling::crypto::keyring::KeyRing;
use mimi_signaling::wire::encode;
use mimi_signaling::wire::event::MAX_EVENT_SIZE;
use mimi_signaling::wire::room_file::{header, record, RoomFileReader, KIND_EVENT, KIND_SERVER_KEYS};

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = RoomFileReader::open(data) else { return };
    // Chunk size from the length, so the same input always reads the same way.
    let chunk = 1 + data.len() % 5;
    let mut events: Vec<Vec<u8>> = Vec::new();
    let mut failed = false;
    let mut ended = false;
    // Every non-empty chunk consumes at least one record of at least two bytes.
    for _ in 0..=data.len() {
        match reader.read_events(chunk) {
            Ok(batch) if batch.is_empty() => {
                ended = true;
                break;
            }
            Ok(batch) => {
                assert!(batch.len() <= chunk, "read_events returned more than asked");
                for e in batch {
                    assert!(e.len() <= MAX_EVENT_SIZE, "an event record past the size limit was returned");
                    events.push(e);
                }
            }
            Err(_) => {
                failed = true;
                let after = reader.read_events(chunk).expect("after an error the stream ends cleanly");
                assert!(after.is_empty(), "events returned after an error");
                ended = true;
                break;
            }
        }
    }
    assert!(ended, "read_events did not reach the end");
    assert_eq!(reader.events_read as usize, events.len());

    if !failed {
        let mut rebuilt = header();
        for k in &reader.server_keys {
            rebuilt.extend(record(KIND_SERVER_KEYS, &encode(k).expect("ServerKeys encodes")).expect("record"));
        }
        for e in &events {
            rebuilt.extend(record(KIND_EVENT, e).expect("record"));
        }
        assert_eq!(rebuilt, data, "a room file that reads cleanly is not rebuilt byte for byte");
    }

    let mut ring = KeyRing::new();
    for k in &reader.server_keys {
        ring.add_server_keys(k).expect("decoded ServerKeys go into a key ring");
    }
    let mut validator = ChainValidator::new(ring);
    let mut start = 0usize;
    for part in events.chunks(4) {
        let refs: Vec<&[u8]> = part.iter().map(Vec::as_slice).collect();
        let (valid, failure) = validator.validate(&refs);
        if let Some(f) = failure {
            assert_eq!(f.index as usize, start + valid.len(), "chain failure index is not after the valid prefix");
            break;
        }
        assert_eq!(valid.len(), part.len());
        start += part.len();
        assert_eq!(validator.next_index as usize, start);
    }
});
