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

    // --- the strict decoding every transaction codec shares ---------------------------------

    use crate::testkit::{self, spoil, Servers};
    use crate::wire::encode;

    const ROOM: &str = testkit::ROOM;
    const EVENT_ID: &str = "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    fn code<T: std::fmt::Debug>(result: Result<T>) -> ErrorCode {
        result.unwrap_err().code
    }

    /// Decode `bytes` after checking what decoding refuses of them: every proper prefix
    /// (truncation), one byte more (trailing data), and the one-byte length prefix at
    /// `prefix_at` written in two bytes (a non-minimal prefix) are all malformed.
    fn strict<T: std::fmt::Debug>(bytes: &[u8], prefix_at: usize, decode: impl Fn(&[u8]) -> Result<T>) -> T {
        for end in 0..bytes.len() {
            assert_eq!(code(decode(&bytes[..end])), ErrorCode::Malformed, "truncated to {end} bytes");
        }
        let trailing = [bytes, &[0]].concat();
        assert_eq!(code(decode(&trailing)), ErrorCode::Malformed, "a trailing byte");
        let short = bytes[prefix_at];
        assert!(short < 0x40, "the field at {prefix_at} has a one-byte length prefix");
        let wide = [&bytes[..prefix_at], &[0x40, short], &bytes[prefix_at + 1..]].concat();
        assert_eq!(code(decode(&wide)), ErrorCode::Malformed, "a two-byte prefix for {short}");
        decode(bytes).unwrap()
    }

    fn envelope(version: u16, transaction_type: &[u8]) -> Vec<u8> {
        let env = TransactionEnvelope { version, transaction_type: Opaque::from(transaction_type), serialized_transaction: Opaque::from(&b"payload"[..]) };
        encode(&env).unwrap()
    }

    #[test]
    fn envelope_round_trip_and_strictness() {
        let bytes = envelope(1, b"mimi.signaling.keys");
        let env = strict(&bytes, 2, TransactionEnvelope::decode);
        assert_eq!((env.version, env.transaction_type.as_slice(), env.serialized_transaction.as_slice()), (1, &b"mimi.signaling.keys"[..], &b"payload"[..]));
        // Every transaction type of the profile fits the envelope; all but the batch fit a batch.
        for t in TRANSACTION_TYPES {
            TransactionEnvelope::decode(&envelope(1, t.as_bytes())).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!(BatchRequest::encode_checked(vec![(t.to_string(), vec![])]).is_ok(), t != BATCH, "{t}");
        }
    }

    #[test]
    fn envelope_version_is_checked_before_the_rest() {
        assert_eq!(code(TransactionEnvelope::decode(&envelope(2, b"mimi.signaling.keys"))), ErrorCode::UnsupportedVersion);
        assert_eq!(code(TransactionEnvelope::decode(&envelope(0, b"mimi.signaling.keys"))), ErrorCode::UnsupportedVersion);
        // A future version's body may be anything: it is not read as a malformed version 1.
        assert_eq!(code(TransactionEnvelope::decode(&[0x00, 0x02, 0xff])), ErrorCode::UnsupportedVersion);
        assert_eq!(code(TransactionEnvelope::decode(&[0x00])), ErrorCode::Malformed);
    }

    #[test]
    fn envelope_type_is_1_to_255_bytes_of_text() {
        assert!(TransactionEnvelope::decode(&envelope(1, &[b'x'; 255])).is_ok());
        for bad in [&b""[..], &[b'x'; 256], &[0xff, 0xfe]] {
            assert_eq!(code(TransactionEnvelope::decode(&envelope(1, bad))), ErrorCode::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn get_event_request() {
        let encode_request = |room_id: &str, event_id: &str| encode(&GetEventRequest { room_id: room_id.into(), event_id: event_id.into() }).unwrap();
        let decoded = strict(&encode_request(ROOM, EVENT_ID), 0, GetEventRequest::decode_checked);
        assert_eq!(decoded, (ROOM.to_string(), EVENT_ID.to_string()));
        assert_eq!(code(GetEventRequest::decode_checked(&encode_request("room:hub.test", EVENT_ID))), ErrorCode::Malformed);
        assert_eq!(code(GetEventRequest::decode_checked(&encode_request(&format!("!{}:hub.test", "r".repeat(250)), EVENT_ID))), ErrorCode::TooLarge);
        assert_eq!(code(GetEventRequest::decode_checked(&encode_request(ROOM, &EVENT_ID[..43]))), ErrorCode::Malformed);
        assert_eq!(code(GetEventRequest::decode_checked(&encode_request(ROOM, ""))), ErrorCode::Malformed);
    }

    #[test]
    fn get_state_request() {
        let encode_request = |event_type: &str, state_key: &[u8]| {
            encode(&GetStateRequest { room_id: ROOM.into(), event_type: event_type.into(), state_key: state_key.into() }).unwrap()
        };
        let decoded = strict(&encode_request("m.room.user", b"@ana:follower.test"), 0, GetStateRequest::decode_checked);
        assert_eq!(decoded, (ROOM.to_string(), "m.room.user".to_string(), "@ana:follower.test".to_string()));
        // The empty state key is a state key.
        assert_eq!(GetStateRequest::decode_checked(&encode_request("m.room.name", b"")).unwrap().2, "");
        assert!(GetStateRequest::decode_checked(&encode_request("m.room.name", &[b'k'; 255])).is_ok());
        assert_eq!(code(GetStateRequest::decode_checked(&encode_request("m.room.name", &[b'k'; 256]))), ErrorCode::TooLarge);
        assert_eq!(code(GetStateRequest::decode_checked(&encode_request("m.room.name", &[0xff]))), ErrorCode::Malformed);
        assert_eq!(code(GetStateRequest::decode_checked(&encode_request("mroomname", b""))), ErrorCode::Malformed);
    }

    #[test]
    fn backfill_request_limit_is_1_to_1000() {
        let encode_request = |before: &str, limit: u16| encode(&BackfillRequest { room_id: ROOM.into(), before: before.into(), limit }).unwrap();
        let decoded = strict(&encode_request(EVENT_ID, 20), 0, BackfillRequest::decode_checked);
        assert_eq!(decoded, (ROOM.to_string(), EVENT_ID.to_string(), 20));
        assert_eq!(BackfillRequest::decode_checked(&encode_request(EVENT_ID, 1)).unwrap().2, 1);
        assert_eq!(BackfillRequest::decode_checked(&encode_request(EVENT_ID, MAX_BACKFILL_LIMIT)).unwrap().2, MAX_BACKFILL_LIMIT);
        for limit in [0, MAX_BACKFILL_LIMIT + 1, u16::MAX] {
            assert_eq!(code(BackfillRequest::decode_checked(&encode_request(EVENT_ID, limit))), ErrorCode::Malformed, "limit {limit}");
        }
        // `before` is an event ID, never empty.
        assert_eq!(code(BackfillRequest::decode_checked(&encode_request("", 20))), ErrorCode::Malformed);
    }

    #[test]
    fn backfill_response_events_are_checked_as_top_level_events() {
        let s = Servers::new();
        let events = s.chain(3);
        let encode_response = |events: Vec<Event>| encode(&BackfillResponse { events: VarVec(events) }).unwrap();
        // (The list's prefix takes two bytes; the first event's room ID, after it, one.)
        assert_eq!(strict(&encode_response(events.clone()), 2, BackfillResponse::decode_checked), events);
        assert!(BackfillResponse::decode_checked(&encode_response(vec![])).unwrap().is_empty());
        // Grammar and limits, not signatures: verifying is the receiver's next step.
        let mut unsigned = events[1].clone();
        spoil(&mut unsigned.hub_signature);
        assert_eq!(BackfillResponse::decode_checked(&encode_response(vec![unsigned.clone()])).unwrap(), vec![unsigned]);
        let mut bad_room = events[1].clone();
        bad_room.room_id = "room".into();
        let err = BackfillResponse::decode_checked(&encode_response(vec![events[0].clone(), bad_room])).unwrap_err();
        assert_eq!((err.code, err.message.starts_with("event 1: ")), (ErrorCode::Malformed, true), "{err}");
        // An event over 64 KiB inside a response is refused as it would be alone.
        let big = s.note(&"x".repeat(crate::wire::event::MAX_EVENT_SIZE), "");
        assert_eq!(code(BackfillResponse::decode_checked(&encode_response(vec![big]))), ErrorCode::TooLarge);
        // At most 1000 events.
        let full = vec![events[0].clone(); MAX_BACKFILL_LIMIT as usize];
        assert_eq!(BackfillResponse::decode_checked(&encode_response(full.clone())).unwrap().len(), 1000);
        let over = [full, vec![events[0].clone()]].concat();
        assert_eq!(code(BackfillResponse::decode_checked(&encode_response(over))), ErrorCode::TooLarge);
    }

    #[test]
    fn snapshot_request() {
        let encode_request = |room_id: &str| encode(&SnapshotRequest { room_id: room_id.into() }).unwrap();
        assert_eq!(strict(&encode_request(ROOM), 0, SnapshotRequest::decode_checked), ROOM);
        assert_eq!(code(SnapshotRequest::decode_checked(&encode_request("!:hub.test"))), ErrorCode::Malformed);
        assert_eq!(code(SnapshotRequest::decode_checked(&encode_request("!room:bad_host"))), ErrorCode::Malformed);
    }

    #[test]
    fn snapshot_response() {
        let s = Servers::new();
        let events = s.chain(3);
        let latest = testkit::event_id(&events[2]);
        let encode_response = |state: Vec<Event>, auth_chain: Vec<Event>, latest: &str| {
            encode(&SnapshotResponse { state: VarVec(state), auth_chain: VarVec(auth_chain), latest: latest.into() }).unwrap()
        };
        let bytes = encode_response(events[1..].to_vec(), events[..1].to_vec(), &latest);
        let decoded = strict(&bytes, 2, SnapshotResponse::decode_checked);
        assert_eq!(decoded, (events[1..].to_vec(), events[..1].to_vec(), latest.clone()));
        assert_eq!(code(SnapshotResponse::decode_checked(&encode_response(vec![], vec![], ""))), ErrorCode::Malformed);
        let mut bad_sender = events[0].clone();
        bad_sender.sender = "@Ana:follower.test".into();
        assert_eq!(code(SnapshotResponse::decode_checked(&encode_response(vec![], vec![bad_sender], &latest))), ErrorCode::Malformed);
        let big = s.note(&"x".repeat(crate::wire::event::MAX_EVENT_SIZE), "");
        assert_eq!(code(SnapshotResponse::decode_checked(&encode_response(vec![big], vec![], &latest))), ErrorCode::TooLarge);
    }

    #[test]
    fn error_body() {
        let encode_body = |code: u16, message: &[u8]| encode(&ErrorBody { code, message: message.into() }).unwrap();
        assert_eq!(strict(&encode_body(4, b"not allowed"), 2, ErrorBody::decode_checked), (4, "not allowed".to_string()));
        // The code is returned as sent (the caller maps unknown ones); a message that is not
        // UTF-8 is still shown, lossily.
        assert_eq!(ErrorBody::decode_checked(&encode_body(999, b"")).unwrap(), (999, String::new()));
        assert_eq!(ErrorBody::decode_checked(&encode_body(1, b"bad \xff")).unwrap().1, "bad \u{fffd}");
    }

    #[test]
    fn batch_bodies_are_strict_too() {
        let request = BatchRequest::encode_checked(entries(2)).unwrap();
        assert_eq!(strict(&request, 0, BatchRequest::decode_checked), entries(2));
        let response = BatchResponse::encode_checked(vec![(200, b"ok".to_vec()), (599, vec![])]).unwrap();
        assert_eq!(strict(&response, 0, |b| BatchResponse::decode_checked(b, 2)), vec![(200, b"ok".to_vec()), (599, vec![])]);
        // A status outside 200 and 400-599 on the wire (built without the checks).
        for status in [100, 204, 399, 600] {
            let raw = BatchResponse { results: VarVec(vec![BatchResult { status, body: Opaque::default() }]) };
            assert_eq!(code(BatchResponse::decode_checked(&encode(&raw).unwrap(), 1)), ErrorCode::Malformed, "status {status}");
        }
    }
}
