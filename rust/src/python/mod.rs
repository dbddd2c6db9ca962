//! The `mimi_signaling._core` extension module (built only with the `python` feature).

mod batch;
mod content;
pub mod errors;
mod event;
mod keys;
mod transport;

use crate::crypto::{hash, sign};
use crate::ids;
use crate::wire::vector::{read_len, write_len};
use errors::IntoPyResult;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyfunction]
fn parse_room_id(room_id: &str) -> PyResult<(String, String)> {
    let (a, b) = ids::parse_room_id(room_id).py()?;
    Ok((a.to_string(), b.to_string()))
}

#[pyfunction]
fn parse_user_id(user_id: &str) -> PyResult<(String, String)> {
    let (a, b) = ids::parse_user_id(user_id).py()?;
    Ok((a.to_string(), b.to_string()))
}

#[pyfunction]
fn validate_server_name(server_name: &str) -> PyResult<()> {
    ids::validate_server_name(server_name).py()
}

#[pyfunction]
fn validate_event_type(event_type: &str) -> PyResult<()> {
    ids::validate_event_type(event_type).py()
}

#[pyfunction]
fn validate_role_id(role_id: &str) -> PyResult<()> {
    ids::validate_role_id(role_id).py()
}

#[pyfunction]
fn validate_key_id(key_id: &str) -> PyResult<()> {
    ids::validate_key_id(key_id).py()
}

#[pyfunction]
fn validate_event_id(event_id: &str) -> PyResult<()> {
    ids::validate_event_id(event_id).py()
}

#[pyfunction]
fn encode_varint<'py>(py: Python<'py>, value: usize) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(4);
    write_len(&mut out, value)
        .map_err(|_| crate::error::MimiError::malformed(format!("{value} does not fit a 30-bit length")))
        .py()?;
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
fn decode_varint(data: &[u8]) -> PyResult<(usize, usize)> {
    let (v, rest) = read_len(data).map_err(crate::error::MimiError::from).py()?;
    Ok((v, data.len() - rest.len()))
}

#[pyfunction]
fn base64url_encode(data: &[u8]) -> String {
    hash::base64url_encode(data)
}

#[pyfunction]
fn base64url_decode<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyBytes>> {
    let b = hash::base64url_decode(text)
        .ok_or_else(|| crate::error::MimiError::malformed("not unpadded URL-safe base64"))
        .py()?;
    Ok(PyBytes::new(py, &b))
}

#[pyfunction]
fn sha256<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &hash::sha256(data))
}

/// The stores' 64-bit lookup keys of event IDs, one call per batch of rows.  Private: a
/// storage detail (``storage/base.py``), not part of the protocol library's API.
#[pyfunction]
#[pyo3(name = "_event_keys")]
fn event_keys(event_ids: Vec<String>) -> Vec<i64> {
    event_ids.iter().map(|id| hash::event_key(id)).collect()
}

#[pyfunction]
fn sign_content<'py>(py: Python<'py>, label: &[u8], content: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &sign::sign_content(label, content))
}

#[pyfunction]
fn encode_room_file_header<'py>(py: Python<'py>) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &crate::wire::room_file::header())
}

#[pyfunction]
fn encode_room_file_record<'py>(py: Python<'py>, kind: u8, body: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &crate::wire::room_file::record(kind, body).py()?))
}

/// mimalloc's `mi_option_purge_delay` (the same value in its v2 and v3 `mimalloc.h`; the sys
/// crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Return freed memory to the OS at once (mimalloc delays it by default): the batch calls
/// free a chunk's events on Python's thread while rayon's threads allocate the next, and with
/// the delay `mimi verify` peaked at 135-150 MB instead of 94-100 MB (100,000-event room, same
/// CPU time within the noise). An operator's `MIMALLOC_PURGE_DELAY` still wins.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one option value; mimalloc reads options atomically at use.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

/// Set mimalloc's purge delay (milliseconds; -1: never purge): how long freed memory stays
/// with the process before it goes back to the OS.  `mimi serve` sets 1,000: a server frees
/// and allocates a batch's worth of memory many times a second, and with 0 every batch faulted
/// its pages in again (3-4 µs of a hub's CPU per event in a `perf` profile).  An operator's
/// `MIMALLOC_PURGE_DELAY` wins (the caller checks it).  Private: a process setting, not
/// part of the protocol library's API.
#[pyfunction]
#[pyo3(name = "_set_allocator_purge_delay")]
fn set_allocator_purge_delay(milliseconds: i64) -> PyResult<()> {
    if !(-1..=3_600_000).contains(&milliseconds) {
        return Err(pyo3::exceptions::PyValueError::new_err("the purge delay is -1 or 0 to 3,600,000 milliseconds"));
    }
    // SAFETY: sets one option value; mimalloc reads options atomically at use.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, milliseconds as std::os::raw::c_long) };
    Ok(())
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    tune_allocator();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add("MAX_EVENT_SIZE", crate::wire::event::MAX_EVENT_SIZE)?;
    m.add("MAX_ID_SIZE", ids::MAX_ID_SIZE)?;
    m.add("MAX_AUTH_EVENTS", crate::wire::event::MAX_AUTH_EVENTS)?;
    m.add("MAX_SIGNATURES", crate::wire::event::MAX_SIGNATURES)?;
    m.add("ORIGIN_LABEL", PyBytes::new(m.py(), sign::ORIGIN_LABEL))?;
    m.add("HUB_LABEL", PyBytes::new(m.py(), sign::HUB_LABEL))?;
    m.add("ROOM_FILE_MAGIC", PyBytes::new(m.py(), crate::wire::room_file::MAGIC))?;
    m.add("ROOM_FILE_KEYS_RECORD", crate::wire::room_file::KIND_SERVER_KEYS)?;
    m.add("ROOM_FILE_EVENT_RECORD", crate::wire::room_file::KIND_EVENT)?;
    m.add("REGISTERED_TYPES", crate::wire::content::REGISTERED_TYPES.to_vec())?;
    m.add_class::<keys::PyVerifyKey>()?;
    m.add_class::<keys::PySigningKey>()?;
    m.add_class::<keys::PyServerKeys>()?;
    m.add_class::<keys::PyKeyRing>()?;
    m.add_class::<event::PySignature>()?;
    m.add_class::<event::PyEvent>()?;
    m.add_class::<event::PyLimitedEvent>()?;
    event::register(m)?;
    content::register(m)?;
    transport::register(m)?;
    batch::register(m)?;
    for f in [
        wrap_pyfunction!(parse_room_id, m)?,
        wrap_pyfunction!(parse_user_id, m)?,
        wrap_pyfunction!(validate_server_name, m)?,
        wrap_pyfunction!(validate_event_type, m)?,
        wrap_pyfunction!(validate_role_id, m)?,
        wrap_pyfunction!(validate_key_id, m)?,
        wrap_pyfunction!(validate_event_id, m)?,
        wrap_pyfunction!(encode_varint, m)?,
        wrap_pyfunction!(decode_varint, m)?,
        wrap_pyfunction!(base64url_encode, m)?,
        wrap_pyfunction!(base64url_decode, m)?,
        wrap_pyfunction!(sha256, m)?,
        wrap_pyfunction!(event_keys, m)?,
        wrap_pyfunction!(sign_content, m)?,
        wrap_pyfunction!(encode_room_file_header, m)?,
        wrap_pyfunction!(encode_room_file_record, m)?,
        wrap_pyfunction!(errors::error_from_code, m)?,
        wrap_pyfunction!(set_allocator_purge_delay, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
