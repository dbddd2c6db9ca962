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

/// `mimi.signaling.batch` (PROFILE.md section 7): "A batch carries 1 to 1,024 transactions of
/// the other types (no batch inside a batch; the body at most 16 MiB)".
pub const BATCH: &str = "mimi.signaling.batch";
pub const MAX_BATCH_ENTRIES: usize = 1024;
pub const MAX_BATCH_BODY: usize = 16 * 1024 * 1024;

pub const TRANSACTION_TYPES: [&str; 8] = [
    "mimi.signaling.submit",
    "mimi.signaling.deliver",
    "mimi.signaling.get_event",
    "mimi.signaling.get_state",
    "mimi.signaling.backfill",
    "mimi.signaling.snapshot",
    "mimi.signaling.keys",
    BATCH,
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

/// `struct { TransactionEnvelope transactions<V>; }`: the request of `mimi.signaling.batch`.
#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct BatchRequest {
    pub transactions: VarVec<TransactionEnvelope>,
}

/// `struct { uint16 status; opaque body<V>; } BatchResult;`: "the HTTP status and body that
/// transaction would have had alone".
#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct BatchResult {
    pub status: u16,
    pub body: Opaque,
}

/// `struct { BatchResult results<V>; }`: the 200 response of `mimi.signaling.batch`.
#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct BatchResponse {
    pub results: VarVec<BatchResult>,
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

fn check_batch_size(len: usize, what: &str) -> Result<()> {
    if len > MAX_BATCH_BODY {
        return Err(MimiError::too_large(format!("{what} of {len} bytes exceeds 16 MiB")));
    }
    Ok(())
}

fn check_batch_count(count: usize) -> Result<()> {
    if count == 0 || count > MAX_BATCH_ENTRIES {
        return Err(MimiError::malformed(format!("a batch holds 1-{MAX_BATCH_ENTRIES} transactions, not {count}")));
    }
    Ok(())
}

/// The checks every entry of a batch gets, on both sides: "transactions of the other types (no
/// batch inside a batch)"; a type that is not text, empty or too long is a malformed batch;
/// an entry of another version is refused with the batch (DECISIONS.md: a batch speaks one
/// version). Unknown but well-formed types are left to the dispatcher, which answers that
/// entry alone, as it would a single request.
fn check_batch_entry(i: usize, env: &TransactionEnvelope) -> Result<&str> {
    if env.version != PROTOCOL_VERSION {
        return Err(MimiError::new(
            ErrorCode::UnsupportedVersion,
            format!("batch entry {i}: protocol version {} is not supported (this server speaks 1)", env.version),
        ));
    }
    let t = text_ref("transaction_type", &env.transaction_type).map_err(|e| e.context(&format!("batch entry {i}")))?;
    if t.is_empty() || t.len() > ids::MAX_ID_SIZE {
        return Err(MimiError::malformed(format!("batch entry {i}: transaction_type must be 1-255 bytes")));
    }
    if t == BATCH {
        return Err(MimiError::malformed(format!("batch entry {i} is a batch: batches do not nest")));
    }
    Ok(t)
}

impl BatchRequest {
    /// The entries as (transaction type, payload). Refused whole: a body over 16 MiB
    /// (`too_large`), a malformed encoding, 0 or more than 1,024 entries, a nested batch or an
    /// entry with a bad type (`malformed`), an entry of another version (`unsupported_version`).
    pub fn decode_checked(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
        check_batch_size(data.len(), "batch request")?;
        let r: Self = decode_exact(data)?;
        check_batch_count(r.transactions.len())?;
        let mut out = Vec::with_capacity(r.transactions.len());
        for (i, env) in r.transactions.0.into_iter().enumerate() {
            let t = check_batch_entry(i, &env)?.to_string();
            out.push((t, env.serialized_transaction.0));
        }
        Ok(out)
    }

    /// Encode entries, refusing what the receiver would refuse whole.
    pub fn encode_checked(entries: Vec<(String, Vec<u8>)>) -> Result<Vec<u8>> {
        check_batch_count(entries.len())?;
        let transactions = entries
            .into_iter()
            .map(|(t, payload)| TransactionEnvelope {
                version: PROTOCOL_VERSION,
                transaction_type: super::vl(t),
                serialized_transaction: Opaque::new(payload),
            })
            .collect::<Vec<_>>();
        for (i, env) in transactions.iter().enumerate() {
            check_batch_entry(i, env)?;
        }
        let request = BatchRequest { transactions: VarVec(transactions) };
        check_batch_size(tls_codec::Size::tls_serialized_len(&request), "batch request")?;
        super::encode(&request)
    }
}

/// A status a `BatchResult` may carry: 200 or an HTTP error status.
fn check_status(i: usize, status: u16) -> Result<()> {
    if status == 200 || (400..=599).contains(&status) {
        Ok(())
    } else {
        Err(MimiError::malformed(format!("batch result {i}: status {status} is neither 200 nor an error status")))
    }
}

