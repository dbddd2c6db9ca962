//! Builders for the unit tests of `verify`, `batch` and `wire::transport`: a room of two
//! servers with real Ed25519 keys, and events signed the way a follower and a hub sign them
//! (PROFILE.md section 2). The integration tests under `rust/tests/` work from the golden
//! room's bytes instead; these builders make the events a unit test needs to break.

use crate::crypto::hash::{event_id_from_reference_hash, sha256};
use crate::crypto::keyring::KeyRing;
use crate::crypto::sign::{SigningKey, HUB_LABEL, ORIGIN_LABEL};
use crate::ids::server_of;
use crate::wire::event::{Event, LimitedEvent, Signature};
use crate::wire::keys::VerifyKey;
use crate::wire::vector::{Opaque, VarVec};
use crate::wire::{encode, vl};
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

pub const HUB: &str = "hub.test";
pub const FOLLOWER: &str = "follower.test";
pub const ROOM: &str = "!room:hub.test";
pub const HUB_USER: &str = "@hub:hub.test";
pub const FOLLOWER_USER: &str = "@ana:follower.test";
/// A type outside the registry: redaction keeps nothing of its content, so the origin and hub
/// signatures do not cover the content and a changed content is a content-hash failure alone.
pub const NOTE: &str = "org.example.note";

/// The hub and one follower, each with one published key, and the ring that holds both.
pub struct Servers {
    pub hub: SigningKey,
    pub follower: SigningKey,
    pub ring: KeyRing,
}

impl Servers {
    pub fn new() -> Servers {
        let hub = SigningKey::from_seed(&[1u8; 32], "ed25519:hub").unwrap();
        let follower = SigningKey::from_seed(&[2u8; 32], "ed25519:ana").unwrap();
        let ring = ring(&[(HUB, &hub), (FOLLOWER, &follower)]);
        Servers { hub, follower, ring }
    }

    pub fn key_of(&self, server: &str) -> &SigningKey {
        match server {
            HUB => &self.hub,
            FOLLOWER => &self.follower,
            other => panic!("no key for {other}"),
        }
    }

    /// A limited event of `ROOM` with its content hash and the origin signature of the
    /// sender's server.
    pub fn limited(&self, sender: &str, event_type: &str, content: &[u8]) -> LimitedEvent {
        self.limited_in(ROOM, sender, event_type, content)
    }

    pub fn limited_in(&self, room_id: &str, sender: &str, event_type: &str, content: &[u8]) -> LimitedEvent {
        let mut ev = LimitedEvent {
            room_id: vl(room_id),
            event_type: vl(event_type),
            state_key: None,
            sender: vl(sender),
            content: Opaque::new(content.to_vec()),
            origin_content_hash: [0; 32],
            origin_signature: VarVec(vec![]),
        };
        let origin = ev.origin();
        let hash = sha256(&origin.content_hash_input().unwrap());
        let signed = origin.origin_signed_form(&origin.redacted_content().unwrap(), &hash).unwrap();
        let key = self.key_of(server_of(sender));
        let signature = Signature::new(&key.key_id, key.sign_with_label(ORIGIN_LABEL, &signed));
        ev.origin_content_hash = hash;
        ev.origin_signature = VarVec(vec![signature]);
        ev
    }

    /// The hub's event for `limited` after `prev_event` ("" for the first), hub-signed.
    pub fn hub_event(&self, limited: LimitedEvent, prev_event: &str) -> Event {
        let mut ev = limited.into_event(VarVec(vec![]), vl(prev_event), VarVec(vec![]));
        ev.hub_signature = VarVec(vec![Signature::new(&self.hub.key_id, self.hub.sign_with_label(HUB_LABEL, &hub_signed_form(&ev)))]);
        ev
    }

    /// A follower's note with the given text, hub-signed after `prev_event`.
    pub fn note(&self, text: &str, prev_event: &str) -> Event {
        self.hub_event(self.limited(FOLLOWER_USER, NOTE, text.as_bytes()), prev_event)
    }

    /// `n` linked notes, the first with an empty prev_event.
    pub fn chain(&self, n: usize) -> Vec<Event> {
        let mut events: Vec<Event> = Vec::with_capacity(n);
        for i in 0..n {
            let prev = events.last().map(event_id).unwrap_or_default();
            events.push(self.note(&format!("note {i}"), &prev));
        }
        events
    }
}

/// A ring publishing each server's key.
pub fn ring(servers: &[(&str, &SigningKey)]) -> KeyRing {
    let mut ring = KeyRing::new();
    for (server, key) in servers {
        let vk = VerifyKey { key_id: vl(&key.key_id), public_key: Opaque::new(key.public_key().to_vec()), expired_ts: 0 };
        ring.add(server, &vk).unwrap();
    }
    ring
}

/// The bytes the hub signs: the reference-hash input (PROFILE.md section 2).
pub fn hub_signed_form(ev: &Event) -> Vec<u8> {
    ev.reference_hash_input(&ev.origin().redacted_content().unwrap()).unwrap()
}

pub fn event_id(ev: &Event) -> String {
    event_id_from_reference_hash(&sha256(&hub_signed_form(ev)))
}

pub fn encode_all(events: &[Event]) -> Vec<Vec<u8>> {
    events.iter().map(|e| encode(e).unwrap()).collect()
}

pub fn slices(blobs: &[Vec<u8>]) -> Vec<&[u8]> {
    blobs.iter().map(Vec::as_slice).collect()
}

/// Flip one bit of the first signature of a set: the same length and key ID, no longer valid.
pub fn spoil(signatures: &mut VarVec<Signature>) {
    signatures.0[0].signature.0[10] ^= 0x01;
}

/// A signature by `key` over `message` whose `R` carries the point of order 8 `EIGHT_TORSION[t]`
/// (t in 1..8), `S` computed over that `R`: valid under ZIP 215's cofactored equation, refused
/// by a cofactorless verifier (PROFILE.md section 2).
pub fn sign_with_torsion_r(key: &SigningKey, message: &[u8], t: usize) -> [u8; 64] {
    let a = key.key.to_scalar();
    let r = Scalar::from_bytes_mod_order(sha256(message));
    let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[t]).compress().to_bytes();
    let k = Scalar::from_hash(Sha512::new().chain_update(big_r).chain_update(key.public_key()).chain_update(message));
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&big_r);
    signature[32..].copy_from_slice((r + k * a).as_bytes());
    signature
}
