//! The hot path: decode, hash, ID and verify many events at once, spread over all cores with
//! rayon, Ed25519 signatures checked in ZIP 215 batches (`failing_in_batch`: cofactored, so
//! a batch's verdict on each signature is the single verdict) with a one-by-one fallback that
//! finds exactly which signature failed.

use crate::crypto::keyring::KeyRing;
use crate::error::{MimiError, Result};
use crate::ids::server_of;
use crate::verify::{prepare, Prepared};
use crate::wire::event::Event;
use crate::crypto::sign::{failing_in_batch, BatchItem, PublicKey};
use rayon::prelude::*;
use std::collections::HashMap;

/// Signatures per batch verification, at most: a multiscalar multiplication of 512 points
/// (plus one per key) runs Pippenger's method, about a quarter cheaper per signature than the
/// 128 of before (measured: 7.1 against 9.2 µs of CPU per signature); a failed batch is
/// re-checked one signature at a time, at about 30 µs each.
const MAX_SIGNATURES_PER_BATCH: usize = 512;
/// At least this many, when there are fewer per core: below it the batch saves little.
const MIN_SIGNATURES_PER_BATCH: usize = 64;

/// How many signatures to put in each batch: as many as allowed, but no fewer batches than
/// threads, so that a hub group of a few hundred submits still uses every core.
fn signatures_per_batch(total: usize) -> usize {
    total.div_ceil(rayon::current_num_threads().max(1)).clamp(MIN_SIGNATURES_PER_BATCH, MAX_SIGNATURES_PER_BATCH)
}

/// The outcome for one event of a batch.
pub type Outcome = std::result::Result<Prepared, MimiError>;

pub fn decode_and_prepare(blob: &[u8]) -> Outcome {
    prepare(Event::decode(blob)?)
}

/// One signature to check, pointing into a prepared event.
struct Check<'a> {
    event: usize,
    item: BatchItem<'a>,
    what: &'static str,
}

/// The checks of one event, in the order they are reported: origin, then hub. A failed key
/// lookup for the origin set stops there (nothing is reported before it); a failed lookup for
/// the hub set is returned beside the origin checks, to be reported only if those pass.
fn checks_of<'a>(i: usize, p: &'a Prepared, keys: &'a KeyRing) -> std::result::Result<(Vec<Check<'a>>, Option<MimiError>), MimiError> {
    let ev = &p.event;
    let mut out = Vec::with_capacity(2);
    for (what, server, sigs, message) in [
        ("origin_signature", server_of(ev.sender_str()), &ev.origin_signature, &p.origin_message),
        ("hub_signature", server_of(ev.room_id_str()), &ev.hub_signature, &p.hub_message),
    ] {
        let tasks = match keys.tasks(what, server, sigs) {
            Ok(t) => t,
            Err(e) if what == "hub_signature" => return Ok((out, Some(e))),
            Err(e) => return Err(e),
        };
        for t in tasks {
            out.push(Check { event: i, item: BatchItem { key: t.key, message, signature: t.signature }, what });
        }
    }
    Ok((out, None))
}

