//! `Event`, `LimitedEvent` and `Signature` (PROFILE.md section 2), their strict decoders and
//! the three derived forms (content-hash input, reference-hash input, origin-signed form).

use super::{decode_exact, encode, put, text_ref};
use crate::error::{MimiError, Result};
use crate::ids;
use crate::redaction::redact_content;
use std::borrow::Cow;
use super::vector::{Opaque, OpaqueRef, VarVec};
use tls_codec::{TlsDeserializeBytes, TlsSerialize, TlsSize};

pub const MAX_EVENT_SIZE: usize = 65_536;
pub const MAX_AUTH_EVENTS: usize = 64;
pub const MAX_SIGNATURES: usize = 8;
pub const SIGNATURE_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct Signature {
    pub key_id: Opaque,
    pub signature: Opaque,
}

impl Signature {
    pub fn new(key_id: &str, signature: [u8; 64]) -> Self {
        Signature { key_id: super::vl(key_id), signature: Opaque::new(signature.to_vec()) }
    }
    pub fn key_id_str(&self) -> &str {
        // validated on decode and on construction
        std::str::from_utf8(self.key_id.as_slice()).unwrap_or("")
    }
    fn validate(&self) -> Result<()> {
        let key_id = text_ref("signature key ID", &self.key_id)?;
        ids::validate_key_id(key_id)?;
        if self.signature.as_slice().len() != SIGNATURE_LEN {
            return Err(MimiError::malformed(format!(
                "signature by {key_id} is {} bytes, Ed25519 signatures are {SIGNATURE_LEN}",
                self.signature.as_slice().len()
            )));
        }
        Ok(())
    }
}

fn validate_signatures(what: &str, sigs: &[Signature]) -> Result<()> {
    if sigs.is_empty() || sigs.len() > MAX_SIGNATURES {
        return Err(MimiError::malformed(format!("{what} holds {} entries, 1 to {MAX_SIGNATURES} allowed", sigs.len())));
    }
    for s in sigs {
        s.validate().map_err(|e| e.context(what))?;
    }
    Ok(())
}

/// The fields shared by `Event` and `LimitedEvent`: what the origin server wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginFields<'a> {
    pub room_id: &'a Opaque,
    pub event_type: &'a Opaque,
    pub state_key: &'a Option<Opaque>,
    pub sender: &'a Opaque,
    pub content: &'a Opaque,
}

impl<'a> OriginFields<'a> {
    pub fn room_id(&self) -> &'a str {
        std::str::from_utf8(self.room_id.as_slice()).unwrap_or("")
    }
    pub fn event_type(&self) -> &'a str {
        std::str::from_utf8(self.event_type.as_slice()).unwrap_or("")
    }
    pub fn sender(&self) -> &'a str {
        std::str::from_utf8(self.sender.as_slice()).unwrap_or("")
    }

    /// Identifier grammar and size limits of every origin field.
    pub fn validate(&self) -> Result<()> {
        let room_id = text_ref("room_id", self.room_id)?;
        ids::parse_room_id(room_id)?;
        let event_type = text_ref("type", self.event_type)?;
        ids::validate_event_type(event_type)?;
        if let Some(sk) = self.state_key {
            if sk.as_slice().len() > ids::MAX_ID_SIZE {
                return Err(MimiError::too_large(format!("state key is {} bytes, the limit is 255", sk.as_slice().len())));
            }
            text_ref("state_key", sk)?;
        }
        let sender = text_ref("sender", self.sender)?;
        ids::parse_user_id(sender)?;
        // Every decodable event must have a redacted form, hence a reference hash and an ID
        // (for m.room.user that needs the participation to decode). Whether the content is
        // valid for its type is the shape check's verdict (PROFILE.md section 4 rule 4).
        self.redacted_content().map_err(|e| e.context("content"))?;
        Ok(())
    }

    /// room_id, type, state_key, sender, then `content` (the given bytes, which may be redacted).
    fn put_head(&self, out: &mut Vec<u8>, content: &[u8]) -> Result<()> {
        put(out, self.room_id)?;
        put(out, self.event_type)?;
        put(out, self.state_key)?;
        put(out, self.sender)?;
        put(out, &OpaqueRef(content))?;
        Ok(())
    }

    fn head_len(&self) -> usize {
        use tls_codec::Size;
        self.room_id.tls_serialized_len()
            + self.event_type.tls_serialized_len()
            + self.state_key.tls_serialized_len()
            + self.sender.tls_serialized_len()
            + self.content.tls_serialized_len()
    }

    /// Content-hash input: room_id, type, state_key, sender, content.
    pub fn content_hash_input(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.head_len());
        self.put_head(&mut out, self.content.as_slice())?;
        Ok(out)
    }

    pub fn redacted_content(&self) -> Result<Cow<'a, [u8]>> {
        redact_content(self.event_type(), self.content.as_slice())
    }

    /// Origin-signed form: room_id, type, state_key, sender, redacted content, origin_content_hash.
    pub fn origin_signed_form(&self, redacted: &[u8], origin_content_hash: &[u8; 32]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.head_len() + 32);
        self.put_head(&mut out, redacted)?;
        out.extend_from_slice(origin_content_hash);
        Ok(out)
    }
}

