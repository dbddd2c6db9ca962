//! SHA-256 hashes and event IDs (PROFILE.md section 2): small pure functions.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// URL-safe unpadded base64 (RFC 4648 section 5).
pub fn base64url_encode(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Strict decoding: no padding, canonical trailing bits.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// `"$"` + base64url(reference hash): 44 ASCII characters.
pub fn event_id_from_reference_hash(reference_hash: &[u8; 32]) -> String {
    let mut id = String::with_capacity(44);
    id.push('$');
    URL_SAFE_NO_PAD.encode_string(reference_hash, &mut id);
    id
}

/// A store's 64-bit lookup key of an event ID (``storage/base.py``'s ``id_key``): the first 8
/// bytes of the SHA-256 of its UTF-8, as a signed big-endian integer (SQL's signed BIGINT).
/// Not a protocol fact: a lookup also compares the whole ID, so colliding keys only cost a read.
pub fn event_key(event_id: &str) -> i64 {
    let digest = sha256(event_id.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 has 8 leading bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_key_is_the_leading_bytes_signed() {
        // sha256("abc") = ba7816bf8f01cfea...: negative as a signed integer.
        assert_eq!(event_key("abc"), i64::from_be_bytes([0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea]));
        assert!(event_key("abc") < 0);
    }

    #[test]
    fn event_id_shape() {
        let id = event_id_from_reference_hash(&[0u8; 32]);
        assert_eq!(id.len(), 44);
        assert_eq!(id, "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert!(base64url_decode("AAB=").is_none()); // padding refused
        assert!(base64url_decode("AAB").is_none()); // non-canonical trailing bits
    }
}