/// Batch-verify `checks` on all cores, about `signatures_per_batch` signatures per batch (an
/// event's checks stay in one batch); a failed batch is re-checked one signature at a time so
/// that exactly the failing events are returned, with the first failure of each.
fn failing_checks(checks: &[Check<'_>]) -> Vec<(usize, MimiError)> {
    let size = signatures_per_batch(checks.len());
    let mut chunks: Vec<&[Check<'_>]> = Vec::with_capacity(checks.len() / size + 1);
    let mut start = 0;
    for end in 1..=checks.len() {
        if end == checks.len() || (end - start >= size && checks[end].event != checks[end - 1].event) {
            chunks.push(&checks[start..end]);
            start = end;
        }
    }
    chunks
        .par_iter()
        .flat_map_iter(|chunk| {
            let items: Vec<BatchItem<'_>> = chunk.iter().map(|c| c.item).collect();
            failing_in_batch(&items).into_iter().map(|(i, e)| (chunk[i].event, e.context(chunk[i].what))).collect::<Vec<_>>()
        })
        .collect()
}

/// Verify the signatures of `prepared` (indices are positions in that slice). Returns, per
/// event, the first signature error (origin before hub) or None.
fn verify_signatures(prepared: &[(usize, &Prepared)], keys: &KeyRing) -> Vec<Option<MimiError>> {
    let mut errors: Vec<Option<MimiError>> = vec![None; prepared.len()];
    let mut hub_lookup: Vec<Option<MimiError>> = vec![None; prepared.len()];
    let mut checks = Vec::with_capacity(prepared.len() * 2);
    for (slot, (_, p)) in prepared.iter().enumerate() {
        match checks_of(slot, p, keys) {
            Ok((c, hub_error)) => {
                checks.extend(c);
                hub_lookup[slot] = hub_error;
            }
            Err(e) => errors[slot] = Some(e),
        }
    }
    for (slot, err) in failing_checks(&checks) {
        // origin failures sort before hub failures because checks keep that order
        if errors[slot].is_none() {
            errors[slot] = Some(err);
        }
    }
    // A hub key lookup failure comes after the origin checks (verdict() puts the content hash
    // between the two).
    for (slot, hub_error) in hub_lookup.into_iter().enumerate() {
        if errors[slot].is_none() {
            errors[slot] = hub_error;
        }
    }
    errors
}

/// Combine the hashing result and the signature result in the reporting order: origin
/// signature, content hash, hub signature.
fn verdict(p: &Prepared, sig_error: Option<MimiError>) -> Option<MimiError> {
    match sig_error {
        Some(e) if e.message.starts_with("origin_signature") => Some(e),
        other => p.content_hash_error.clone().or(other),
    }
}

/// Decode and fully check independent events (no chain links).
pub fn check_events(blobs: &[&[u8]], keys: &KeyRing) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = blobs.par_iter().map(|b| decode_and_prepare(b)).collect();
    let ok: Vec<(usize, &Prepared)> = outcomes.iter().enumerate().filter_map(|(i, o)| o.as_ref().ok().map(|p| (i, p))).collect();
    let sig_errors = verify_signatures(&ok, keys);
    let bad: Vec<(usize, MimiError)> = ok
        .iter()
        .zip(sig_errors)
        .filter_map(|((i, p), e)| verdict(p, e).map(|e| (*i, e)))
        .collect();
    for (i, e) in bad {
        outcomes[i] = Err(e);
    }
    outcomes
}

/// A failure in a chain, with where it happened.
#[derive(Debug, Clone)]
pub struct ChainFailure {
    pub index: u64,
    pub event_id: Option<String>,
    pub error: MimiError,
}

/// Validates a room chain chunk by chunk; remembers the last ID and room across chunks.
pub struct ChainValidator {
    pub keys: KeyRing,
    pub next_index: u64,
    pub last_event_id: Option<String>,
    pub room_id: Option<String>,
    pub failed: bool,
}

impl ChainValidator {
    pub fn new(keys: KeyRing) -> Self {
        ChainValidator { keys, next_index: 0, last_event_id: None, room_id: None, failed: false }
    }

    /// Check one chunk; returns the valid prefix and the first failure, if any. After a
    /// failure the validator refuses further chunks (the chain is broken there).
    pub fn validate(&mut self, blobs: &[&[u8]]) -> (Vec<Prepared>, Option<ChainFailure>) {
        if self.failed {
            let f = ChainFailure { index: self.next_index, event_id: None, error: MimiError::malformed("the chain already failed") };
            return (vec![], Some(f));
        }
        let outcomes = check_events(blobs, &self.keys);
        let mut valid = Vec::with_capacity(outcomes.len());
        for (offset, outcome) in outcomes.into_iter().enumerate() {
            let index = self.next_index + offset as u64;
            let p = match outcome {
                Ok(p) => p,
                Err(error) => {
                    let event_id = crate::wire::event::Event::decode(blobs[offset])
                        .ok()
                        .and_then(|e| crate::verify::reference_hash(&e).ok())
                        .map(|h| crate::crypto::hash::event_id_from_reference_hash(&h));
                    return self.fail(valid, index, event_id, error);
                }
            };
            if let Err(error) = self.check_link(index, &p.event) {
                let id = p.event_id.clone();
                return self.fail(valid, index, Some(id), error);
            }
            self.last_event_id = Some(p.event_id.clone());
            valid.push(p);
        }
        self.next_index += valid.len() as u64;
        (valid, None)
    }

    fn fail(&mut self, valid: Vec<Prepared>, index: u64, event_id: Option<String>, error: MimiError) -> (Vec<Prepared>, Option<ChainFailure>) {
        self.failed = true;
        self.next_index = index;
        (valid, Some(ChainFailure { index, event_id, error }))
    }

    fn check_link(&mut self, index: u64, ev: &Event) -> Result<()> {
        let room = ev.room_id_str();
        match &self.room_id {
            None => self.room_id = Some(room.to_string()),
            Some(r) if r != room => return Err(MimiError::malformed(format!("event of room {room} in the chain of {r}"))),
            Some(_) => {}
        }
        let prev = ev.prev_event_str();
        match (&self.last_event_id, index) {
            (None, 0) if prev.is_empty() => Ok(()),
            (None, _) => Err(MimiError::malformed("the first event must have an empty prev_event")),
            (Some(last), _) if prev == last => Ok(()),
            (Some(last), _) if prev.is_empty() => Err(MimiError::malformed(format!("empty prev_event after {last}"))),
            (Some(last), _) => Err(MimiError::malformed(format!("prev_event {prev} is not the previous event {last}"))),
        }
    }
}

/// Origin checks of many limited events (the hub's first step), batch-verified on all cores:
/// per event, the first error (origin signature, then exact content hash) or None.
pub fn verify_limited_events(events: &[&crate::wire::event::LimitedEvent], keys: &KeyRing) -> Vec<Option<MimiError>> {
    use crate::crypto::hash::sha256;
    use crate::crypto::sign::{sign_content, ORIGIN_LABEL};
    // Hash and build the signed messages in parallel.
    let prepared: Vec<std::result::Result<(Vec<u8>, bool), MimiError>> = events
        .par_iter()
        .map(|ev| {
            let origin = ev.origin();
            let redacted = origin.redacted_content()?;
            let signed = origin.origin_signed_form(&redacted, &ev.origin_content_hash)?;
            let hash_ok = sha256(&origin.content_hash_input()?) == ev.origin_content_hash;
            Ok((sign_content(ORIGIN_LABEL, &signed), hash_ok))
        })
        .collect();
    let mut errors: Vec<Option<MimiError>> = vec![None; events.len()];
    let mut checks: Vec<Check<'_>> = Vec::with_capacity(events.len());
    for (i, (ev, p)) in events.iter().zip(&prepared).enumerate() {
        let (message, _) = match p {
            Ok(p) => p,
            Err(e) => {
                errors[i] = Some(e.clone());
                continue;
            }
        };
        match keys.tasks("origin_signature", server_of(ev.origin().sender()), &ev.origin_signature) {
            Ok(tasks) => {
                for t in tasks {
                    checks.push(Check { event: i, item: BatchItem { key: t.key, message, signature: t.signature }, what: "origin_signature" });
                }
            }
            Err(e) => errors[i] = Some(e),
        }
    }
    for (i, e) in failing_checks(&checks) {
        if errors[i].is_none() {
            errors[i] = Some(e);
        }
    }
    for (i, p) in prepared.iter().enumerate() {
        if let (None, Ok((_, false))) = (&errors[i], p) {
            errors[i] = Some(MimiError::bad_content_hash("content does not match origin_content_hash"));
        }
    }
    errors
}

/// Plain signature batch under ZIP 215 (PROFILE.md section 2): the indices of the
/// (message, signature, public key) triples that fail, exactly those single verification
/// refuses. The keys are raw bytes decoded as ZIP 215 says (this is the signature rule alone;
/// the publication rule of section 8 is `parse_public_key`'s); one that does not decode fails.
pub fn verify_signatures_batch(messages: &[&[u8]], signatures: &[&[u8]], keys: &[&[u8]]) -> Result<Vec<usize>> {
    if messages.len() != signatures.len() || messages.len() != keys.len() {
        return Err(MimiError::malformed("messages, signatures and keys must have the same length"));
    }
    let idx: Vec<usize> = (0..messages.len()).collect();
    let bad: Vec<usize> = idx
        .par_chunks(signatures_per_batch(messages.len()))
        .flat_map_iter(|chunk| {
            // Each distinct key decoded once per chunk.
            let mut decoded: HashMap<&[u8], Option<PublicKey>> = HashMap::new();
            for &i in chunk {
                decoded.entry(keys[i]).or_insert_with(|| PublicKey::try_from(keys[i]).ok());
            }
            let (mut bad, mut items, mut positions) = (Vec::new(), Vec::with_capacity(chunk.len()), Vec::with_capacity(chunk.len()));
            for &i in chunk {
                match &decoded[keys[i]] {
                    Some(key) => {
                        items.push(BatchItem { key, message: messages[i], signature: signatures[i] });
                        positions.push(i);
                    }
                    None => bad.push(i),
                }
            }
            bad.extend(failing_in_batch(&items).into_iter().map(|(j, _)| positions[j]));
            bad.sort_unstable();
            bad
        })
        .collect();
    Ok(bad)
}

#[cfg(test)]
mod tests {
    //! Batch verification gives each event (or triple) the single verdict, names exactly the
    //! failing ones, and the chain validator refuses a broken chain at the first bad event
    //! with the right code.
    use super::*;
    use crate::crypto::sign::{verify, SigningKey};
    use crate::error::ErrorCode;
    use crate::testkit::{self, encode_all, sign_with_torsion_r, slices, spoil, Servers, FOLLOWER_USER, NOTE};
    use crate::verify::{verify_event, verify_limited};
    use crate::wire::encode;
    use crate::wire::event::{LimitedEvent, Signature};
    use crate::wire::vector::{Opaque, VarVec};

    /// What `verify_event` says of one blob, decoding included.
    fn single_verdict(blob: &[u8], keys: &KeyRing) -> Result<String> {
        let p = decode_and_prepare(blob)?;
        verify_event(&p, keys)?;
        Ok(p.event_id)
    }

    #[test]
    fn batches_hold_64_to_512_signatures_and_use_every_thread() {
        let threads = rayon::current_num_threads();
        assert_eq!(signatures_per_batch(0), MIN_SIGNATURES_PER_BATCH);
        assert_eq!(signatures_per_batch(1), MIN_SIGNATURES_PER_BATCH);
        assert_eq!(signatures_per_batch(100 * threads), 100);
        assert_eq!(signatures_per_batch(100 * threads + 1), 101);
        assert_eq!(signatures_per_batch(512 * threads), MAX_SIGNATURES_PER_BATCH);
        assert_eq!(signatures_per_batch(10_000 * threads), MAX_SIGNATURES_PER_BATCH);
    }

    /// The verdict expected of an event: None, or the code and the start of the message.
    type Expected = Option<(ErrorCode, &'static str)>;

    /// One event of each kind of defect (all made from note `n`) with its expected verdict.
    fn defects(s: &Servers, n: usize) -> Vec<(Vec<u8>, Expected)> {
        let good = s.note(&format!("note {n}"), "");
        let with = |change: &dyn Fn(&mut Event)| {
            let mut ev = good.clone();
            change(&mut ev);
            encode(&ev).unwrap()
        };
        let forge = |ev: &mut Event| ev.content = Opaque::new(b"forged".to_vec());
        let unpublished = |sigs: &mut VarVec<Signature>| sigs.0 = vec![Signature::new("ed25519:old", [7; 64])];
        let hub_message = prepare(good.clone()).unwrap().hub_message;
        let torsion = Signature::new(&s.hub.key_id, sign_with_torsion_r(&s.hub, &hub_message, 1 + n % 7));
        let origin = Some((ErrorCode::BadSignature, "origin_signature: Ed25519"));
        let hub = Some((ErrorCode::BadSignature, "hub_signature: Ed25519"));
        let content = Some((ErrorCode::BadContentHash, "content does not match"));
        let mut truncated = encode(&good).unwrap();
        truncated.pop();
        vec![
            (with(&|_| ()), None),
            (with(&|ev| ev.hub_signature = VarVec(vec![torsion.clone()])), None),
            (encode(&good.redacted().unwrap()).unwrap(), None),
            (with(&|ev| spoil(&mut ev.origin_signature)), origin),
            (with(&|ev| spoil(&mut ev.hub_signature)), hub),
            (with(&forge), content),
            (with(&|ev| {
                forge(ev);
                spoil(&mut ev.origin_signature)
            }), origin),
            (with(&|ev| {
                forge(ev);
                spoil(&mut ev.hub_signature)
            }), content),
            (with(&|ev| {
                spoil(&mut ev.origin_signature);
                spoil(&mut ev.hub_signature)
            }), origin),
            (with(&|ev| unpublished(&mut ev.origin_signature)), Some((ErrorCode::BadSignature, "origin_signature: no entry"))),
            (with(&|ev| unpublished(&mut ev.hub_signature)), Some((ErrorCode::BadSignature, "hub_signature: no entry"))),
            // The hub key lookup comes after the content hash, as in verify_event.
            (with(&|ev| {
                forge(ev);
                unpublished(&mut ev.hub_signature)
            }), content),
            (with(&|ev| {
                spoil(&mut ev.origin_signature);
                unpublished(&mut ev.hub_signature)
            }), origin),
            // A second origin entry under the published key that fails.
            (with(&|ev| {
                let mut second = ev.origin_signature.clone();
                spoil(&mut second);
                ev.origin_signature.0.push(second.0.remove(0));
            }), origin),
            (truncated, Some((ErrorCode::Malformed, "truncated input"))),
        ]
    }

    #[test]
    fn check_events_gives_each_event_its_single_verdict() {
        let s = Servers::new();
        // Enough copies for several batches on any number of threads (15 events, up to 30
        // signatures a copy): the failing events are named across batch boundaries.
        let cases: Vec<_> = (0..40).flat_map(|n| defects(&s, n)).collect();
        let blobs: Vec<Vec<u8>> = cases.iter().map(|(b, _)| b.clone()).collect();
        let outcomes = check_events(&slices(&blobs), &s.ring);
        assert_eq!(outcomes.len(), cases.len());
        for (i, ((blob, expected), outcome)) in cases.iter().zip(&outcomes).enumerate() {
            let single = single_verdict(blob, &s.ring);
            match (outcome, expected) {
                (Ok(p), None) => assert_eq!(Ok(p.event_id.clone()), single, "event {i}"),
                (Err(e), Some((code, start))) => {
                    assert_eq!((e.code, e.message.starts_with(start)), (*code, true), "event {i}: {e}");
                    assert_eq!(Err(e.clone()), single, "event {i}");
                }
                (got, want) => panic!("event {i}: got {:?}, expected {want:?}", got.as_ref().err()),
            }
        }
    }

    #[test]
    fn check_events_of_nothing_is_nothing() {
        assert!(check_events(&[], &Servers::new().ring).is_empty());
    }

    #[test]
    fn verify_limited_events_gives_each_event_its_single_verdict() {
        let s = Servers::new();
        let good = s.limited(FOLLOWER_USER, NOTE, b"hello");
        let with = |change: &dyn Fn(&mut LimitedEvent)| {
            let mut ev = good.clone();
            change(&mut ev);
            ev
        };
        let cases = [
            (with(&|_| ()), None),
            (with(&|ev| spoil(&mut ev.origin_signature)), Some(ErrorCode::BadSignature)),
            (with(&|ev| ev.content = Opaque::new(b"forged".to_vec())), Some(ErrorCode::BadContentHash)),
            // The redacted form is not accepted from a follower.
            (with(&|ev| ev.content = Opaque::default()), Some(ErrorCode::BadContentHash)),
            (with(&|ev| {
                ev.content = Opaque::default();
                spoil(&mut ev.origin_signature)
            }), Some(ErrorCode::BadSignature)),
            (with(&|ev| ev.origin_signature.0 = vec![Signature::new("ed25519:old", [7; 64])]), Some(ErrorCode::BadSignature)),
        ];
        // Many copies: several batches.
        let events: Vec<&LimitedEvent> = (0..50).flat_map(|_| cases.iter().map(|(ev, _)| ev)).collect();
        let verdicts = verify_limited_events(&events, &s.ring);
        for (i, (ev, verdict)) in events.iter().zip(&verdicts).enumerate() {
            assert_eq!(verdict.as_ref().map(|e| e.code), cases[i % cases.len()].1, "event {i}");
            assert_eq!(verdict.clone().map_or(Ok(()), Err), verify_limited(ev, &s.ring), "event {i}");
        }
    }

    #[test]
    fn verify_signatures_batch_names_exactly_the_failing_triples() {
        let keys: Vec<_> = (1..=3u8).map(|i| SigningKey::from_seed(&[i; 32], "ed25519:k").unwrap()).collect();
        let publics: Vec<[u8; 32]> = keys.iter().map(|k| k.public_key()).collect();
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2; // y = 2 has no x
        let n = 300;
        let messages: Vec<Vec<u8>> = (0..n).map(|i| format!("message {i}").into_bytes()).collect();
        let mut signatures: Vec<Vec<u8>> = (0..n).map(|i| keys[i % 3].sign(&messages[i]).to_vec()).collect();
        let mut public_keys: Vec<Vec<u8>> = (0..n).map(|i| publics[i % 3].to_vec()).collect();
        signatures[3] = sign_with_torsion_r(&keys[0], &messages[3], 2).to_vec(); // valid under ZIP 215
        signatures[7][0] ^= 1; // R changed
        signatures[64] = keys[64 % 3].sign(b"another message").to_vec();
        signatures[65].pop(); // 63 bytes
        public_keys[130] = not_a_point.to_vec();
        public_keys[200] = publics[0][..31].to_vec();
        public_keys[299] = publics[(299 + 1) % 3].to_vec(); // another signer's key
        let failing = verify_signatures_batch(&slices(&messages), &slices(&signatures), &slices(&public_keys)).unwrap();
        assert_eq!(failing, vec![7, 64, 65, 130, 200, 299]);
        let single: Vec<usize> = (0..n)
            .filter(|&i| match PublicKey::try_from(public_keys[i].as_slice()) {
                Ok(key) => verify(&key, &messages[i], &signatures[i]).is_err(),
                Err(_) => true,
            })
            .collect();
        assert_eq!(failing, single);

        assert_eq!(verify_signatures_batch(&[], &[], &[]).unwrap(), Vec::<usize>::new());
        let m: &[u8] = b"m";
        let err = verify_signatures_batch(&[m, m], &[&signatures[0]], &[&public_keys[0], &public_keys[0]]).unwrap_err();
        assert_eq!(err.code, ErrorCode::Malformed);
    }

    // --- chain validation ------------------------------------------------------------------

    fn validate_all(s: &Servers, blobs: &[Vec<u8>]) -> (Vec<Prepared>, Option<ChainFailure>) {
        ChainValidator::new(s.ring.clone()).validate(&slices(blobs))
    }

    /// The failure of a whole chain: (index, code, event ID), with the length of the valid
    /// prefix checked against the index.
    fn failure_of(s: &Servers, blobs: &[Vec<u8>]) -> (u64, ErrorCode, Option<String>) {
        let (valid, failure) = validate_all(s, blobs);
        let f = failure.expect("the chain is refused");
        assert_eq!(valid.len() as u64, f.index, "the valid prefix ends at the failure");
        (f.index, f.error.code, f.event_id)
    }

    #[test]
    fn a_chain_validates_across_chunks() {
        let s = Servers::new();
        let events = s.chain(7);
        let blobs = encode_all(&events);
        let ids: Vec<String> = events.iter().map(testkit::event_id).collect();
        let mut v = ChainValidator::new(s.ring.clone());
        let mut got = vec![];
        for chunk in [&blobs[..3], &blobs[3..3], &blobs[3..]] {
            let (valid, failure) = v.validate(&slices(chunk));
            assert!(failure.is_none(), "{:?}", failure.map(|f| f.error));
            got.extend(valid.into_iter().map(|p| p.event_id));
        }
        assert_eq!(got, ids);
        assert_eq!((v.next_index, v.last_event_id.as_deref(), v.room_id.as_deref()), (7, Some(ids[6].as_str()), Some(testkit::ROOM)));
    }

    #[test]
    fn a_broken_link_is_malformed_at_that_event() {
        let s = Servers::new();
        let events = s.chain(5);
        let ids: Vec<String> = events.iter().map(testkit::event_id).collect();
        let relinked = |i: usize, prev: &str| {
            let mut blobs = encode_all(&events);
            let ev = s.note(&format!("note {i}"), prev);
            blobs[i] = encode(&ev).unwrap();
            (blobs, Some(testkit::event_id(&ev)))
        };
        // The first event must have no predecessor.
        let (blobs, id) = relinked(0, &ids[3]);
        assert_eq!(failure_of(&s, &blobs), (0, ErrorCode::Malformed, id));
        // A link to an earlier event, and an empty link, after the first.
        let (blobs, id) = relinked(3, &ids[1]);
        assert_eq!(failure_of(&s, &blobs), (3, ErrorCode::Malformed, id));
        let (blobs, id) = relinked(3, "");
        assert_eq!(failure_of(&s, &blobs), (3, ErrorCode::Malformed, id));
        // Events out of order: the chain breaks at the first moved one, naming it.
        let mut blobs = encode_all(&events);
        blobs.swap(2, 3);
        assert_eq!(failure_of(&s, &blobs), (2, ErrorCode::Malformed, Some(ids[3].clone())));
        // An event of another room, linked correctly.
        let mut blobs = encode_all(&events);
        let other = s.hub_event(s.limited_in("!other:hub.test", FOLLOWER_USER, NOTE, b"elsewhere"), &ids[1]);
        blobs[2] = encode(&other).unwrap();
        assert_eq!(failure_of(&s, &blobs), (2, ErrorCode::Malformed, Some(testkit::event_id(&other))));
    }

    #[test]
    fn a_bad_hash_or_signature_is_refused_at_that_event_with_its_code() {
        let s = Servers::new();
        let events = s.chain(5);
        let ids: Vec<String> = events.iter().map(testkit::event_id).collect();
        let changed = |i: usize, change: &dyn Fn(&mut Event)| {
            let mut blobs = encode_all(&events);
            let mut ev = events[i].clone();
            change(&mut ev);
            blobs[i] = encode(&ev).unwrap();
            blobs
        };
        // The note's content is outside its ID: a changed one keeps the ID and the links.
        let forged = changed(2, &|ev| ev.content = Opaque::new(b"forged".to_vec()));
        assert_eq!(failure_of(&s, &forged), (2, ErrorCode::BadContentHash, Some(ids[2].clone())));
        let bad_hub = changed(3, &|ev| spoil(&mut ev.hub_signature));
        assert_eq!(failure_of(&s, &bad_hub), (3, ErrorCode::BadSignature, Some(ids[3].clone())));
        let bad_origin = changed(1, &|ev| spoil(&mut ev.origin_signature));
        assert_eq!(failure_of(&s, &bad_origin), (1, ErrorCode::BadSignature, Some(ids[1].clone())));
        // Bytes that do not decode have no ID to name.
        let mut garbage = encode_all(&events);
        garbage[4].push(0);
        assert_eq!(failure_of(&s, &garbage), (4, ErrorCode::Malformed, None));
        // The first failure in chain order wins, whatever its kind.
        let mut both = changed(3, &|ev| spoil(&mut ev.hub_signature));
        both.swap(1, 2);
        assert_eq!(failure_of(&s, &both), (1, ErrorCode::Malformed, Some(ids[2].clone())));
    }

    #[test]
    fn after_a_failure_the_validator_refuses_every_chunk() {
        let s = Servers::new();
        let events = s.chain(6);
        let mut blobs = encode_all(&events);
        let mut bad = events[4].clone();
        spoil(&mut bad.hub_signature);
        blobs[4] = encode(&bad).unwrap();
        let mut v = ChainValidator::new(s.ring.clone());
        let (valid, failure) = v.validate(&slices(&blobs[..3]));
        assert_eq!((valid.len(), failure.is_none()), (3, true));
        // The index counts from the start of the chain, not of the chunk.
        let (valid, failure) = v.validate(&slices(&blobs[3..]));
        let failure = failure.expect("event 4 is refused");
        assert_eq!((valid.len(), failure.index, failure.error.code), (1, 4, ErrorCode::BadSignature));
        assert_eq!(v.last_event_id, Some(testkit::event_id(&events[3])));
        // Even a chunk that would link is refused now, at the same index.
        let (valid, failure) = v.validate(&slices(&blobs[5..]));
        let failure = failure.expect("the validator stays failed");
        assert_eq!((valid.len(), failure.index, failure.error.code, failure.event_id), (0, 4, ErrorCode::Malformed, None));
    }
}
