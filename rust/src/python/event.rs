//! `Event`, `LimitedEvent` and `Signature` for Python: immutable wrappers around the wire
//! structs, with the event ID computed once and cached.

use super::errors::IntoPyResult;
use super::keys::{PyKeyRing, PySigningKey};
use crate::crypto::hash::{event_id_from_reference_hash, sha256};
use crate::crypto::sign::HUB_LABEL;
use crate::error::MimiError;
use crate::ids;
use crate::verify::{prepare, verify_event, verify_limited};
use crate::wire::event::{Event, LimitedEvent, Signature, MAX_AUTH_EVENTS};
use crate::wire::vector::{Opaque, VarVec};
use crate::wire::{encode, vl};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::OnceLock;

#[pyclass(frozen, name = "Signature", module = "mimi_signaling")]
#[derive(Clone)]
pub struct PySignature {
    #[pyo3(get)]
    key_id: String,
    signature: Vec<u8>,
}

#[pymethods]
impl PySignature {
    #[new]
    fn new(key_id: String, signature: Vec<u8>) -> Self {
        PySignature { key_id, signature }
    }
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.signature)
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.key_id == other.key_id && self.signature == other.signature
    }
    fn __repr__(&self) -> String {
        format!("Signature({:?})", self.key_id)
    }
}

fn signatures(list: &[Signature]) -> Vec<PySignature> {
    list.iter()
        .map(|s| PySignature { key_id: s.key_id_str().to_string(), signature: s.signature.as_slice().to_vec() })
        .collect()
}

#[pyclass(frozen, name = "Event", module = "mimi_signaling")]
pub struct PyEvent {
    pub inner: Event,
    /// (reference hash, event ID), computed on first use.
    id: OnceLock<([u8; 32], String)>,
}

impl PyEvent {
    pub fn new(inner: Event) -> Self {
        PyEvent { inner, id: OnceLock::new() }
    }

    pub fn with_id(inner: Event, reference_hash: [u8; 32], event_id: String) -> Self {
        let id = OnceLock::new();
        let _ = id.set((reference_hash, event_id));
        PyEvent { inner, id }
    }

    pub fn reference_hash_array(&self) -> PyResult<[u8; 32]> {
        Ok(self.ids()?.0)
    }

    fn ids(&self) -> PyResult<&([u8; 32], String)> {
        if let Some(v) = self.id.get() {
            return Ok(v);
        }
        let h = crate::verify::reference_hash(&self.inner).py()?;
        Ok(self.id.get_or_init(|| (h, event_id_from_reference_hash(&h))))
    }
}

fn s(o: &Opaque) -> &str {
    std::str::from_utf8(o.as_slice()).unwrap_or("")
}

