//! # mimi-signaling core
//!
//! The hot path of the MIMI signaling protocol (draft-ralston-mimi-signaling with the `m.0`
//! policy envelope) as the project's PROFILE.md fixes it. Layers, each using only the ones
//! above it:
//!
//! - [`error`]: the wire error codes and the error type.
//! - [`ids`]: identifier grammar.
//! - [`wire`]: every struct of the profile on `tls_codec`, strict decoding.
//! - [`redaction`]: what redaction keeps, per event type.
//! - [`crypto`]: SHA-256, event IDs, Ed25519 SignWithLabel, key rings.
//! - [`verify`]: checking one event.
//! - [`batch`]: many events at once on all cores, batch Ed25519, chain validation.
//!
//! The Python bindings live in `python` behind the `python` feature, so `cargo test` and the
//! fuzz targets build without Python.

pub mod batch;
pub mod crypto;
pub mod error;
pub mod ids;
pub mod redaction;
pub mod verify;
pub mod wire;

// Signed-event builders for the unit tests.
#[cfg(test)]
mod testkit;

#[cfg(feature = "python")]
mod python;

// Only in the Python extension: the rlib (cargo test, fuzz targets) keeps the system allocator.
#[cfg(feature = "python")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use error::{ErrorCode, MimiError, Result};
