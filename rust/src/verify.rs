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

#[cfg(test)]
mod tests {
    //! The single-event paths: what `prepare` computes, the hub's reporting order in
    //! `verify_event`, the exact content hash of `verify_limited`, and ZIP 215's acceptance of a
    //! small-order component in `R` (PROFILE.md section 2).
    use super::*;
    use crate::error::ErrorCode;
    use crate::testkit::{self, sign_with_torsion_r, spoil, Servers, FOLLOWER_USER, HUB_USER};
    use crate::wire::event::Signature;
    use crate::wire::vector::{Opaque, VarVec};

    fn verdict(ev: &Event, keys: &KeyRing) -> Result<()> {
        verify_event(&prepare(ev.clone())?, keys)
    }

    /// The code and the field the error names (its message starts with it).
    fn refusal(result: Result<()>) -> (ErrorCode, String) {
        let e = result.expect_err("refused");
        let field = e.message.split(':').next().unwrap_or_default().to_string();
        (e.code, field)
    }

    #[test]
    fn prepare_builds_the_signed_messages_and_the_event_id() {
        let s = Servers::new();
        let ev = s.note("hello", "");
        let p = prepare(ev.clone()).unwrap();
        assert_eq!(p.event_id, testkit::event_id(&ev));
        assert_eq!(p.reference_hash, reference_hash(&ev).unwrap());
        assert_eq!((p.redacted, p.content_hash_error.clone()), (false, None));
        let origin = ev.origin();
        let signed = origin.origin_signed_form(&origin.redacted_content().unwrap(), &ev.origin_content_hash).unwrap();
        assert_eq!(p.origin_message, sign_content(ORIGIN_LABEL, &signed));
        assert_eq!(p.hub_message, sign_content(HUB_LABEL, &testkit::hub_signed_form(&ev)));
        verify_event(&p, &s.ring).unwrap();
    }

    #[test]
    fn a_redacted_event_keeps_its_id_and_verifies() {
        let s = Servers::new();
        let ev = s.note("to be redacted", "");
        let redacted = ev.redacted().unwrap();
        assert!(redacted.content.is_empty());
        let p = prepare(redacted.clone()).unwrap();
        assert!(p.redacted);
        assert_eq!(p.content_hash_error, None);
        assert_eq!(p.event_id, prepare(ev).unwrap().event_id);
        assert_eq!(reference_hash(&redacted).unwrap(), p.reference_hash);
        verify_event(&p, &s.ring).unwrap();
    }

    #[test]
    fn an_event_without_a_redacted_form_is_malformed() {
        let s = Servers::new();
        // m.room.user redaction decodes the participation; 9 is no participation.
        let mut ev = s.note("x", "");
        ev.event_type = "m.room.user".into();
        ev.content = Opaque::new(vec![9, 0]);
        assert_eq!(prepare(ev.clone()).err().unwrap().code, ErrorCode::Malformed);
        assert_eq!(reference_hash(&ev).unwrap_err().code, ErrorCode::Malformed);
    }

    #[test]
    fn the_hub_order_is_origin_signature_then_content_hash_then_hub_signature() {
        let s = Servers::new();
        let good = s.note("hello", "");
        let mut bad_origin = good.clone();
        spoil(&mut bad_origin.origin_signature);
        let mut bad_hub = good.clone();
        spoil(&mut bad_hub.hub_signature);
        // The note's content is covered by the content hash alone (redaction keeps nothing).
        let mut bad_content = good.clone();
        bad_content.content = Opaque::new(b"forged".to_vec());

        let origin = (ErrorCode::BadSignature, "origin_signature".to_string());
        let content = (ErrorCode::BadContentHash, "content does not match origin_content_hash and is not the redacted form".to_string());
        let hub = (ErrorCode::BadSignature, "hub_signature".to_string());
        assert_eq!(refusal(verdict(&bad_origin, &s.ring)), origin);
        assert_eq!(refusal(verdict(&bad_content, &s.ring)), content);
        assert_eq!(refusal(verdict(&bad_hub, &s.ring)), hub);

        let mut origin_and_content = bad_content.clone();
        origin_and_content.origin_signature = bad_origin.origin_signature.clone();
        assert_eq!(refusal(verdict(&origin_and_content, &s.ring)), origin);
        let mut content_and_hub = bad_content.clone();
        content_and_hub.hub_signature = bad_hub.hub_signature.clone();
        assert_eq!(refusal(verdict(&content_and_hub, &s.ring)), content);
        let mut origin_and_hub = bad_hub;
        origin_and_hub.origin_signature = bad_origin.origin_signature;
        assert_eq!(refusal(verdict(&origin_and_hub, &s.ring)), origin);
    }

