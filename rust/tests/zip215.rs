//! ZIP 215, the verification rule of PROFILE.md section 2, through the pure-Rust API: every
//! case of `../shared/vectors/ed25519_zip215.json` through single and batch verification, the
//! publication rule of section 8 on the same keys, and a property test mixing valid
//! signatures, wrong ones, signatures with a small-order component in `R` and `S + L` in
//! random batches: the batch's verdict on each signature is the single verdict, and the
//! failing positions (and events, in a room chain) are named exactly.

mod common;
use common::{hx, load};

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use mimi_signaling::batch::{check_events, verify_signatures_batch, ChainValidator};
use mimi_signaling::crypto::keyring::KeyRing;
use mimi_signaling::crypto::sign::{failing_in_batch, parse_public_key, verify, BatchItem, PublicKey, SigningKey};
use mimi_signaling::error::ErrorCode;
use mimi_signaling::wire::encode;
use mimi_signaling::wire::event::{Event, Signature};
use mimi_signaling::wire::keys::{ServerKeys, VerifyKey};
use mimi_signaling::wire::vector::{Opaque, VarVec};
use mimi_signaling::wire::vl;
use proptest::prelude::*;
use sha2::{Digest, Sha512};

/// Single verification of raw bytes: the key decoded as ZIP 215 says (no publication check).
fn single_ok(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    match PublicKey::try_from(key) {
        Ok(k) => verify(&k, message, signature).is_ok(),
        Err(_) => false,
    }
}

fn slices(v: &[Vec<u8>]) -> Vec<&[u8]> {
    v.iter().map(Vec::as_slice).collect()
}

fn pick<'a>(v: &[&'a [u8]], order: &[usize]) -> Vec<&'a [u8]> {
    order.iter().map(|&j| v[j]).collect()
}

#[test]
fn zip215_vectors_single_and_batch() {
    let cases = load("ed25519_zip215.json")["cases"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 10);
    let (mut messages, mut signatures, mut keys) = (vec![], vec![], vec![]);
    for case in &cases {
        messages.push(hx(&case["message"]));
        signatures.push(hx(&case["signature"]));
        keys.push(hx(&case["public_key"]));
    }
    let (m, s, k) = (slices(&messages), slices(&signatures), slices(&keys));
    let expected_failing: Vec<usize> = (0..cases.len()).filter(|&i| !cases[i]["valid"].as_bool().unwrap()).collect();
    for (i, case) in cases.iter().enumerate() {
        let valid = case["valid"].as_bool().unwrap();
        assert_eq!(single_ok(k[i], m[i], s[i]), valid, "case {i}: single");
        // The batch path, one case alone.
        let alone = verify_signatures_batch(&[m[i]], &[s[i]], &[k[i]]).unwrap();
        assert_eq!(alone.is_empty(), valid, "case {i}: batch of one");
        // Section 8: a key of small order is never published; every other key here is.
        let published = parse_public_key(k[i]);
        if case["public_key_small_order"].as_bool().unwrap() {
            assert_eq!(published.unwrap_err().code, ErrorCode::Malformed, "case {i}");
        } else {
            let key = published.unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!(verify(&key, m[i], s[i]).is_ok(), valid, "case {i}: published key");
        }
    }
    // All ten in one batch, and in every rotation (the batch coalesces by key).
    for shift in 0..cases.len() {
        let order: Vec<usize> = (0..cases.len()).map(|j| (j + shift) % cases.len()).collect();
        let mut got: Vec<usize> = verify_signatures_batch(&pick(&m, &order), &pick(&s, &order), &pick(&k, &order)).unwrap().into_iter().map(|j| order[j]).collect();
        got.sort_unstable();
        assert_eq!(got, expected_failing, "rotation {shift}");
    }
}

