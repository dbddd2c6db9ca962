//! `VerifyKey::decode` (first byte even) and `ServerKeys::decode` (first byte odd). What
//! decodes must re-encode to the input and go into a `KeyRing` without error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_signaling::crypto::keyring::KeyRing;
use mimi_signaling::wire::encode;
use mimi_signaling::wire::keys::{ServerKeys, VerifyKey};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    if selector % 2 == 0 {
        if let Ok(key) = VerifyKey::decode(body) {
            assert_eq!(encode(&key).expect("encodes"), body, "encode(VerifyKey::decode(x)) != x");
            let mut ring = KeyRing::new();
            ring.add("example.org", &key).expect("a decoded VerifyKey goes into a key ring");
            assert!(ring.lookup("example.org", key.key_id_str()).is_some());
        }
    } else if let Ok(keys) = ServerKeys::decode(body) {
        assert_eq!(encode(&keys).expect("encodes"), body, "encode(ServerKeys::decode(x)) != x");
        let mut ring = KeyRing::new();
        ring.add_server_keys(&keys).expect("decoded ServerKeys go into a key ring");
        assert_eq!(ring.keys_of(keys.server_name_str()).len(), keys.keys.len(), "a key went missing");
        for k in keys.keys.iter() {
            assert!(ring.lookup(keys.server_name_str(), k.key_id_str()).is_some());
        }
    }
});
