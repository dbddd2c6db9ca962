//! The room export file (PROFILE.md section 9): `MIMIROOM`, `uint16 version = 1`, then records
//! `struct { uint8 kind; opaque body<V>; }` to the end: kind 1 `ServerKeys` (all before the
//! first event), kind 2 `Event`, in room order. Read as a stream so memory stays bounded.

use super::event::MAX_EVENT_SIZE;
use super::keys::{ServerKeys, MAX_SERVER_KEYS_SIZE};
use super::vector::write_len;
use crate::error::{MimiError, Result};
use std::io::{BufReader, Read};

pub const MAGIC: &[u8; 8] = b"MIMIROOM";
pub const VERSION: u16 = 1;
pub const KIND_SERVER_KEYS: u8 = 1;
pub const KIND_EVENT: u8 = 2;

pub fn header() -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&VERSION.to_be_bytes());
    out
}

/// Bytes of one record: the kind, the varint length prefix, the body.
pub fn record_size(body_len: usize) -> usize {
    1 + crate::wire::vector::prefix_len(body_len) + body_len
}

pub fn record(kind: u8, body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(kind);
    write_len(&mut out, body.len())?;
    out.extend_from_slice(body);
    Ok(out)
}

pub struct RoomFileReader<R: Read> {
    reader: BufReader<R>,
    pending_event: Option<Vec<u8>>,
    pub server_keys: Vec<ServerKeys>,
    pub events_read: u64,
    finished: bool,
    /// An error met after some events of a chunk were read: those are returned first, so
    /// that a bad record is reported with its index only after the events before it.
    deferred_error: Option<MimiError>,
    /// The kind byte of the record being read: a record that fails after a kind other than
    /// `ServerKeys` is the first event's (its error is the event's, not the keys section's).
    current_kind: Option<u8>,
}

fn read_exact_or_eof<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(MimiError::malformed("room file is truncated")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(MimiError::new(crate::error::ErrorCode::Internal, format!("reading the room file: {e}"))),
        }
    }
    Ok(true)
}

impl<R: Read> RoomFileReader<R> {
    /// Read the header and every leading `ServerKeys` record.
    pub fn open(inner: R) -> Result<Self> {
        let mut reader = BufReader::with_capacity(1 << 20, inner);
        let mut head = [0u8; 10];
        if !read_exact_or_eof(&mut reader, &mut head)? || &head[..8] != MAGIC {
            return Err(MimiError::malformed("not a room file (no MIMIROOM header)"));
        }
        let version = u16::from_be_bytes([head[8], head[9]]);
        if version != VERSION {
            return Err(MimiError::new(crate::error::ErrorCode::UnsupportedVersion, format!("room file version {version} is not supported")));
        }
        let mut this = RoomFileReader {
            reader,
            pending_event: None,
            server_keys: vec![],
            events_read: 0,
            finished: false,
            deferred_error: None,
            current_kind: None,
        };
        loop {
            let next = match this.next_record() {
                Ok(next) => next,
                // The keys section ended and the first event's record is bad: the file opens,
                // and reading events reports the error as event 0's.
                Err(e) if this.current_kind.is_some_and(|kind| kind != KIND_SERVER_KEYS) => {
                    this.deferred_error = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            };
            match next {
                None => break,
                Some((KIND_SERVER_KEYS, body)) => this.server_keys.push(ServerKeys::decode(&body).map_err(|e| e.context("ServerKeys record"))?),
                Some((_, body)) => {
                    this.pending_event = Some(body);
                    break;
                }
            }
        }
        Ok(this)
    }

    fn next_record(&mut self) -> Result<Option<(u8, Vec<u8>)>> {
        let r = self.next_record_inner();
        if r.is_err() {
            // After a bad record nothing that follows can be framed reliably.
            self.finished = true;
        }
        r
    }

    fn next_record_inner(&mut self) -> Result<Option<(u8, Vec<u8>)>> {
        if self.finished {
            return Ok(None);
        }
        let mut kind = [0u8; 1];
        if !read_exact_or_eof(&mut self.reader, &mut kind)? {
            self.finished = true;
            return Ok(None);
        }
        let kind = kind[0];
        self.current_kind = Some(kind);
        let limit = match kind {
            KIND_SERVER_KEYS => MAX_SERVER_KEYS_SIZE,
            KIND_EVENT => MAX_EVENT_SIZE,
            other => return Err(MimiError::malformed(format!("unknown room file record kind {other}"))),
        };
        let mut first = [0u8; 1];
        if !read_exact_or_eof(&mut self.reader, &mut first)? {
            return Err(MimiError::malformed("room file is truncated"));
        }
        let width = match first[0] >> 6 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => return Err(MimiError::malformed("record length prefix starts with the reserved bits 11")),
        };
        let mut prefix = vec![first[0]];
        if width > 1 {
            let mut more = vec![0u8; width - 1];
            if !read_exact_or_eof(&mut self.reader, &mut more)? {
                return Err(MimiError::malformed("room file is truncated"));
            }
            prefix.extend_from_slice(&more);
        }
        let (len, _) = super::vector::read_len(&prefix)?;
        if len > limit {
            return Err(MimiError::too_large(format!("room file record of {len} bytes, the limit for kind {kind} is {limit}")));
        }
        let mut body = vec![0u8; len];
        if len > 0 && !read_exact_or_eof(&mut self.reader, &mut body)? {
            return Err(MimiError::malformed("room file is truncated"));
        }
        Ok(Some((kind, body)))
    }