impl BatchResponse {
    /// The results as (status, body), which must be exactly `expected` (the request's entry
    /// count): "one BatchResult ... for each, in the same order".
    pub fn decode_checked(data: &[u8], expected: usize) -> Result<Vec<(u16, Vec<u8>)>> {
        let r: Self = decode_exact(data)?;
        if r.results.len() != expected {
            return Err(MimiError::malformed(format!(
                "batch response holds {} results for {expected} transactions",
                r.results.len()
            )));
        }
        r.results
            .0
            .into_iter()
            .enumerate()
            .map(|(i, res)| {
                check_status(i, res.status)?;
                Ok((res.status, res.body.0))
            })
            .collect()
    }

    pub fn encode_checked(results: Vec<(u16, Vec<u8>)>) -> Result<Vec<u8>> {
        check_batch_count(results.len())?;
        for (i, (status, _)) in results.iter().enumerate() {
            check_status(i, *status)?;
        }
        let response = BatchResponse {
            results: VarVec(results.into_iter().map(|(status, body)| BatchResult { status, body: Opaque::new(body) }).collect()),
        };
        super::encode(&response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: usize) -> Vec<(String, Vec<u8>)> {
        (0..n).map(|i| ("mimi.signaling.keys".to_string(), vec![i as u8])).collect()
    }

    #[test]
    fn batch_round_trip() {
        let data = BatchRequest::encode_checked(entries(3)).unwrap();
        assert_eq!(BatchRequest::decode_checked(&data).unwrap(), entries(3));
        let resp = BatchResponse::encode_checked(vec![(200, vec![1]), (400, vec![])]).unwrap();
        assert_eq!(BatchResponse::decode_checked(&resp, 2).unwrap(), vec![(200, vec![1]), (400, vec![])]);
        assert_eq!(BatchResponse::decode_checked(&resp, 3).unwrap_err().code, ErrorCode::Malformed);
    }

    #[test]
    fn batch_limits() {
        assert_eq!(BatchRequest::encode_checked(entries(0)).unwrap_err().code, ErrorCode::Malformed);
        assert!(BatchRequest::encode_checked(entries(MAX_BATCH_ENTRIES)).is_ok());
        assert_eq!(BatchRequest::encode_checked(entries(MAX_BATCH_ENTRIES + 1)).unwrap_err().code, ErrorCode::Malformed);
        // too many entries on the wire (built without the checks)
        let raw = BatchRequest {
            transactions: VarVec(
                (0..MAX_BATCH_ENTRIES + 1)
                    .map(|_| TransactionEnvelope { version: 1, transaction_type: "mimi.signaling.keys".into(), serialized_transaction: Opaque::default() })
                    .collect(),
            ),
        };
        assert_eq!(BatchRequest::decode_checked(&crate::wire::encode(&raw).unwrap()).unwrap_err().code, ErrorCode::Malformed);
        assert_eq!(BatchRequest::decode_checked(&[0x00]).unwrap_err().code, ErrorCode::Malformed);
        let big = vec![0u8; MAX_BATCH_BODY + 1];
        assert_eq!(BatchRequest::decode_checked(&big).unwrap_err().code, ErrorCode::TooLarge);
        assert_eq!(BatchRequest::encode_checked(vec![("x".into(), vec![0; MAX_BATCH_BODY])]).unwrap_err().code, ErrorCode::TooLarge);
    }

    #[test]
    fn batch_entries_are_checked() {
        let nested = vec![(BATCH.to_string(), vec![])];
        assert_eq!(BatchRequest::encode_checked(nested.clone()).unwrap_err().code, ErrorCode::Malformed);
        let mk = |version: u16, t: &[u8]| BatchRequest {
            transactions: VarVec(vec![TransactionEnvelope { version, transaction_type: Opaque::new(t.to_vec()), serialized_transaction: Opaque::default() }]),
        };
        let decode = |r: BatchRequest| BatchRequest::decode_checked(&crate::wire::encode(&r).unwrap()).unwrap_err().code;
        assert_eq!(decode(mk(1, BATCH.as_bytes())), ErrorCode::Malformed);
        assert_eq!(decode(mk(1, b"")), ErrorCode::Malformed);
        assert_eq!(decode(mk(1, &[0xff])), ErrorCode::Malformed);
        assert_eq!(decode(mk(2, b"mimi.signaling.keys")), ErrorCode::UnsupportedVersion);
        // an unknown type is the dispatcher's answer for that entry alone
        assert!(BatchRequest::decode_checked(&crate::wire::encode(&mk(1, b"x.y")).unwrap()).is_ok());
        assert_eq!(BatchResponse::encode_checked(vec![(302, vec![])]).unwrap_err().code, ErrorCode::Malformed);
    }
}
