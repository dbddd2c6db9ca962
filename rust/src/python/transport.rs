//! Transport structs for Python: the envelope class and encode/decode functions for each
//! request and response body.

use super::errors::IntoPyResult;
use super::event::PyEvent;
use crate::error::ErrorCode;
use crate::wire::transport::*;
use crate::wire::vector::{Opaque, VarVec};
use crate::wire::{encode, text, vl};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

#[pyclass(frozen, name = "TransactionEnvelope", module = "mimi_signaling")]
pub struct PyTransactionEnvelope {
    inner: TransactionEnvelope,
}

#[pymethods]
impl PyTransactionEnvelope {
    #[new]
    #[pyo3(signature = (transaction_type, payload, version = PROTOCOL_VERSION))]
    fn new(transaction_type: &str, payload: &[u8], version: u16) -> Self {
        // `&[u8]` borrows the bytes object (a `Vec<u8>` argument would be extracted element
        // by element through the sequence protocol: milliseconds for a batch).
        PyTransactionEnvelope {
            inner: TransactionEnvelope { version, transaction_type: vl(transaction_type), serialized_transaction: Opaque::new(payload.to_vec()) },
        }
    }
    #[getter]
    fn version(&self) -> u16 {
        self.inner.version
    }
    #[getter]
    fn transaction_type(&self) -> PyResult<String> {
        text("transaction_type", &self.inner.transaction_type).py()
    }
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.serialized_transaction.as_slice())
    }
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &encode(&self.inner).py()?))
    }
    #[staticmethod]
    fn decode(data: &[u8]) -> PyResult<Self> {
        Ok(PyTransactionEnvelope { inner: TransactionEnvelope::decode(data).py()? })
    }
    fn __repr__(&self) -> String {
        format!(
            "TransactionEnvelope({:?}, {} bytes, version={})",
            String::from_utf8_lossy(self.inner.transaction_type.as_slice()),
            self.inner.serialized_transaction.len(),
            self.inner.version
        )
    }
}

fn out<'py, T: tls_codec::Serialize + tls_codec::Size>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &encode(v).py()?))
}

fn events_of(list: Vec<PyRef<'_, PyEvent>>) -> VarVec<crate::wire::event::Event> {
    VarVec(list.iter().map(|e| e.inner.clone()).collect())
}

#[pyfunction]
fn encode_error_body<'py>(py: Python<'py>, code: u16, message: &str) -> PyResult<Bound<'py, PyBytes>> {
    // Bound the message so an error body never grows with attacker input.
    let mut msg = message.to_string();
    if msg.len() > 1024 {
        msg = crate::ids::truncate(&msg[..msg.floor_char_boundary_compat(1024)]);
    }
    out(py, &ErrorBody { code, message: vl(msg) })
}

trait FloorBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorBoundary for String {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

#[pyfunction]
fn decode_error_body(data: &[u8]) -> PyResult<(u16, String)> {
    ErrorBody::decode_checked(data).py()
}

#[pyfunction]
fn encode_get_event_request<'py>(py: Python<'py>, room_id: &str, event_id: &str) -> PyResult<Bound<'py, PyBytes>> {
    out(py, &GetEventRequest { room_id: vl(room_id), event_id: vl(event_id) })
}

#[pyfunction]
fn decode_get_event_request(data: &[u8]) -> PyResult<(String, String)> {
    GetEventRequest::decode_checked(data).py()
}

#[pyfunction]
#[pyo3(signature = (room_id, r#type, state_key))]
fn encode_get_state_request<'py>(py: Python<'py>, room_id: &str, r#type: &str, state_key: &str) -> PyResult<Bound<'py, PyBytes>> {
    out(py, &GetStateRequest { room_id: vl(room_id), event_type: vl(r#type), state_key: vl(state_key) })
}

#[pyfunction]
fn decode_get_state_request(data: &[u8]) -> PyResult<(String, String, String)> {
    GetStateRequest::decode_checked(data).py()
}

#[pyfunction]
fn encode_backfill_request<'py>(py: Python<'py>, room_id: &str, before: &str, limit: u16) -> PyResult<Bound<'py, PyBytes>> {
    out(py, &BackfillRequest { room_id: vl(room_id), before: vl(before), limit })
}

#[pyfunction]
fn decode_backfill_request(data: &[u8]) -> PyResult<(String, String, u16)> {
    BackfillRequest::decode_checked(data).py()
}

#[pyfunction]
fn encode_backfill_response<'py>(py: Python<'py>, events: Vec<PyRef<'_, PyEvent>>) -> PyResult<Bound<'py, PyBytes>> {
    out(py, &BackfillResponse { events: events_of(events) })
}

#[pyfunction]
fn decode_backfill_response(data: &[u8]) -> PyResult<Vec<PyEvent>> {
    Ok(BackfillResponse::decode_checked(data).py()?.into_iter().map(PyEvent::new).collect())
}

