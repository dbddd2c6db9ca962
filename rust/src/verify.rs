//! Checking one event: content hash (or redacted form), origin and hub signatures, event ID.
//! `prepare` does the hashing and builds the SignContent bytes; the signature checks run
//! either one by one (`verify_event`) or in Ed25519 batches (`crate::batch`).

use crate::crypto::hash::{event_id_from_reference_hash, sha256};
use crate::crypto::keyring::KeyRing;
use crate::crypto::sign::{sign_content, HUB_LABEL, ORIGIN_LABEL};
use crate::error::{MimiError, Result};
use crate::ids::server_of;
use crate::wire::event::{Event, LimitedEvent, OriginFields};

/// An event with its hashes computed and its signed messages built.
pub struct Prepared {
    pub event: Event,
    pub reference_hash: [u8; 32],
    pub event_id: String,
    pub redacted: bool,
    /// `bad_content_hash` is reported only after the origin signature is found good, so it is
    /// kept here rather than returned from `prepare`.
    pub content_hash_error: Option<MimiError>,
    pub origin_message: Vec<u8>,
    pub hub_message: Vec<u8>,
}

/// Compare the content hash; an event whose content is exactly its redacted form is a
/// redacted event (PROFILE.md section 2).
fn content_hash_state(origin: &OriginFields<'_>, expected: &[u8; 32], redacted: &[u8]) -> Result<bool> {
    let actual = sha256(&origin.content_hash_input()?);
    if &actual == expected {
        Ok(false)
    } else if origin.content.as_slice() == redacted {
        Ok(true)
    } else {
        Err(MimiError::bad_content_hash("content does not match origin_content_hash and is not the redacted form"))
    }
}

pub fn prepare(event: Event) -> Result<Prepared> {
    let origin = event.origin();
    let redacted = origin.redacted_content()?;
    let (redacted_flag, content_hash_error) = match content_hash_state(&origin, &event.origin_content_hash, &redacted) {
        Ok(r) => (r, None),
        Err(e) => (false, Some(e)),
    };
    let origin_signed = origin.origin_signed_form(&redacted, &event.origin_content_hash)?;
    let reference_input = event.reference_hash_input(&redacted)?;
    let reference_hash = sha256(&reference_input);
    drop(redacted);
    Ok(Prepared {
        event_id: event_id_from_reference_hash(&reference_hash),
        reference_hash,
        redacted: redacted_flag,
        content_hash_error,
        origin_message: sign_content(ORIGIN_LABEL, &origin_signed),
        hub_message: sign_content(HUB_LABEL, &reference_input),
        event,
    })
}

/// Hashes only (no keys needed): the event ID of an encoded event.
pub fn reference_hash(event: &Event) -> Result<[u8; 32]> {
    let redacted = event.origin().redacted_content()?;
    Ok(sha256(&event.reference_hash_input(&redacted)?))
}

/// Full single-event check in the hub's order: origin signature, content hash, hub signature.
pub fn verify_event(p: &Prepared, keys: &KeyRing) -> Result<()> {
    let ev = &p.event;
    let origin_server = server_of(ev.sender_str());
    for t in keys.tasks("origin_signature", origin_server, &ev.origin_signature)? {
        crate::crypto::sign::verify(t.key, &p.origin_message, t.signature).map_err(|e| e.context("origin_signature"))?;
    }
    if let Some(e) = &p.content_hash_error {
        return Err(e.clone());
    }
    let hub_server = server_of(ev.room_id_str());
    for t in keys.tasks("hub_signature", hub_server, &ev.hub_signature)? {
        crate::crypto::sign::verify(t.key, &p.hub_message, t.signature).map_err(|e| e.context("hub_signature"))?;
    }
    Ok(())
}

/// A limited event as the hub receives it: origin signature, then the exact content hash
/// (limited events may not arrive redacted).
pub fn verify_limited(ev: &LimitedEvent, keys: &KeyRing) -> Result<()> {
    let origin = ev.origin();
    let redacted = origin.redacted_content()?;
    let signed = origin.origin_signed_form(&redacted, &ev.origin_content_hash)?;
    keys.verify_set("origin_signature", server_of(origin.sender()), &ev.origin_signature, ORIGIN_LABEL, &signed)?;
    if sha256(&origin.content_hash_input()?) != ev.origin_content_hash {
        return Err(MimiError::bad_content_hash("content does not match origin_content_hash"));
    }
    Ok(())
}