    /// Up to `max` encoded events; empty at the end. A `ServerKeys` record after the first event
    /// is malformed.
    pub fn read_events(&mut self, max: usize) -> Result<Vec<Vec<u8>>> {
        if let Some(e) = self.deferred_error.take() {
            return Err(e);
        }
        let mut out = Vec::with_capacity(max.min(65_536));
        if let Some(e) = self.pending_event.take() {
            out.push(e);
        }
        while out.len() < max {
            let next = match self.next_record() {
                Ok(r) => r,
                Err(e) if out.is_empty() => return Err(e),
                Err(e) => {
                    self.deferred_error = Some(e);
                    break;
                }
            };
            match next {
                None => break,
                Some((KIND_EVENT, body)) => out.push(body),
                Some((_, _)) => {
                    let e = MimiError::malformed(format!(
                        "ServerKeys record after event {} (all keys must come before the first event)",
                        self.events_read + out.len() as u64
                    ));
                    self.finished = true;
                    if out.is_empty() {
                        return Err(e);
                    }
                    self.deferred_error = Some(e);
                    break;
                }
            }
        }
        self.events_read += out.len() as u64;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    //! The framing of PROFILE.md section 9, read back from bytes written here.
    use super::*;
    use super::super::vector::Opaque;
    use crate::error::ErrorCode;
    use tls_codec::Serialize;

    /// RFC 8032 test 1's public key: a canonical point of large order.
    const PUBLIC_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn server_keys(name: &str) -> Vec<u8> {
        let key = super::super::keys::VerifyKey {
            key_id: Opaque::from("ed25519:k1"),
            public_key: Opaque::new(hex::decode(PUBLIC_KEY).unwrap()),
            expired_ts: 0,
        };
        let keys = ServerKeys { server_name: Opaque::from(name), keys: vec![key].into() };
        keys.tls_serialize_detached().unwrap()
    }

    fn file(records: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = header();
        for (kind, body) in records {
            out.extend(record(*kind, body).unwrap());
        }
        out
    }

    fn open(bytes: &[u8]) -> Result<RoomFileReader<&[u8]>> {
        RoomFileReader::open(bytes)
    }

    #[test]
    fn header_is_magic_then_version_one() {
        assert_eq!(header(), b"MIMIROOM\x00\x01");
    }

    #[test]
    fn record_is_kind_then_minimal_length_prefix() {
        assert_eq!(record(KIND_EVENT, b"abc").unwrap(), b"\x02\x03abc");
        let long = vec![7u8; 300];
        let framed = record(KIND_EVENT, &long).unwrap();
        assert_eq!(&framed[..3], &[2, 0x41, 0x2c]); // 300 = 0x012c, two-byte prefix 01...
        assert_eq!(framed.len(), 303);
    }

    #[test]
    fn keys_then_events_are_read_back_in_chunks() {
        let keys = server_keys("hub.example");
        let events: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10 + i as usize]).collect();
        let mut records: Vec<(u8, &[u8])> = vec![(KIND_SERVER_KEYS, &keys)];
        records.extend(events.iter().map(|e| (KIND_EVENT, e.as_slice())));
        let bytes = file(&records);
        let mut reader = open(&bytes).unwrap();
        assert_eq!(reader.server_keys.len(), 1);
        assert_eq!(reader.server_keys[0].server_name_str(), "hub.example");
        assert_eq!(reader.read_events(2).unwrap(), events[..2].to_vec());
        assert_eq!(reader.read_events(10).unwrap(), events[2..].to_vec());
        assert!(reader.read_events(10).unwrap().is_empty());
        assert_eq!(reader.events_read, 5);
    }

    #[test]
    fn a_file_without_the_magic_is_malformed() {
        let err = open(b"MIMIRUM\x00\x00\x01").err().unwrap();
        assert_eq!(err.code, ErrorCode::Malformed);
        assert_eq!(open(b"MIMI").err().unwrap().code, ErrorCode::Malformed);
        assert_eq!(open(b"").err().unwrap().code, ErrorCode::Malformed);
    }

    #[test]
    fn another_version_is_unsupported() {
        let err = open(b"MIMIROOM\x00\x02").err().unwrap();
        assert_eq!(err.code, ErrorCode::UnsupportedVersion);
    }

    #[test]
    fn an_unknown_record_kind_is_malformed_as_the_first_event() {
        let bytes = file(&[(3, b"x")]);
        let mut reader = open(&bytes).unwrap();
        assert_eq!(reader.read_events(10).err().unwrap().code, ErrorCode::Malformed);
    }

    #[test]
    fn a_bad_first_event_record_opens_and_fails_as_event_zero() {
        let keys = server_keys("hub.example");
        let mut bytes = file(&[(KIND_SERVER_KEYS, &keys)]);
        bytes.extend_from_slice(&[KIND_EVENT, 0xc0]); // reserved prefix bits on event 0's record
        let mut reader = open(&bytes).unwrap();
        assert_eq!(reader.server_keys.len(), 1);
        assert_eq!(reader.read_events(10).err().unwrap().code, ErrorCode::Malformed);
        assert_eq!(reader.events_read, 0);
    }

    #[test]
    fn a_truncated_record_is_malformed_after_the_events_before_it() {
        let mut bytes = file(&[(KIND_EVENT, b"first"), (KIND_EVENT, b"second")]);
        bytes.truncate(bytes.len() - 2);
        let mut reader = open(&bytes).unwrap();
        assert_eq!(reader.read_events(10).unwrap(), vec![b"first".to_vec()]);
        assert_eq!(reader.read_events(10).err().unwrap().code, ErrorCode::Malformed);
        assert!(reader.read_events(10).unwrap().is_empty(), "nothing is framed after a bad record");
    }

    #[test]
    fn the_reserved_length_prefix_is_malformed() {
        let mut bytes = file(&[(KIND_EVENT, b"ok")]);
        bytes.extend_from_slice(&[KIND_EVENT, 0xc0, 0, 0, 0, 0, 0, 0, 1]);
        let mut reader = open(&bytes).unwrap();
        assert_eq!(reader.read_events(10).unwrap(), vec![b"ok".to_vec()]);
        assert_eq!(reader.read_events(10).err().unwrap().code, ErrorCode::Malformed);
    }

    #[test]
    fn an_event_record_past_the_event_limit_is_too_large_before_it_is_read() {
        let mut bytes = file(&[(KIND_EVENT, b"ok")]);
        bytes.push(KIND_EVENT);
        super::super::vector::write_len(&mut bytes, MAX_EVENT_SIZE + 1).unwrap();
        // No body follows: the length alone refuses it, so nothing of it is allocated or read.
        let mut reader = open(&bytes).unwrap();
        assert_eq!(reader.read_events(10).unwrap(), vec![b"ok".to_vec()]);
        assert_eq!(reader.read_events(10).err().unwrap().code, ErrorCode::TooLarge);
    }

    #[test]
    fn server_keys_after_the_first_event_are_malformed() {
        let keys = server_keys("hub.example");
        let bytes = file(&[(KIND_EVENT, b"e0"), (KIND_SERVER_KEYS, &keys), (KIND_EVENT, b"e1")]);
        let mut reader = open(&bytes).unwrap();
        assert!(reader.server_keys.is_empty());
        assert_eq!(reader.read_events(10).unwrap(), vec![b"e0".to_vec()]);
        let err = reader.read_events(10).err().unwrap();
        assert_eq!(err.code, ErrorCode::Malformed);
        assert!(err.to_string().contains("after event 1"), "{err}");
    }

    #[test]
    fn a_bad_server_keys_record_fails_the_open() {
        let bytes = file(&[(KIND_SERVER_KEYS, b"\x01")]);
        assert_eq!(open(&bytes).err().unwrap().code, ErrorCode::Malformed);
    }
}
