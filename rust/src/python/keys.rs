//! `SigningKey`, `VerifyKey`, `ServerKeys` and `KeyRing` for Python.

use super::errors::IntoPyResult;
use crate::crypto::keyring::KeyRing;
use crate::crypto::sign::{self, parse_public_key, SigningKey};
use crate::wire::keys::{ServerKeys, VerifyKey};
use crate::wire::vector::{Opaque, VarVec};
use crate::wire::{encode, vl};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(frozen, name = "VerifyKey", module = "mimi_signaling")]
#[derive(Clone)]
pub struct PyVerifyKey {
    pub inner: VerifyKey,
}

#[pymethods]
impl PyVerifyKey {
    #[new]
    #[pyo3(signature = (key_id, public_key, expired_ts = 0))]
    fn new(key_id: &str, public_key: &[u8], expired_ts: u64) -> PyResult<Self> {
        let inner = VerifyKey { key_id: vl(key_id), public_key: Opaque::new(public_key.to_vec()), expired_ts };
        inner.validate().py()?;
        Ok(PyVerifyKey { inner })
    }
    #[getter]
    fn key_id(&self) -> &str {
        self.inner.key_id_str()
    }
    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.public_key.as_slice())
    }
    #[getter]
    fn expired_ts(&self) -> u64 {
        self.inner.expired_ts
    }
    fn verify(&self, message: &[u8], signature: &[u8]) -> PyResult<()> {
        let key = parse_public_key(self.inner.public_key.as_slice()).py()?;
        sign::verify(&key, message, signature).py()
    }
    fn verify_with_label(&self, label: &[u8], content: &[u8], signature: &[u8]) -> PyResult<()> {
        self.verify(&sign::sign_content(label, content), signature)
    }
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &encode(&self.inner).py()?))
    }
    #[staticmethod]
    fn decode(data: &[u8]) -> PyResult<Self> {
        Ok(PyVerifyKey { inner: VerifyKey::decode(data).py()? })
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
    fn __repr__(&self) -> String {
        format!("VerifyKey({:?}, expired_ts={})", self.inner.key_id_str(), self.inner.expired_ts)
    }
}

#[pyclass(frozen, name = "SigningKey", module = "mimi_signaling")]
#[derive(Clone)]
pub struct PySigningKey {
    pub inner: SigningKey,
}

#[pymethods]
impl PySigningKey {
    #[new]
    fn new(seed: &[u8], key_id: &str) -> PyResult<Self> {
        Ok(PySigningKey { inner: SigningKey::from_seed(seed, key_id).py()? })
    }
    #[staticmethod]
    #[pyo3(signature = (key_id = None))]
    fn generate(key_id: Option<&str>) -> PyResult<Self> {
        Ok(PySigningKey { inner: SigningKey::generate(key_id).py()? })
    }
    #[getter]
    fn key_id(&self) -> &str {
        &self.inner.key_id
    }
    #[getter]
    fn seed<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.key.as_bytes())
    }
    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.public_key())
    }
    #[pyo3(signature = (expired_ts = 0))]
    fn verify_key(&self, expired_ts: u64) -> PyVerifyKey {
        PyVerifyKey {
            inner: VerifyKey { key_id: vl(&self.inner.key_id), public_key: Opaque::new(self.inner.public_key().to_vec()), expired_ts },
        }
    }
    fn sign<'py>(&self, py: Python<'py>, message: &[u8]) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.sign(message))
    }
    fn sign_with_label<'py>(&self, py: Python<'py>, label: &[u8], content: &[u8]) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.sign_with_label(label, content))
    }
    fn __repr__(&self) -> String {
        // never print the seed
        format!("SigningKey({:?})", self.inner.key_id)
    }
}

#[pyclass(frozen, name = "ServerKeys", module = "mimi_signaling")]
#[derive(Clone)]
pub struct PyServerKeys {
    pub inner: ServerKeys,
}

#[pymethods]
impl PyServerKeys {
    #[new]
    fn new(server_name: &str, keys: Vec<PyVerifyKey>) -> PyResult<Self> {
        let inner = ServerKeys { server_name: vl(server_name), keys: VarVec(keys.into_iter().map(|k| k.inner).collect()) };
        inner.validate().py()?;
        Ok(PyServerKeys { inner })
    }
    #[getter]
    fn server_name(&self) -> &str {
        self.inner.server_name_str()
    }
    #[getter]
    fn keys(&self) -> Vec<PyVerifyKey> {
        self.inner.keys.iter().map(|k| PyVerifyKey { inner: k.clone() }).collect()
    }
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &encode(&self.inner).py()?))
    }
    #[staticmethod]
    fn decode(data: &[u8]) -> PyResult<Self> {
        Ok(PyServerKeys { inner: ServerKeys::decode(data).py()? })
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
    fn __repr__(&self) -> String {
        format!("ServerKeys({:?}, {} keys)", self.inner.server_name_str(), self.inner.keys.len())
    }
}

/// Immutable: every method that adds keys returns a new ring, so a ring handed to a check
/// (or to another thread) never changes under it; the key store swaps rings copy-on-write.
#[pyclass(frozen, name = "KeyRing", module = "mimi_signaling")]
#[derive(Clone, Default)]
pub struct PyKeyRing {
    pub inner: KeyRing,
}

#[pymethods]
impl PyKeyRing {
    #[new]
    #[pyo3(signature = (server_keys = Vec::new()))]
    fn new(server_keys: Vec<PyRef<'_, PyServerKeys>>) -> PyResult<Self> {
        let mut inner = KeyRing::default();
        for keys in &server_keys {
            inner.add_server_keys(&keys.inner).py()?;
        }
        Ok(PyKeyRing { inner })
    }
    /// A new ring: this one plus ``key`` for ``server_name``.
    fn with_key(&self, server_name: &str, key: &PyVerifyKey) -> PyResult<Self> {
        crate::ids::validate_server_name(server_name).py()?;
        let mut inner = self.inner.clone();
        inner.add(server_name, &key.inner).py()?;
        Ok(PyKeyRing { inner })
    }
    /// A new ring: this one plus every key of ``keys`` for its server.
    fn with_server_keys(&self, keys: &PyServerKeys) -> PyResult<Self> {
        let mut inner = self.inner.clone();
        inner.add_server_keys(&keys.inner).py()?;
        Ok(PyKeyRing { inner })
    }
    fn has_server(&self, server_name: &str) -> bool {
        self.inner.has_server(server_name)
    }
    fn servers(&self) -> Vec<String> {
        let mut s: Vec<String> = self.inner.servers().map(str::to_string).collect();
        s.sort();
        s
    }
    fn get(&self, server_name: &str) -> Vec<PyVerifyKey> {
        self.inner
            .keys_of(server_name)
            .iter()
            .map(|k| PyVerifyKey {
                inner: VerifyKey { key_id: vl(&k.key_id), public_key: Opaque::new(k.key.as_ref().to_vec()), expired_ts: k.expired_ts },
            })
            .collect()
    }
}
