//! The wire format (PROFILE.md sections 1, 2, 5, 7, 8, 9) on `tls_codec` with the MLS
//! variable-size vectors. Decoding is strict: every entry point here rejects non-minimal
//! length prefixes, the `11` prefix, truncation, trailing bytes, option bytes other than 0/1,
//! flag bytes other than 0/1, unknown enum values and the size limits.

pub mod content;
pub mod event;
pub mod flag;
pub mod keys;
pub mod room_file;
pub mod transport;
pub mod vector;

use crate::error::{MimiError, Result};
use tls_codec::{DeserializeBytes, Serialize};
use vector::Opaque;

/// Decode a whole top-level struct: no trailing bytes allowed.
pub fn decode_exact<T: DeserializeBytes>(data: &[u8]) -> Result<T> {
    Ok(T::tls_deserialize_exact_bytes(data)?)
}

/// Encode into a fresh buffer. Only lengths past 2^30 can fail, which the size limits exclude
/// for everything that was validated; the error is still returned rather than unwrapped.
pub fn encode<T: Serialize + tls_codec::Size>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(value.tls_serialized_len());
    value.tls_serialize(&mut out)?;
    Ok(out)
}

/// Append one field's encoding to `out` (used to build the derived forms).
pub fn put<T: Serialize>(out: &mut Vec<u8>, value: &T) -> Result<()> {
    value.tls_serialize(out)?;
    Ok(())
}

/// ASCII/UTF-8 text carried in an `opaque<V>`.
pub fn text(what: &str, bytes: &Opaque) -> Result<String> {
    String::from_utf8(bytes.as_slice().to_vec()).map_err(|_| MimiError::malformed(format!("{what} is not UTF-8 text")))
}

pub fn text_ref<'a>(what: &str, bytes: &'a Opaque) -> Result<&'a str> {
    std::str::from_utf8(bytes.as_slice()).map_err(|_| MimiError::malformed(format!("{what} is not UTF-8 text")))
}

pub fn vl(s: impl AsRef<[u8]>) -> Opaque {
    Opaque::new(s.as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_rules() {
        // minimal: 0x25 is one byte; the two-byte form of the same length is refused.
        let ok: Opaque = decode_exact(&[0x01, 0xAA]).unwrap();
        assert_eq!(ok.as_slice(), &[0xAA]);
        assert!(decode_exact::<Opaque>(&[0x40, 0x01, 0xAA]).is_err());
        assert!(decode_exact::<Opaque>(&[0xC0, 0, 0, 0, 0, 0, 0, 1, 0xAA]).is_err());
        assert!(decode_exact::<Opaque>(&[0x02, 0xAA]).is_err()); // past the end
        assert!(decode_exact::<Opaque>(&[0x01, 0xAA, 0x00]).is_err()); // trailing
    }
}