#[pymethods]
impl PyEvent {
    #[staticmethod]
    fn decode(data: &[u8]) -> PyResult<Self> {
        Ok(PyEvent::new(Event::decode(data).py()?))
    }
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &encode(&self.inner).py()?))
    }
    #[getter]
    fn room_id(&self) -> &str {
        s(&self.inner.room_id)
    }
    #[getter(r#type)]
    fn event_type(&self) -> &str {
        s(&self.inner.event_type)
    }
    #[getter]
    fn state_key(&self) -> Option<&str> {
        self.inner.state_key.as_ref().map(s)
    }
    #[getter]
    fn sender(&self) -> &str {
        s(&self.inner.sender)
    }
    #[getter]
    fn content<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.content.as_slice())
    }
    #[getter]
    fn auth_events(&self) -> Vec<&str> {
        self.inner.auth_events.iter().map(s).collect()
    }
    #[getter]
    fn prev_event(&self) -> &str {
        s(&self.inner.prev_event)
    }
    #[getter]
    fn origin_content_hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.origin_content_hash)
    }
    #[getter]
    fn hub_signature(&self) -> Vec<PySignature> {
        signatures(&self.inner.hub_signature)
    }
    #[getter]
    fn origin_signature(&self) -> Vec<PySignature> {
        signatures(&self.inner.origin_signature)
    }
    #[getter]
    fn event_id(&self) -> PyResult<&str> {
        Ok(&self.ids()?.1)
    }
    #[getter]
    fn is_state(&self) -> bool {
        self.inner.state_key.is_some()
    }
    #[getter]
    fn origin_server(&self) -> &str {
        ids::server_of(self.inner.sender_str())
    }
    #[getter]
    fn hub_server(&self) -> &str {
        ids::server_of(self.inner.room_id_str())
    }
    fn content_hash<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &sha256(&self.inner.origin().content_hash_input().py()?)))
    }
    fn reference_hash<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.ids()?.0))
    }
    fn redacted(&self) -> PyResult<Self> {
        Ok(PyEvent::new(self.inner.redacted().py()?))
    }
    fn is_redacted(&self) -> PyResult<bool> {
        let origin = self.inner.origin();
        let actual = sha256(&origin.content_hash_input().py()?);
        if actual == self.inner.origin_content_hash {
            return Ok(false);
        }
        Ok(origin.redacted_content().py()?.as_ref() == self.inner.content.as_slice())
    }
    fn content_hash_input<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.inner.origin().content_hash_input().py()?))
    }
    fn reference_hash_input<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let redacted = self.inner.origin().redacted_content().py()?;
        Ok(PyBytes::new(py, &self.inner.reference_hash_input(&redacted).py()?))
    }
    fn origin_signed_form<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let origin = self.inner.origin();
        let redacted = origin.redacted_content().py()?;
        Ok(PyBytes::new(py, &origin.origin_signed_form(&redacted, &self.inner.origin_content_hash).py()?))
    }
    fn limited(&self) -> PyResult<PyLimitedEvent> {
        if self.is_redacted()? {
            return Err(super::errors::to_py(MimiError::bad_content_hash("a redacted event has no limited form")));
        }
        Ok(PyLimitedEvent { inner: self.inner.limited() })
    }
    /// Hashes and both signatures; the event ID computed on the way is kept (the next
    /// `event_id` is not computed again).
    fn verify(&self, py: Python<'_>, keyring: &PyKeyRing) -> PyResult<()> {
        let ev = self.inner.clone();
        let keys = &keyring.inner;
        let (ids, verdict) = py.allow_threads(|| match prepare(ev) {
            Ok(p) => (Some((p.reference_hash, p.event_id.clone())), verify_event(&p, keys)),
            Err(e) => (None, Err(e)),
        });
        if let Some(ids) = ids {
            let _ = self.id.set(ids); // already set: the same value
        }
        verdict.py()
    }

    fn with_content(&self, content: Vec<u8>) -> Self {
        PyEvent::new(Event { content: Opaque::new(content), ..self.inner.clone() })
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
    fn __hash__(&self) -> PyResult<u64> {
        let h = self.ids()?.0;
        Ok(u64::from_be_bytes(h[..8].try_into().unwrap_or([0; 8])))
    }
    fn __repr__(&self) -> String {
        let id = self.ids().map(|v| v.1.clone()).unwrap_or_else(|_| "?".into());
        format!("Event({id}, type={:?}, sender={:?})", self.event_type(), self.sender())
    }
}

#[pyclass(frozen, name = "LimitedEvent", module = "mimi_signaling")]
#[derive(Clone)]
pub struct PyLimitedEvent {
    pub inner: LimitedEvent,
}

/// Auth event IDs and prev event from Python, checked like a decoder would.
fn hub_fields(auth_events: Vec<String>, prev_event: &str) -> crate::error::Result<(VarVec<Opaque>, Opaque)> {
    if auth_events.len() > MAX_AUTH_EVENTS {
        return Err(MimiError::too_large(format!("{} auth events, the limit is {MAX_AUTH_EVENTS}", auth_events.len())));
    }
    for id in &auth_events {
        ids::validate_event_id(id)?;
    }
    if !prev_event.is_empty() {
        ids::validate_event_id(prev_event)?;
    }
    Ok((VarVec(auth_events.iter().map(vl).collect()), vl(prev_event)))
}

impl PyLimitedEvent {
    /// Fill the hub's fields, check the size the signed event will have, compute the ID.
    fn unsigned(&self, auth_events: Vec<String>, prev_event: &str, hub_key_id: &str) -> PyResult<(Event, [u8; 32])> {
        use tls_codec::Size;
        let (auth, prev) = hub_fields(auth_events, prev_event).py()?;
        let ev = self.inner.clone().into_event(auth, prev, VarVec(vec![]));
        let signature = Signature::new(hub_key_id, [0u8; 64]);
        let size = ev.tls_serialized_len() + signature.tls_serialized_len();
        if size > crate::wire::event::MAX_EVENT_SIZE {
            return Err(super::errors::to_py(MimiError::too_large(format!("encoded event would be {size} bytes, the limit is 65536"))));
        }
        let hash = crate::verify::reference_hash(&ev).py()?;
        Ok((ev, hash))
    }
}

