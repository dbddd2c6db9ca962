//! Ed25519 (RFC 8032, pure; verified under ZIP 215) with RFC 9420's SignWithLabel framing:
//! `struct { opaque label<V>; opaque content<V>; } SignContent`, signed as is (the MIMI labels
//! carry their own "MIMI signaling 1.0" prefix; no "MLS 1.0 " is added).

use crate::error::{MimiError, Result};
use crate::ids;
use crate::wire::vector::{prefix_len, write_len};
use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::Signer as _;
use ed25519_zebra::{Signature, VerificationKeyBytes};

pub const ORIGIN_LABEL: &[u8] = b"MIMI signaling 1.0 origin";
pub const HUB_LABEL: &[u8] = b"MIMI signaling 1.0 hub";

/// The SignContent bytes for `label` over `content`.
pub fn sign_content(label: &[u8], content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix_len(label.len()) + label.len() + prefix_len(content.len()) + content.len());
    // Writing a length into a Vec only fails past 2^30 - 1 bytes; callers bound sizes first.
    let _ = write_len(&mut out, label.len());
    out.extend_from_slice(label);
    let _ = write_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// An Ed25519 signing key with the key ID it is published under.
#[derive(Clone)]
pub struct SigningKey {
    pub key_id: String,
    pub key: ed25519_dalek::SigningKey,
}

impl SigningKey {
    pub fn from_seed(seed: &[u8], key_id: &str) -> Result<Self> {
        ids::validate_key_id(key_id)?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| MimiError::malformed(format!("an Ed25519 seed is 32 bytes, got {}", seed.len())))?;
        Ok(SigningKey { key_id: key_id.to_string(), key: ed25519_dalek::SigningKey::from_bytes(&seed) })
    }

    pub fn generate(key_id: Option<&str>) -> Result<Self> {
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let key_id = match key_id {
            Some(k) => k.to_string(),
            None => default_key_id(&key.verifying_key().to_bytes()),
        };
        ids::validate_key_id(&key_id)?;
        Ok(SigningKey { key_id, key })
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    pub fn sign_with_label(&self, label: &[u8], content: &[u8]) -> [u8; 64] {
        self.sign(&sign_content(label, content))
    }
}

/// `ed25519:` + the first 8 hex digits of the public key.
pub fn default_key_id(public_key: &[u8; 32]) -> String {
    let hex: String = public_key[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("ed25519:{hex}")
}

/// A published public key, checked (section 8) and decompressed once, for ZIP 215 verification.
pub type PublicKey = ed25519_zebra::VerificationKey;

/// Parse a published Ed25519 public key. PROFILE.md section 8: "A published public key MUST be
/// the canonical encoding of a point that is not of small order; a `ServerKeys` holding another
/// is `malformed`." (A small-order key lets one signature verify for many messages, and a
/// non-canonical encoding gives one key two spellings.) Verification itself accepts any
/// encoding ZIP 215 decodes: this check is on publishing, not on the signature rule.
pub fn parse_public_key(bytes: &[u8]) -> Result<PublicKey> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| MimiError::malformed(format!("an Ed25519 public key is 32 bytes, got {}", bytes.len())))?;
    let point = CompressedEdwardsY(arr)
        .decompress()
        .ok_or_else(|| MimiError::malformed("public key is not a valid Ed25519 point"))?;
    if point.compress().to_bytes() != arr {
        return Err(MimiError::malformed("public key is not the canonical encoding of its point"));
    }
    if point.is_small_order() {
        return Err(MimiError::malformed("public key is a small-order (weak) Ed25519 point"));
    }
    PublicKey::try_from(arr).map_err(|_| MimiError::malformed("public key is not a valid Ed25519 point"))
}

/// The 64 bytes of a signature; any other length is `bad_signature`. `S` is not checked here:
/// a non-canonical `S` fails verification (ZIP 215), with the same verdict in a batch.
pub fn parse_signature(signature: &[u8]) -> Result<Signature> {
    Signature::from_slice(signature).map_err(|_| MimiError::bad_signature("a signature is 64 bytes"))
}

/// Single verification under ZIP 215 (PROFILE.md section 2): `S < L`, `A` and `R` decoded as
/// ZIP 215 says, the cofactored equation `[8][S]B = [8]R + [8][k]A`.
pub fn verify(key: &PublicKey, message: &[u8], signature: &[u8]) -> Result<()> {
    let sig = parse_signature(signature)?;
    key.verify(&sig, message).map_err(|_| MimiError::bad_signature("Ed25519 signature does not verify"))
}

/// One signature of a batch.
#[derive(Clone, Copy)]
pub struct BatchItem<'a> {
    pub key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a [u8],
}

/// ZIP 215 batch verification: the positions in `items` of the signatures that fail, with
/// single verification's error, exactly those that single verification (`verify`) refuses.
///
/// ed25519-zebra's batch verifier is cofactored, so a batch of signatures that each verify
/// alone always passes, and one holding a signature that fails alone passes with probability
/// at most 2^-128 (random 128-bit coefficients); it coalesces the signatures of each key into
/// one term. When the batch fails, each signature is verified alone to name the failing ones.
pub fn failing_in_batch(items: &[BatchItem<'_>]) -> Vec<(usize, MimiError)> {
    let mut batch = ed25519_zebra::batch::Verifier::new();
    let mut all_parsed = true;
    for item in items {
        match Signature::from_slice(item.signature) {
            Ok(sig) => batch.queue((VerificationKeyBytes::from(*item.key), sig, item.message)),
            Err(_) => all_parsed = false,
        }
    }
    if all_parsed && batch.verify(rand::thread_rng()).is_ok() {
        return Vec::new();
    }
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| verify(item.key, item.message, item.signature).err().map(|e| (i, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_label() {
        let k = SigningKey::from_seed(&[7u8; 32], "ed25519:k").unwrap();
        let sig = k.sign_with_label(ORIGIN_LABEL, b"hello");
        let vk = parse_public_key(&k.public_key()).unwrap();
        verify(&vk, &sign_content(ORIGIN_LABEL, b"hello"), &sig).unwrap();
        assert!(verify(&vk, &sign_content(HUB_LABEL, b"hello"), &sig).is_err());
        assert!(SigningKey::from_seed(&[0u8; 31], "ed25519:k").is_err());
        assert!(parse_public_key(&[0u8; 32]).is_err() || parse_public_key(&[1u8; 32]).is_err());
    }
}