/// A fully-formed event, field order as in the draft.
#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct Event {
    pub room_id: Opaque,
    pub event_type: Opaque,
    pub state_key: Option<Opaque>,
    pub sender: Opaque,
    pub content: Opaque,
    pub auth_events: VarVec<Opaque>,
    pub prev_event: Opaque,
    pub origin_content_hash: [u8; 32],
    pub hub_signature: VarVec<Signature>,
    pub origin_signature: VarVec<Signature>,
}

/// What a follower sends to the hub.
#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct LimitedEvent {
    pub room_id: Opaque,
    pub event_type: Opaque,
    pub state_key: Option<Opaque>,
    pub sender: Opaque,
    pub content: Opaque,
    pub origin_content_hash: [u8; 32],
    pub origin_signature: VarVec<Signature>,
}

fn check_size(data: &[u8]) -> Result<()> {
    if data.len() > MAX_EVENT_SIZE {
        return Err(MimiError::too_large(format!("encoded event is {} bytes, the limit is {MAX_EVENT_SIZE}", data.len())));
    }
    Ok(())
}

/// `decode` (strict: size limit, exact decoding, every field validated), `encode` and
/// `origin` for the two structs that carry the origin's fields.
macro_rules! origin_struct_methods {
    ($t:ident) => {
        /// Strict decode of one encoded event, with every field's grammar and limit checked.
        pub fn decode(data: &[u8]) -> Result<$t> {
            check_size(data)?;
            let ev: $t = decode_exact(data)?;
            ev.validate()?;
            Ok(ev)
        }

        pub fn encode(&self) -> Result<Vec<u8>> {
            encode(self)
        }

        pub fn origin(&self) -> OriginFields<'_> {
            OriginFields {
                room_id: &self.room_id,
                event_type: &self.event_type,
                state_key: &self.state_key,
                sender: &self.sender,
                content: &self.content,
            }
        }
    };
}

impl Event {
    origin_struct_methods!(Event);

    pub fn validate(&self) -> Result<()> {
        self.origin().validate()?;
        if self.auth_events.len() > MAX_AUTH_EVENTS {
            return Err(MimiError::too_large(format!(
                "{} auth events, the limit is {MAX_AUTH_EVENTS}",
                self.auth_events.len()
            )));
        }
        for id in self.auth_events.iter() {
            ids::validate_event_id(text_ref("auth event ID", id)?).map_err(|e| e.context("auth_events"))?;
        }
        if !self.prev_event.as_slice().is_empty() {
            ids::validate_event_id(text_ref("prev_event", &self.prev_event)?).map_err(|e| e.context("prev_event"))?;
        }
        validate_signatures("hub_signature", &self.hub_signature)?;
        validate_signatures("origin_signature", &self.origin_signature)?;
        Ok(())
    }

    pub fn room_id_str(&self) -> &str {
        self.origin().room_id()
    }
    pub fn event_type_str(&self) -> &str {
        self.origin().event_type()
    }
    pub fn sender_str(&self) -> &str {
        self.origin().sender()
    }
    pub fn prev_event_str(&self) -> &str {
        std::str::from_utf8(self.prev_event.as_slice()).unwrap_or("")
    }

    /// Reference-hash input: room_id, type, state_key, sender, redacted content, auth_events,
    /// prev_event, origin_content_hash.
    pub fn reference_hash_input(&self, redacted: &[u8]) -> Result<Vec<u8>> {
        use tls_codec::Size;
        let origin = self.origin();
        let mut out = Vec::with_capacity(
            origin.head_len() + self.auth_events.tls_serialized_len() + self.prev_event.tls_serialized_len() + 32,
        );
        origin.put_head(&mut out, redacted)?;
        put(&mut out, &self.auth_events)?;
        put(&mut out, &self.prev_event)?;
        out.extend_from_slice(&self.origin_content_hash);
        Ok(out)
    }

    /// The same event with its content replaced by the redacted form.
    pub fn redacted(&self) -> Result<Event> {
        let redacted = self.origin().redacted_content()?.into_owned();
        Ok(Event { content: Opaque::new(redacted), ..self.clone() })
    }

    pub fn limited(&self) -> LimitedEvent {
        LimitedEvent {
            room_id: self.room_id.clone(),
            event_type: self.event_type.clone(),
            state_key: self.state_key.clone(),
            sender: self.sender.clone(),
            content: self.content.clone(),
            origin_content_hash: self.origin_content_hash,
            origin_signature: self.origin_signature.clone(),
        }
    }
}

impl LimitedEvent {
    origin_struct_methods!(LimitedEvent);

    pub fn validate(&self) -> Result<()> {
        self.origin().validate()?;
        validate_signatures("origin_signature", &self.origin_signature)
    }

    /// Fill in what the hub adds (hub signature left for the caller to compute).
    pub fn into_event(self, auth_events: VarVec<Opaque>, prev_event: Opaque, hub_signature: VarVec<Signature>) -> Event {
        Event {
            room_id: self.room_id,
            event_type: self.event_type,
            state_key: self.state_key,
            sender: self.sender,
            content: self.content,
            auth_events,
            prev_event,
            origin_content_hash: self.origin_content_hash,
            hub_signature,
            origin_signature: self.origin_signature,
        }
    }
}