    #[test]
    fn content_that_redaction_keeps_is_under_the_origin_signature() {
        let s = Servers::new();
        // m.room.join_rules keeps its whole content: changing it changes the signed form and
        // the event ID, so the origin signature fails before the content hash is looked at.
        let ev = s.hub_event(s.limited(HUB_USER, "m.room.join_rules", &[0x01]), "");
        verdict(&ev, &s.ring).unwrap();
        let mut changed = ev.clone();
        changed.content = Opaque::new(vec![0x00]);
        assert_eq!(refusal(verdict(&changed, &s.ring)), (ErrorCode::BadSignature, "origin_signature".into()));
        assert_ne!(reference_hash(&changed).unwrap(), reference_hash(&ev).unwrap());
    }

    #[test]
    fn every_published_entry_of_a_signature_set_must_verify() {
        let s = Servers::new();
        let ev = s.note("hello", "");
        let valid = ev.hub_signature[0].clone();
        let unpublished = Signature::new("ed25519:old", [7u8; 64]);
        let mut spoiled = ev.hub_signature.clone();
        spoil(&mut spoiled);

        let mut with_unpublished = ev.clone();
        with_unpublished.hub_signature = VarVec(vec![unpublished.clone(), valid.clone()]);
        verdict(&with_unpublished, &s.ring).unwrap();

        let mut with_a_bad_second = ev.clone();
        with_a_bad_second.hub_signature = VarVec(vec![valid, spoiled[0].clone()]);
        assert_eq!(refusal(verdict(&with_a_bad_second, &s.ring)), (ErrorCode::BadSignature, "hub_signature".into()));

        let mut only_unpublished = ev.clone();
        only_unpublished.hub_signature = VarVec(vec![unpublished]);
        assert_eq!(refusal(verdict(&only_unpublished, &s.ring)), (ErrorCode::BadSignature, "hub_signature".into()));

        // A ring that does not know the origin server: no origin entry can verify.
        let hub_only = testkit::ring(&[(testkit::HUB, &s.hub)]);
        assert_eq!(refusal(verdict(&ev, &hub_only)), (ErrorCode::BadSignature, "origin_signature".into()));
    }

    #[test]
    fn zip215_accepts_a_small_order_component_in_r() {
        let s = Servers::new();
        let mut ev = s.note("hello", "");
        let p = prepare(ev.clone()).unwrap();
        for t in 1..8 {
            let signature = sign_with_torsion_r(&s.hub, &p.hub_message, t);
            // A cofactorless verifier (RFC 8032's equation without the 8) refuses it.
            let dalek = ed25519_dalek::VerifyingKey::from_bytes(&s.hub.public_key()).unwrap();
            assert!(ed25519_dalek::Verifier::verify(&dalek, &p.hub_message, &ed25519_dalek::Signature::from_bytes(&signature)).is_err());
            ev.hub_signature = VarVec(vec![Signature::new(&s.hub.key_id, signature)]);
            verdict(&ev, &s.ring).unwrap_or_else(|e| panic!("torsion point {t}: {e}"));
        }
        // The origin signature of a limited event likewise.
        let mut limited = s.limited(FOLLOWER_USER, testkit::NOTE, b"hi");
        let message = prepare(s.hub_event(limited.clone(), "")).unwrap().origin_message;
        limited.origin_signature = VarVec(vec![Signature::new(&s.follower.key_id, sign_with_torsion_r(&s.follower, &message, 5))]);
        verify_limited(&limited, &s.ring).unwrap();
    }

    #[test]
    fn a_limited_event_needs_its_exact_content() {
        let s = Servers::new();
        let limited = s.limited(FOLLOWER_USER, testkit::NOTE, b"hello");
        verify_limited(&limited, &s.ring).unwrap();
        let mut bad_signature = limited.clone();
        spoil(&mut bad_signature.origin_signature);
        assert_eq!(refusal(verify_limited(&bad_signature, &s.ring)), (ErrorCode::BadSignature, "origin_signature".into()));
        let mut changed = limited.clone();
        changed.content = Opaque::new(b"forged".to_vec());
        assert_eq!(verify_limited(&changed, &s.ring).unwrap_err().code, ErrorCode::BadContentHash);
        // The redacted form passes in a fully-formed event, never in a limited one.
        let mut redacted = limited.clone();
        redacted.content = Opaque::default();
        assert_eq!(verify_limited(&redacted, &s.ring).unwrap_err().code, ErrorCode::BadContentHash);
        // Origin signature first: a changed content under a bad signature is a bad signature.
        changed.origin_signature = bad_signature.origin_signature;
        assert_eq!(verify_limited(&changed, &s.ring).unwrap_err().code, ErrorCode::BadSignature);
    }
}
