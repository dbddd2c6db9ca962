//! `byte granted`: a `uint8` that MUST be 0 or 1 (PROFILE.md section 1).

use tls_codec::{DeserializeBytes, Error, Serialize, Size};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flag(pub bool);

impl Size for Flag {
    fn tls_serialized_len(&self) -> usize {
        1
    }
}

impl Serialize for Flag {
    fn tls_serialize<W: std::io::Write>(&self, writer: &mut W) -> Result<usize, Error> {
        (self.0 as u8).tls_serialize(writer)
    }
}

impl DeserializeBytes for Flag {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), Error> {
        let (b, rest) = u8::tls_deserialize_bytes(bytes)?;
        match b {
            0 => Ok((Flag(false), rest)),
            1 => Ok((Flag(true), rest)),
            other => Err(Error::DecodingError(format!("a boolean byte must be 0 or 1, got {other}"))),
        }
    }
}
