//! Hashes, event IDs and Ed25519 SignWithLabel signatures.

pub mod hash;
pub mod keyring;
pub mod sign;