#[test]
fn published_keys_section_8() {
    let honest = SigningKey::from_seed(&[3u8; 32], "ed25519:k").unwrap().public_key();
    assert!(parse_public_key(&honest).is_ok());
    // A mixed-order key (prime-order part plus a point of order 8) is not of small order.
    let a = ED25519_BASEPOINT_POINT * Scalar::from(5u64) + EIGHT_TORSION[1];
    assert!(parse_public_key(&a.compress().to_bytes()).is_ok());
    let refuse = |bytes: [u8; 32], why: &str| {
        let err = parse_public_key(&bytes).unwrap_err();
        assert_eq!(err.code, ErrorCode::Malformed, "{why}");
        let vk = VerifyKey { key_id: vl("ed25519:bad"), public_key: Opaque::new(bytes.to_vec()), expired_ts: 0 };
        let sk = ServerKeys { server_name: vl("evil.example"), keys: VarVec(vec![vk.clone()]) };
        assert_eq!(ServerKeys::decode(&encode(&sk).unwrap()).unwrap_err().code, ErrorCode::Malformed, "{why}: ServerKeys");
        assert_eq!(KeyRing::new().add("evil.example", &vk).unwrap_err().code, ErrorCode::Malformed, "{why}: KeyRing");
    };
    for (i, t) in EIGHT_TORSION.iter().enumerate() {
        refuse(t.compress().to_bytes(), &format!("torsion point {i}"));
    }
    // Non-canonical encodings: y + p for a y < 19 (y = 1 is the identity), and x = 0 with
    // the sign bit set (the identity and the point of order 2).
    let mut y_plus_p = [0xffu8; 32];
    y_plus_p[0] = 0xee; // p + 1 = 2^255 - 18
    y_plus_p[31] = 0x7f;
    refuse(y_plus_p, "y = p + 1");
    let mut negative_zero = [0u8; 32];
    negative_zero[0] = 1;
    negative_zero[31] = 0x80;
    refuse(negative_zero, "identity with the sign bit");
    let mut non_canonical_prime_order = honest;
    non_canonical_prime_order[31] ^= 0x80; // -A: canonical unless x = 0, so still published
    assert!(parse_public_key(&non_canonical_prime_order).is_ok());
    // Not a point at all (y = 2 has no x), and the wrong length.
    let mut y2 = [0u8; 32];
    y2[0] = 2;
    assert_eq!(parse_public_key(&y2).unwrap_err().code, ErrorCode::Malformed);
    assert_eq!(parse_public_key(&honest[..31]).unwrap_err().code, ErrorCode::Malformed);
}

// --- signatures made by hand, for the property test ---------------------------------------

/// L, the order of the base point, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0x10,
];

/// `S + L` as a 256-bit little-endian sum: the same scalar mod L, not canonical.
fn plus_l(s: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = s[i] as u16 + L[i] as u16 + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    out
}

/// A signer from a secret scalar; its public key may carry a point of order 8 (`key_torsion`
/// in 1..8; 0 = none), which ZIP 215's cofactored equation ignores.
struct Signer {
    a: Scalar,
    public: [u8; 32],
}

impl Signer {
    fn new(secret: [u8; 32], key_torsion: usize) -> Signer {
        let a = Scalar::from_bytes_mod_order(secret) + Scalar::ONE; // never zero in practice
        let point: EdwardsPoint = ED25519_BASEPOINT_POINT * a + EIGHT_TORSION[key_torsion];
        Signer { a, public: point.compress().to_bytes() }
    }

    /// `(R, S)` with `R = [r]B + T` for the torsion point `T` (index 0 = none), `S` computed
    /// over that `R`: under the cofactored equation `[8]T` vanishes, so it verifies.
    fn sign(&self, message: &[u8], nonce: [u8; 32], r_torsion: usize) -> [u8; 64] {
        let r = Scalar::from_bytes_mod_order(nonce);
        let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[r_torsion]).compress().to_bytes();
        let k = Scalar::from_hash(Sha512::new().chain_update(big_r).chain_update(self.public).chain_update(message));
        let s = r + k * self.a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&big_r);
        sig[32..].copy_from_slice(s.as_bytes());
        sig
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// An honest signature.
    Valid,
    /// `R` with a small-order component, `S` made for it: valid under ZIP 215 (and refused by
    /// a cofactorless verifier).
    TorsionR,
    /// A valid signature of another message.
    WrongMessage,
    /// An honest signature with a point of order 8 added to `R` afterwards: `k` changes, so it
    /// fails under every rule.
    TorsionRAfterSigning,
    /// An honest signature with `S + L`: non-canonical `S`, refused by ZIP 215 even though the
    /// equation holds mod L.
    SPlusL,
}