/// Add the hub signature over the reference-hash input.
pub fn sign_event(mut ev: Event, hash: [u8; 32], key: &crate::crypto::sign::SigningKey) -> PyEvent {
    // The reference input was valid when the hash was computed, so rebuilding it cannot fail;
    // an empty signature set would then fail every verification, never pass one.
    if let Ok(redacted) = ev.origin().redacted_content().map(|r| r.into_owned()) {
        if let Ok(input) = ev.reference_hash_input(&redacted) {
            ev.hub_signature = VarVec(vec![Signature::new(&key.key_id, key.sign_with_label(HUB_LABEL, &input))]);
        }
    }
    PyEvent::with_id(ev, hash, event_id_from_reference_hash(&hash))
}

#[pymethods]
impl PyLimitedEvent {
    #[staticmethod]
    #[pyo3(signature = (room_id, r#type, state_key, sender, content, origin_key))]
    fn create(
        room_id: &str,
        r#type: &str,
        state_key: Option<&str>,
        sender: &str,
        content: Vec<u8>,
        origin_key: &PySigningKey,
    ) -> PyResult<Self> {
        let mut ev = LimitedEvent {
            room_id: vl(room_id),
            event_type: vl(r#type),
            state_key: state_key.map(vl),
            sender: vl(sender),
            content: Opaque::new(content),
            origin_content_hash: [0; 32],
            origin_signature: VarVec(vec![]),
        };
        ev.origin().validate().py()?;
        let origin = ev.origin();
        let hash = sha256(&origin.content_hash_input().py()?);
        let redacted = origin.redacted_content().py()?;
        let signed = origin.origin_signed_form(&redacted, &hash).py()?;
        let sig = origin_key.inner.sign_with_label(crate::crypto::sign::ORIGIN_LABEL, &signed);
        drop(redacted);
        ev.origin_content_hash = hash;
        ev.origin_signature = VarVec(vec![Signature::new(&origin_key.inner.key_id, sig)]);
        let size = encode(&ev).py()?.len();
        if size > crate::wire::event::MAX_EVENT_SIZE {
            return Err(super::errors::to_py(MimiError::too_large(format!("encoded event would be {size} bytes, the limit is 65536"))));
        }
        Ok(PyLimitedEvent { inner: ev })
    }
    #[staticmethod]
    fn decode(data: &[u8]) -> PyResult<Self> {
        Ok(PyLimitedEvent { inner: LimitedEvent::decode(data).py()? })
    }
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &encode(&self.inner).py()?))
    }
    #[getter]
    fn room_id(&self) -> &str {
        s(&self.inner.room_id)
    }
    #[getter(r#type)]
    fn event_type(&self) -> &str {
        s(&self.inner.event_type)
    }
    #[getter]
    fn state_key(&self) -> Option<&str> {
        self.inner.state_key.as_ref().map(s)
    }
    #[getter]
    fn sender(&self) -> &str {
        s(&self.inner.sender)
    }
    #[getter]
    fn content<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.content.as_slice())
    }
    #[getter]
    fn origin_content_hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.origin_content_hash)
    }
    #[getter]
    fn origin_signature(&self) -> Vec<PySignature> {
        signatures(&self.inner.origin_signature)
    }
    #[getter]
    fn origin_server(&self) -> &str {
        ids::server_of(self.inner.origin().sender())
    }
    fn content_hash<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &sha256(&self.inner.origin().content_hash_input().py()?)))
    }
    fn verify(&self, keyring: &PyKeyRing) -> PyResult<()> {
        verify_limited(&self.inner, &keyring.inner).py()
    }
    fn to_event(&self, auth_events: Vec<String>, prev_event: &str, hub_key: &PySigningKey) -> PyResult<PyEvent> {
        let (ev, hash) = self.unsigned(auth_events, prev_event, &hub_key.inner.key_id)?;
        Ok(sign_event(ev, hash, &hub_key.inner))
    }
    /// The fully-formed event without its hub signature, with its ID computed: for the hub's
    /// group commit, which sequences events one by one and signs them together afterwards with
    /// ``sign_events``.  Not valid on the wire until signed.
    fn to_unsigned_event(&self, auth_events: Vec<String>, prev_event: &str, hub_key_id: &str) -> PyResult<PyEvent> {
        ids::validate_key_id(hub_key_id).py()?;
        let (ev, hash) = self.unsigned(auth_events, prev_event, hub_key_id)?;
        Ok(PyEvent::with_id(ev, hash, event_id_from_reference_hash(&hash)))
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
    fn __repr__(&self) -> String {
        format!("LimitedEvent(type={:?}, sender={:?})", self.event_type(), self.sender())
    }
}
