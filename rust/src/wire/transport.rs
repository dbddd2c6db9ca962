//! Transport structs (PROFILE.md section 7): the envelope, the request/response bodies and the
//! `Error` body.

use super::event::Event;
use super::vector::{Opaque, VarVec};
use super::{decode_exact, text_ref};
use crate::error::{ErrorCode, MimiError, Result};
use crate::ids;
use tls_codec::{TlsDeserializeBytes, TlsSerialize, TlsSize};

pub const PROTOCOL_VERSION: u16 = 1;
pub const MAX_BACKFILL_LIMIT: u16 = 1000;

pub const TRANSACTION_TYPES: [&str; 7] = [
    "mimi.signaling.submit",
    "mimi.signaling.deliver",
    "mimi.signaling.get_event",
    "mimi.signaling.get_state",
    "mimi.signaling.backfill",
    "mimi.signaling.snapshot",
    "mimi.signaling.keys",
];

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct TransactionEnvelope {
    pub version: u16,
    pub transaction_type: Opaque,
    pub serialized_transaction: Opaque,
}

impl TransactionEnvelope {
    /// The version is checked first so that a future version's body is not misread as malformed.
    pub fn decode(data: &[u8]) -> Result<Self> {
        if data.len() >= 2 {
            let version = u16::from_be_bytes([data[0], data[1]]);
            if version != PROTOCOL_VERSION {
                return Err(MimiError::new(
                    ErrorCode::UnsupportedVersion,
                    format!("protocol version {version} is not supported (this server speaks 1)"),
                ));
            }
        }
        let env: Self = decode_exact(data)?;
        let t = text_ref("transaction_type", &env.transaction_type)?;
        if t.is_empty() || t.len() > ids::MAX_ID_SIZE {
            return Err(MimiError::malformed("transaction_type must be 1-255 bytes"));
        }
        Ok(env)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct ErrorBody {
    pub code: u16,
    pub message: Opaque,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct GetEventRequest {
    pub room_id: Opaque,
    pub event_id: Opaque,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct GetStateRequest {
    pub room_id: Opaque,
    pub event_type: Opaque,
    pub state_key: Opaque,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct BackfillRequest {
    pub room_id: Opaque,
    pub before: Opaque,
    pub limit: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct BackfillResponse {
    pub events: VarVec<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct SnapshotRequest {
    pub room_id: Opaque,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct SnapshotResponse {
    pub state: VarVec<Event>,
    pub auth_chain: VarVec<Event>,
    pub latest: Opaque,
}

fn room_id(o: &Opaque) -> Result<String> {
    let s = text_ref("room_id", o)?;
    ids::parse_room_id(s)?;
    Ok(s.to_string())
}

fn event_id(what: &str, o: &Opaque) -> Result<String> {
    let s = text_ref(what, o)?;
    ids::validate_event_id(s).map_err(|e| e.context(what))?;
    Ok(s.to_string())
}

/// Every event inside a response gets the same checks as a top-level one.
fn validate_events(events: &[Event]) -> Result<()> {
    for (i, e) in events.iter().enumerate() {
        e.validate().map_err(|err| err.context(&format!("event {i}")))?;
        if super::encode(e)?.len() > super::event::MAX_EVENT_SIZE {
            return Err(MimiError::too_large(format!("event {i} is larger than 65,536 bytes")));
        }
    }
    Ok(())
}

impl GetEventRequest {
    pub fn decode_checked(data: &[u8]) -> Result<(String, String)> {
        let r: Self = decode_exact(data)?;
        Ok((room_id(&r.room_id)?, event_id("event_id", &r.event_id)?))
    }
}

impl GetStateRequest {
    pub fn decode_checked(data: &[u8]) -> Result<(String, String, String)> {
        let r: Self = decode_exact(data)?;
        let t = text_ref("type", &r.event_type)?;
        ids::validate_event_type(t)?;
        let sk = text_ref("state_key", &r.state_key)?;
        if sk.len() > ids::MAX_ID_SIZE {
            return Err(MimiError::too_large("state key longer than 255 bytes"));
        }
        Ok((room_id(&r.room_id)?, t.to_string(), sk.to_string()))
    }
}

impl BackfillRequest {
    pub fn decode_checked(data: &[u8]) -> Result<(String, String, u16)> {
        let r: Self = decode_exact(data)?;
        if r.limit == 0 || r.limit > MAX_BACKFILL_LIMIT {
            return Err(MimiError::malformed(format!("backfill limit must be 1-{MAX_BACKFILL_LIMIT}, got {}", r.limit)));
        }
        Ok((room_id(&r.room_id)?, event_id("before", &r.before)?, r.limit))
    }
}

impl BackfillResponse {
    pub fn decode_checked(data: &[u8]) -> Result<Vec<Event>> {
        let r: Self = decode_exact(data)?;
        if r.events.len() > MAX_BACKFILL_LIMIT as usize {
            return Err(MimiError::too_large("backfill response holds more than 1000 events"));
        }
        validate_events(&r.events)?;
        Ok(r.events.0)
    }
}

impl SnapshotRequest {
    pub fn decode_checked(data: &[u8]) -> Result<String> {
        let r: Self = decode_exact(data)?;
        room_id(&r.room_id)
    }
}

impl SnapshotResponse {
    pub fn decode_checked(data: &[u8]) -> Result<(Vec<Event>, Vec<Event>, String)> {
        let r: Self = decode_exact(data)?;
        validate_events(&r.state)?;
        validate_events(&r.auth_chain)?;
        let latest = event_id("latest", &r.latest)?;
        Ok((r.state.0, r.auth_chain.0, latest))
    }
}

impl ErrorBody {
    pub fn decode_checked(data: &[u8]) -> Result<(u16, String)> {
        let r: Self = decode_exact(data)?;
        Ok((r.code, String::from_utf8_lossy(r.message.as_slice()).into_owned()))
    }
}