impl Kind {
    fn valid(self) -> bool {
        matches!(self, Kind::Valid | Kind::TorsionR)
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Valid),
        3 => Just(Kind::TorsionR),
        1 => Just(Kind::WrongMessage),
        1 => Just(Kind::TorsionRAfterSigning),
        1 => Just(Kind::SPlusL),
    ]
}

fn make_signature(signer: &Signer, kind: Kind, message: &[u8], nonce: [u8; 32], torsion: usize) -> [u8; 64] {
    match kind {
        Kind::Valid => signer.sign(message, nonce, 0),
        Kind::TorsionR => signer.sign(message, nonce, torsion),
        Kind::WrongMessage => signer.sign(&[message, b"!"].concat(), nonce, 0),
        Kind::TorsionRAfterSigning => {
            let mut sig = signer.sign(message, nonce, 0);
            let r = curve25519_dalek::edwards::CompressedEdwardsY(sig[..32].try_into().unwrap()).decompress().unwrap();
            sig[..32].copy_from_slice(&(r + EIGHT_TORSION[torsion]).compress().to_bytes());
            sig
        }
        Kind::SPlusL => {
            let mut sig = signer.sign(message, nonce, 0);
            let s = plus_l(&sig[32..]);
            sig[32..].copy_from_slice(&s);
            sig
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    signer: usize,
    kind: Kind,
    message: Vec<u8>,
    nonce: [u8; 32],
    torsion: usize,
}

fn case(signers: usize) -> impl Strategy<Value = Case> {
    (0..signers, kind(), proptest::collection::vec(any::<u8>(), 0..48), any::<[u8; 32]>(), 1usize..8)
        .prop_map(|(signer, kind, message, nonce, torsion)| Case { signer, kind, message, nonce, torsion })
}

fn batch() -> impl Strategy<Value = (Vec<([u8; 32], usize)>, Vec<Case>)> {
    // 1 to 4 keys, some of mixed order (torsion index 0 = a prime-order key); up to 300
    // signatures, so `verify_signatures_batch` splits them over several batches.
    proptest::collection::vec((any::<[u8; 32]>(), prop_oneof![3 => Just(0usize), 1 => 1usize..8]), 1..5)
        .prop_flat_map(|signers| {
            let n = signers.len();
            (Just(signers), proptest::collection::vec(case(n), 1..300))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn batch_verdict_is_the_single_verdict((secrets, cases) in batch()) {
        let signers: Vec<Signer> = secrets.iter().map(|(s, t)| Signer::new(*s, *t)).collect();
        let keys: Vec<PublicKey> = signers.iter().map(|s| parse_public_key(&s.public).unwrap()).collect();
        let signatures: Vec<[u8; 64]> =
            cases.iter().map(|c| make_signature(&signers[c.signer], c.kind, &c.message, c.nonce, c.torsion)).collect();
        let expected: Vec<usize> = (0..cases.len()).filter(|&i| !cases[i].kind.valid()).collect();
        let single: Vec<usize> =
            (0..cases.len()).filter(|&i| verify(&keys[cases[i].signer], &cases[i].message, &signatures[i]).is_err()).collect();
        prop_assert_eq!(&single, &expected, "single verification disagrees with ZIP 215");

        let items: Vec<BatchItem<'_>> = cases
            .iter()
            .zip(&signatures)
            .map(|(c, s)| BatchItem { key: &keys[c.signer], message: &c.message, signature: s })
            .collect();
        let failing: Vec<usize> = failing_in_batch(&items).into_iter().map(|(i, e)| {
            assert_eq!(e.code, ErrorCode::BadSignature);
            i
        }).collect();
        prop_assert_eq!(&failing, &single, "one batch");

        let messages: Vec<&[u8]> = cases.iter().map(|c| c.message.as_slice()).collect();
        let sigs: Vec<&[u8]> = signatures.iter().map(|s| s.as_slice()).collect();
        let raw_keys: Vec<&[u8]> = cases.iter().map(|c| signers[c.signer].public.as_slice()).collect();
        prop_assert_eq!(verify_signatures_batch(&messages, &sigs, &raw_keys).unwrap(), single, "chunked batches");
    }
}

// --- the same through events: a room chain and independent events -------------------------

/// The golden room's events with the origin signature of some replaced by a signature of the
/// given kind made with the origin's own key (the origin signature is in neither the event ID
/// nor the hub signature, so IDs and links stay valid).
fn golden_with(kinds: &[(usize, Kind)]) -> (KeyRing, Vec<Vec<u8>>) {
    let golden = load("mimi_events.json");
    let mut ring = KeyRing::new();
    let mut seeds = std::collections::HashMap::new();
    for s in golden["servers"].as_array().unwrap() {
        let sk = SigningKey::from_seed(&hx(&s["seed"]), s["key_id"].as_str().unwrap()).unwrap();
        let vk = VerifyKey { key_id: vl(&sk.key_id), public_key: Opaque::new(sk.public_key().to_vec()), expired_ts: 0 };
        ring.add(s["server_name"].as_str().unwrap(), &vk).unwrap();
        seeds.insert(s["server_name"].as_str().unwrap().to_string(), (hx(&s["seed"]), sk.key_id.clone()));
    }
    let mut blobs: Vec<Vec<u8>> = golden["events"].as_array().unwrap().iter().map(|v| hx(&v["event"])).collect();
    for &(i, kind) in kinds {
        let mut ev = Event::decode(&blobs[i]).unwrap();
        let (seed, key_id) = &seeds[mimi_signaling::ids::server_of(ev.sender_str())];
        // RFC 8032's secret scalar from the seed: the first half of SHA-512(seed), clamped.
        let h = Sha512::digest(seed);
        let mut a = [0u8; 32];
        a.copy_from_slice(&h[..32]);
        a[0] &= 248;
        a[31] &= 127;
        a[31] |= 64;
        let signer = Signer { a: Scalar::from_bytes_mod_order(a), public: ring.lookup(mimi_signaling::ids::server_of(ev.sender_str()), key_id).unwrap().as_ref().try_into().unwrap() };
        let message = mimi_signaling::verify::prepare(ev.clone()).unwrap().origin_message;
        let sig = make_signature(&signer, kind, &message, [i as u8 + 1; 32], 1 + i % 7);
        ev.origin_signature = VarVec(vec![Signature::new(key_id, sig)]);
        blobs[i] = encode(&ev).unwrap();
    }
    (ring, blobs)
}

#[test]
fn events_with_torsion_in_r_verify_and_s_plus_l_is_named() {
    let n = load("mimi_events.json")["events"].as_array().unwrap().len();
    // Every event's origin signature with a small-order component in R: all valid.
    let all_torsion: Vec<(usize, Kind)> = (0..n).map(|i| (i, Kind::TorsionR)).collect();
    let (ring, blobs) = golden_with(&all_torsion);
    let refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
    for (i, outcome) in check_events(&refs, &ring).iter().enumerate() {
        assert!(outcome.is_ok(), "event {i}: {:?}", outcome.as_ref().err());
        let p = mimi_signaling::verify::prepare(Event::decode(refs[i]).unwrap()).unwrap();
        mimi_signaling::verify::verify_event(&p, &ring).unwrap();
    }
    let (valid, failure) = ChainValidator::new(ring.clone()).validate(&refs);
    assert!(failure.is_none(), "{:?}", failure.map(|f| f.error));
    assert_eq!(valid.len(), n);

    // Mixed: S + L and a wrong message on some events; exactly those fail, as bad_signature.
    let mut kinds = all_torsion;
    kinds[1].1 = Kind::SPlusL;
    kinds[n - 1].1 = Kind::SPlusL;
    kinds[n / 2].1 = Kind::WrongMessage;
    let (ring, blobs) = golden_with(&kinds);
    let refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
    let failing: Vec<usize> = check_events(&refs, &ring)
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.as_ref().err().map(|e| {
            assert_eq!(e.code, ErrorCode::BadSignature, "event {i}");
            assert!(e.message.starts_with("origin_signature"), "{}", e.message);
            i
        }))
        .collect();
    let mut expected = vec![1, n / 2, n - 1];
    expected.sort_unstable();
    expected.dedup();
    assert_eq!(failing, expected);
    let (valid, failure) = ChainValidator::new(ring).validate(&refs);
    let failure = failure.expect("the chain breaks at the first S + L");
    assert_eq!((failure.index, valid.len(), failure.error.code), (1, 1, ErrorCode::BadSignature));
}
