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
        let mut this = RoomFileReader { reader, pending_event: None, server_keys: vec![], events_read: 0, finished: false, deferred_error: None };
        loop {
            match this.next_record()? {
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
