//! `LimitedEvent::decode` (what a follower submits), then the canonical round trip and the
//! hub's first check, one by one (`verify::verify_limited`) and batched
//! (`batch::verify_limited_events`), against the golden key ring: both must give the same
//! verdict and error code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_signaling::batch::verify_limited_events;
use mimi_signaling::verify::verify_limited;
use mimi_signaling::wire::event::LimitedEvent;

fuzz_target!(|data: &[u8]| {
    let Ok(ev) = LimitedEvent::decode(data) else { return };
    mimi_fuzz::check_limited(&ev, data);
    let ring = mimi_fuzz::golden_keyring();
    let single = verify_limited(&ev, ring).err().map(|e| e.code);
    let batch = verify_limited_events(&[&ev], ring).pop().expect("one verdict per event").map(|e| e.code);
    assert_eq!(single, batch, "verify_limited and verify_limited_events disagree");
});
