//! `Event::decode`: strict decoding of a fully-formed event, then every invariant of
//! `mimi_fuzz::check_event` (canonical encoding, reference hash, redaction, limited form).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_signaling::wire::event::Event;

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = Event::decode(data) {
        mimi_fuzz::check_event(&ev, Some(data));
    }
});