#[pyfunction]
fn encode_snapshot_request<'py>(py: Python<'py>, room_id: &str) -> PyResult<Bound<'py, PyBytes>> {
    out(py, &SnapshotRequest { room_id: vl(room_id) })
}

#[pyfunction]
fn decode_snapshot_request(data: &[u8]) -> PyResult<String> {
    SnapshotRequest::decode_checked(data).py()
}

#[pyfunction]
fn encode_snapshot_response<'py>(
    py: Python<'py>,
    state: Vec<PyRef<'_, PyEvent>>,
    auth_chain: Vec<PyRef<'_, PyEvent>>,
    latest: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    out(py, &SnapshotResponse { state: events_of(state), auth_chain: events_of(auth_chain), latest: vl(latest) })
}

#[pyfunction]
fn decode_snapshot_response(data: &[u8]) -> PyResult<(Vec<PyEvent>, Vec<PyEvent>, String)> {
    let (state, auth, latest) = SnapshotResponse::decode_checked(data).py()?;
    Ok((state.into_iter().map(PyEvent::new).collect(), auth.into_iter().map(PyEvent::new).collect(), latest))
}

/// Encode the request of `mimi.signaling.batch` from (transaction type, payload) pairs.
#[pyfunction]
fn encode_batch_request<'py>(py: Python<'py>, entries: Vec<(String, PyBackedBytes)>) -> PyResult<Bound<'py, PyBytes>> {
    let entries: Vec<(String, Vec<u8>)> = entries.into_iter().map(|(t, p)| (t, p.to_vec())).collect();
    let data = py.allow_threads(|| BatchRequest::encode_checked(entries)).py()?;
    Ok(PyBytes::new(py, &data))
}

#[pyfunction]
fn decode_batch_request<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Vec<(String, Bound<'py, PyBytes>)>> {
    let entries = BatchRequest::decode_checked(data).py()?;
    Ok(entries.into_iter().map(|(t, payload)| (t, PyBytes::new(py, &payload))).collect())
}

#[pyfunction]
fn encode_batch_response<'py>(py: Python<'py>, results: Vec<(u16, PyBackedBytes)>) -> PyResult<Bound<'py, PyBytes>> {
    let results: Vec<(u16, Vec<u8>)> = results.into_iter().map(|(s, b)| (s, b.to_vec())).collect();
    let data = py.allow_threads(|| BatchResponse::encode_checked(results)).py()?;
    Ok(PyBytes::new(py, &data))
}

#[pyfunction]
fn decode_batch_response<'py>(py: Python<'py>, data: &[u8], expected: usize) -> PyResult<Vec<(u16, Bound<'py, PyBytes>)>> {
    let results = BatchResponse::decode_checked(data, expected).py()?;
    Ok(results.into_iter().map(|(status, body)| (status, PyBytes::new(py, &body))).collect())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTransactionEnvelope>()?;
    m.add("PROTOCOL_VERSION", PROTOCOL_VERSION)?;
    m.add("TRANSACTION_TYPES", TRANSACTION_TYPES.to_vec())?;
    m.add("MAX_BACKFILL_LIMIT", MAX_BACKFILL_LIMIT)?;
    m.add("BATCH_TRANSACTION", BATCH)?;
    m.add("MAX_BATCH_ENTRIES", MAX_BATCH_ENTRIES)?;
    m.add("MAX_BATCH_BODY", MAX_BATCH_BODY)?;
    m.add_function(wrap_pyfunction!(encode_batch_request, m)?)?;
    m.add_function(wrap_pyfunction!(decode_batch_request, m)?)?;
    m.add_function(wrap_pyfunction!(encode_batch_response, m)?)?;
    m.add_function(wrap_pyfunction!(decode_batch_response, m)?)?;
    m.add("ERROR_CODES", ErrorCode::ALL.iter().map(|c| (*c as u16, c.name())).collect::<Vec<_>>())?;
    m.add_function(wrap_pyfunction!(encode_error_body, m)?)?;
    m.add_function(wrap_pyfunction!(decode_error_body, m)?)?;
    m.add_function(wrap_pyfunction!(encode_get_event_request, m)?)?;
    m.add_function(wrap_pyfunction!(decode_get_event_request, m)?)?;
    m.add_function(wrap_pyfunction!(encode_get_state_request, m)?)?;
    m.add_function(wrap_pyfunction!(decode_get_state_request, m)?)?;
    m.add_function(wrap_pyfunction!(encode_backfill_request, m)?)?;
    m.add_function(wrap_pyfunction!(decode_backfill_request, m)?)?;
    m.add_function(wrap_pyfunction!(encode_backfill_response, m)?)?;
    m.add_function(wrap_pyfunction!(decode_backfill_response, m)?)?;
    m.add_function(wrap_pyfunction!(encode_snapshot_request, m)?)?;
    m.add_function(wrap_pyfunction!(decode_snapshot_request, m)?)?;
    m.add_function(wrap_pyfunction!(encode_snapshot_response, m)?)?;
    m.add_function(wrap_pyfunction!(decode_snapshot_response, m)?)?;
    Ok(())
}
