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
