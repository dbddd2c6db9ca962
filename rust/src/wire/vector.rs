//! Strict RFC 9420 variable-size vectors for `tls_codec`'s traits and derives.
//!
//! Why not `tls_codec::VLBytes` / `Vec<T>` directly: in tls_codec 0.4 the varint reader has
//! `debug_assert!`s that panic (instead of returning an error) on the `11` prefix and on a
//! length past the end of the input in debug builds, and `Vec<T>` does not check that the
//! elements end exactly at the declared length (an element may run past it and the encoding is
//! then not canonical). These two types keep tls_codec's wire rules (minimal 1/2/4-byte
//! prefix, 30-bit maximum) and make every violation an `Err`.

use std::fmt;
use std::io::Write;
use std::ops::Deref;
use tls_codec::{DeserializeBytes, Error, Serialize, Size};

pub const MAX_VECTOR_LEN: usize = (1 << 30) - 1;

/// Bytes needed for the minimal length prefix of `len`.
pub fn prefix_len(len: usize) -> usize {
    if len <= 0x3f {
        1
    } else if len <= 0x3fff {
        2
    } else {
        4
    }
}

/// Read a minimal varint length prefix; returns (length, rest).
pub fn read_len(bytes: &[u8]) -> Result<(usize, &[u8]), Error> {
    let first = *bytes.first().ok_or(Error::EndOfStream)?;
    let width = match first >> 6 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => return Err(Error::DecodingError("length prefix starts with the reserved bits 11".into())),
    };
    if bytes.len() < width {
        return Err(Error::EndOfStream);
    }
    let mut len = (first & 0x3f) as usize;
    for b in &bytes[1..width] {
        len = (len << 8) | *b as usize;
    }
    if prefix_len(len) != width {
        return Err(Error::DecodingError(format!("non-minimal length prefix ({width} bytes for length {len})")));
    }
    Ok((len, &bytes[width..]))
}

pub fn write_len<W: Write>(w: &mut W, len: usize) -> Result<usize, Error> {
    if len > MAX_VECTOR_LEN {
        return Err(Error::InvalidVectorLength);
    }
    let width = prefix_len(len);
    let tag: u32 = match width {
        1 => 0,
        2 => 0x4000,
        _ => 0x8000_0000,
    };
    let v = (len as u32) | tag;
    let bytes = v.to_be_bytes();
    w.write_all(&bytes[4 - width..])?;
    Ok(width)
}

/// Split a vector body of exactly the declared length off the front of `bytes`.
fn take_body(bytes: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let (len, rest) = read_len(bytes)?;
    if rest.len() < len {
        return Err(Error::EndOfStream);
    }
    Ok(rest.split_at(len))
}

/// `opaque x<V>`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Opaque(pub Vec<u8>);

impl Opaque {
    pub fn new(v: Vec<u8>) -> Self {
        Opaque(v)
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Opaque {
    fn from(s: &str) -> Self {
        Opaque(s.as_bytes().to_vec())
    }
}

impl From<&[u8]> for Opaque {
    fn from(s: &[u8]) -> Self {
        Opaque(s.to_vec())
    }
}

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) if s.bytes().all(|b| (0x20..0x7f).contains(&b)) => write!(f, "{s:?}"),
            _ => write!(f, "0x{}", self.0.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        }
    }
}

impl Size for Opaque {
    fn tls_serialized_len(&self) -> usize {
        prefix_len(self.0.len()) + self.0.len()
    }
}

impl Serialize for Opaque {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, Error> {
        OpaqueRef(&self.0).tls_serialize(w)
    }
}

impl DeserializeBytes for Opaque {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), Error> {
        let (body, rest) = take_body(bytes)?;
        Ok((Opaque(body.to_vec()), rest))
    }
}

/// A borrowed `opaque<V>` for building derived forms without copying.
pub struct OpaqueRef<'a>(pub &'a [u8]);

impl Size for OpaqueRef<'_> {
    fn tls_serialized_len(&self) -> usize {
        prefix_len(self.0.len()) + self.0.len()
    }
}

impl Serialize for OpaqueRef<'_> {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, Error> {
        let n = write_len(w, self.0.len())?;
        w.write_all(self.0)?;
        Ok(n + self.0.len())
    }
}

/// `T x<V>`: the length prefix counts bytes, and the elements must fill exactly that many.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct VarVec<T>(pub Vec<T>);

impl<T> Deref for VarVec<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T: fmt::Debug> fmt::Debug for VarVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T> From<Vec<T>> for VarVec<T> {
    fn from(v: Vec<T>) -> Self {
        VarVec(v)
    }
}

impl<T: Size> Size for VarVec<T> {
    fn tls_serialized_len(&self) -> usize {
        let body: usize = self.0.iter().map(Size::tls_serialized_len).sum();
        prefix_len(body) + body
    }
}

impl<T: Serialize + Size> Serialize for VarVec<T> {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, Error> {
        let body: usize = self.0.iter().map(Size::tls_serialized_len).sum();
        let mut n = write_len(w, body)?;
        for e in &self.0 {
            n += e.tls_serialize(w)?;
        }
        Ok(n)
    }
}

impl<T: DeserializeBytes> DeserializeBytes for VarVec<T> {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), Error> {
        let (mut body, rest) = take_body(bytes)?;
        let mut out = Vec::new();
        while !body.is_empty() {
            let (e, r) = T::tls_deserialize_bytes(body)?;
            if r.len() >= body.len() {
                // An element of zero encoded size would loop forever.
                return Err(Error::DecodingError("empty vector element".into()));
            }
            body = r;
            out.push(e);
        }
        Ok((VarVec(out), rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(len: usize) -> Vec<u8> {
        let mut v = vec![];
        write_len(&mut v, len).unwrap();
        v
    }

    #[test]
    fn prefixes() {
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(63), [0x3f]);
        assert_eq!(enc(64), [0x40, 0x40]);
        assert_eq!(enc(16383), [0x7f, 0xff]);
        assert_eq!(enc(16384), [0x80, 0x00, 0x40, 0x00]);
        assert_eq!(enc(MAX_VECTOR_LEN), [0xbf, 0xff, 0xff, 0xff]);
        assert!(write_len(&mut vec![], MAX_VECTOR_LEN + 1).is_err());
        assert_eq!(read_len(&[0x40, 0x25]).unwrap_err(), Error::DecodingError("non-minimal length prefix (2 bytes for length 37)".into()));
        assert!(read_len(&[0xc0, 0, 0, 0, 0, 0, 0, 1]).is_err());
        assert!(read_len(&[0x80, 0]).is_err());
        assert!(read_len(&[]).is_err());
    }

    #[test]
    fn vec_elements_must_fill_the_declared_length() {
        // vector body declared 2 bytes, but the opaque element inside claims 3
        let bytes = [0x02, 0x03, 0xaa, 0xbb, 0xcc];
        assert!(VarVec::<Opaque>::tls_deserialize_exact_bytes(&bytes).is_err());
        let ok = [0x04, 0x03, 0xaa, 0xbb, 0xcc];
        let v = VarVec::<Opaque>::tls_deserialize_exact_bytes(&ok).unwrap();
        assert_eq!(v.0, vec![Opaque(vec![0xaa, 0xbb, 0xcc])]);
    }

    #[test]
    fn truncated_opaque_is_an_error_not_a_panic() {
        assert_eq!(Opaque::tls_deserialize_bytes(&[0x05, 1, 2]).unwrap_err(), Error::EndOfStream);
    }
}
