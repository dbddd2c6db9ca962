//! The profile's golden room (`../shared/vectors/mimi_events.json`) reproduced byte for byte
//! from the seeds, plus the RFC 8032 and RFC 9420 vectors, through the pure-Rust API.

mod common;
use common::{hx, load};
use serde_json::Value;

use mimi_signaling::batch::{check_events, ChainValidator};
use mimi_signaling::crypto::hash::{event_id_from_reference_hash, sha256};
use mimi_signaling::crypto::keyring::KeyRing;
use mimi_signaling::crypto::sign::{sign_content, SigningKey, HUB_LABEL, ORIGIN_LABEL};
use mimi_signaling::verify::{prepare, verify_event, verify_limited};
use mimi_signaling::wire::event::{Event, LimitedEvent, Signature};
use mimi_signaling::wire::keys::VerifyKey;
use mimi_signaling::wire::room_file::RoomFileReader;
use mimi_signaling::wire::vector::{read_len, Opaque, VarVec};
use mimi_signaling::wire::{encode, vl};

fn keyring_and_keys(golden: &Value) -> (KeyRing, Vec<(String, SigningKey)>) {
    let mut ring = KeyRing::new();
    let mut keys = vec![];
    for s in golden["servers"].as_array().unwrap() {
        let sk = SigningKey::from_seed(&hx(&s["seed"]), s["key_id"].as_str().unwrap()).unwrap();
        assert_eq!(sk.public_key().to_vec(), hx(&s["public_key"]));
        let vk = VerifyKey { key_id: vl(&sk.key_id), public_key: Opaque::new(sk.public_key().to_vec()), expired_ts: 0 };
        ring.add(s["server_name"].as_str().unwrap(), &vk).unwrap();
        keys.push((s["server_name"].as_str().unwrap().to_string(), sk));
    }
    (ring, keys)
}

#[test]
fn golden_room_byte_for_byte() {
    let golden = load("mimi_events.json");
    let (ring, keys) = keyring_and_keys(&golden);
    let key_of = |server: &str| keys.iter().find(|(s, _)| s == server).map(|(_, k)| k.clone()).unwrap();
    for v in golden["events"].as_array().unwrap() {
        let note = v["note"].as_str().unwrap();
        let bytes = hx(&v["event"]);
        let ev = Event::decode(&bytes).unwrap_or_else(|e| panic!("{note}: {e}"));
        assert_eq!(encode(&ev).unwrap(), bytes, "{note}: re-encoding");
        assert_eq!(ev.room_id_str(), v["room_id"].as_str().unwrap());
        assert_eq!(ev.event_type_str(), v["type"].as_str().unwrap());
        assert_eq!(ev.content.as_slice(), &hx(&v["content"])[..]);
        let origin = ev.origin();
        assert_eq!(origin.content_hash_input().unwrap(), hx(&v["content_hash_input"]), "{note}");
        assert_eq!(sha256(&origin.content_hash_input().unwrap()).to_vec(), hx(&v["origin_content_hash"]));
        let redacted = origin.redacted_content().unwrap();
        assert_eq!(redacted.to_vec(), hx(&v["redacted_content"]), "{note}: redacted content");
        let signed = origin.origin_signed_form(&redacted, &ev.origin_content_hash).unwrap();
        assert_eq!(signed, hx(&v["origin_signed_form"]), "{note}");
        assert_eq!(sign_content(ORIGIN_LABEL, &signed), hx(&v["origin_sign_content"]), "{note}");
        let rin = ev.reference_hash_input(&redacted).unwrap();
        assert_eq!(rin, hx(&v["reference_hash_input"]), "{note}");
        assert_eq!(sha256(&rin).to_vec(), hx(&v["reference_hash"]));
        assert_eq!(sign_content(HUB_LABEL, &rin), hx(&v["hub_sign_content"]));
        assert_eq!(event_id_from_reference_hash(&sha256(&rin)), v["event_id"].as_str().unwrap());

        // Re-sign from the seeds: Ed25519 is deterministic.
        let origin_key = key_of(mimi_signaling::ids::server_of(ev.sender_str()));
        let hub_key = key_of(mimi_signaling::ids::server_of(ev.room_id_str()));
        let osig = origin_key.sign_with_label(ORIGIN_LABEL, &signed);
        assert_eq!(ev.origin_signature[0].signature.as_slice(), &osig[..], "{note}: origin signature");
        let hsig = hub_key.sign_with_label(HUB_LABEL, &rin);
        assert_eq!(ev.hub_signature[0].signature.as_slice(), &hsig[..], "{note}: hub signature");

        // limited event, redacted event
        let limited = ev.limited();
        assert_eq!(encode(&limited).unwrap(), hx(&v["limited_event"]), "{note}: limited");
        verify_limited(&LimitedEvent::decode(&hx(&v["limited_event"])).unwrap(), &ring).unwrap();
        let red = ev.redacted().unwrap();
        assert_eq!(encode(&red).unwrap(), hx(&v["redacted_event"]), "{note}: redacted event");

        let p = prepare(ev.clone()).unwrap();
        verify_event(&p, &ring).unwrap();
        assert!(!p.redacted);
        let pr = prepare(red).unwrap();
        verify_event(&pr, &ring).unwrap();
        assert_eq!(pr.event_id, p.event_id, "{note}: redaction keeps the ID");
        assert_eq!(pr.redacted, hx(&v["redacted_event"]) != bytes);

        // rebuild the fully-formed event from its limited event
        let auth: Vec<Opaque> = ev.auth_events.iter().cloned().collect();
        let mut rebuilt = limited.clone().into_event(VarVec(auth), ev.prev_event.clone(), VarVec(vec![]));
        let rebuilt_hash_input = rebuilt.reference_hash_input(&redacted).unwrap();
        rebuilt.hub_signature = VarVec(vec![Signature::new(&hub_key.key_id, hub_key.sign_with_label(HUB_LABEL, &rebuilt_hash_input))]);
        assert_eq!(encode(&rebuilt).unwrap(), bytes);
    }
}

#[test]
fn golden_room_file_validates_as_a_chain() {
    let golden = load("mimi_events.json");
    let data = hx(&golden["room_file"]);
    let mut reader = RoomFileReader::open(&data[..]).unwrap();
    let mut ring = KeyRing::new();
    for k in &reader.server_keys {
        ring.add_server_keys(k).unwrap();
    }
    assert_eq!(reader.server_keys.len(), 2);
    let events = reader.read_events(1000).unwrap();
    assert_eq!(events.len(), golden["events"].as_array().unwrap().len());
    let refs: Vec<&[u8]> = events.iter().map(|e| &e[..]).collect();
    let mut v = ChainValidator::new(ring.clone());
    let (ok, failure) = v.validate(&refs);
    assert!(failure.is_none(), "{failure:?}");
    let ids: Vec<String> = ok.iter().map(|p| p.event_id.clone()).collect();
    let expected: Vec<String> = golden["events"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, expected);

    // Swap two events: the chain breaks at the first moved one, naming it.
    let mut swapped = refs.clone();
    swapped.swap(4, 5);
    let (ok, failure) = ChainValidator::new(ring.clone()).validate(&swapped);
    let f = failure.expect("swapped events must fail");
    assert_eq!(f.index, 4);
    assert_eq!(ok.len(), 4);
    assert_eq!(f.event_id.as_deref(), Some(expected[5].as_str()));

    // Flip a byte inside one signature: batch verification finds exactly that event.
    let mut bad = events.clone();
    let n = bad[7].len();
    bad[7][n - 3] ^= 0x01;
    let refs: Vec<&[u8]> = bad.iter().map(|e| &e[..]).collect();
    let outcomes = check_events(&refs, &ring);
    let failed: Vec<usize> = outcomes.iter().enumerate().filter(|(_, o)| o.is_err()).map(|(i, _)| i).collect();
    assert_eq!(failed, vec![7]);
}

#[test]
fn rfc8032_vectors() {
    for v in load("ed25519_rfc8032.json").as_array().unwrap() {
        let sk = SigningKey::from_seed(&hx(&v["secret_key"]), "ed25519:t").unwrap();
        assert_eq!(sk.public_key().to_vec(), hx(&v["public_key"]));
        let sig = sk.sign(&hx(&v["message"]));
        assert_eq!(sig.to_vec(), hx(&v["signature"]), "{}", v["name"]);
        let vk = mimi_signaling::crypto::sign::parse_public_key(&hx(&v["public_key"])).unwrap();
        mimi_signaling::crypto::sign::verify(&vk, &hx(&v["message"]), &sig).unwrap();
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(mimi_signaling::crypto::sign::verify(&vk, &hx(&v["message"]), &bad).is_err());
    }
}

#[test]
fn rfc9420_varints_and_non_minimal_twins() {
    for v in load("mls_deserialization.json").as_array().unwrap() {
        let header = hx(&v["vlbytes_header"]);
        let len = v["length"].as_u64().unwrap() as usize;
        let (got, rest) = read_len(&header).unwrap();
        assert_eq!((got, rest.len()), (len, 0));
        let mut enc = vec![];
        mimi_signaling::wire::vector::write_len(&mut enc, len).unwrap();
        assert_eq!(enc, header);
        // every wider encoding of the same value is refused
        if header.len() == 1 {
            assert!(read_len(&[0x40, len as u8]).is_err());
        }
        if header.len() <= 2 {
            let b = (len as u32 | 0x8000_0000).to_be_bytes();
            assert!(read_len(&b).is_err());
        }
    }
}
