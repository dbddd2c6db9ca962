//! Rust errors become specific Python exception classes (one per wire code), all subclasses
//! of `mimi_signaling.MimiError`, with `code`, `name` and `http_status` class attributes and
//! `index` / `event_id` instance attributes for batch failures.

use crate::error::{ErrorCode, MimiError as CoreError};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyType;

pyo3::create_exception!(mimi_signaling, MimiError, PyException, "Base class of every protocol error.");
pyo3::create_exception!(mimi_signaling, MalformedError, MimiError, "malformed (1)");
pyo3::create_exception!(mimi_signaling, BadSignatureError, MimiError, "bad_signature (2)");
pyo3::create_exception!(mimi_signaling, BadContentHashError, MimiError, "bad_content_hash (3)");
pyo3::create_exception!(mimi_signaling, PolicyRejectedError, MimiError, "policy_rejected (4)");
pyo3::create_exception!(mimi_signaling, UnknownRoomError, MimiError, "unknown_room (5)");
pyo3::create_exception!(mimi_signaling, NotFoundError, MimiError, "not_found (6)");
pyo3::create_exception!(mimi_signaling, NotHubError, MimiError, "not_hub (7)");
pyo3::create_exception!(mimi_signaling, TooLargeError, MimiError, "too_large (8)");
pyo3::create_exception!(mimi_signaling, RateLimitedError, MimiError, "rate_limited (9)");
pyo3::create_exception!(mimi_signaling, UnauthorizedError, MimiError, "unauthorized (10)");
pyo3::create_exception!(mimi_signaling, UnsupportedVersionError, MimiError, "unsupported_version (11)");
pyo3::create_exception!(mimi_signaling, InternalError, MimiError, "internal (12)");

pub fn class_for(py: Python<'_>, code: ErrorCode) -> Bound<'_, PyType> {
    match code {
        ErrorCode::Malformed => py.get_type::<MalformedError>(),
        ErrorCode::BadSignature => py.get_type::<BadSignatureError>(),
        ErrorCode::BadContentHash => py.get_type::<BadContentHashError>(),
        ErrorCode::PolicyRejected => py.get_type::<PolicyRejectedError>(),
        ErrorCode::UnknownRoom => py.get_type::<UnknownRoomError>(),
        ErrorCode::NotFound => py.get_type::<NotFoundError>(),
        ErrorCode::NotHub => py.get_type::<NotHubError>(),
        ErrorCode::TooLarge => py.get_type::<TooLargeError>(),
        ErrorCode::RateLimited => py.get_type::<RateLimitedError>(),
        ErrorCode::Unauthorized => py.get_type::<UnauthorizedError>(),
        ErrorCode::UnsupportedVersion => py.get_type::<UnsupportedVersionError>(),
        ErrorCode::Internal => py.get_type::<InternalError>(),
    }
}

/// The Python exception for a core error, optionally located in a batch.
pub fn located(py: Python<'_>, e: &CoreError, index: Option<u64>, event_id: Option<&str>) -> PyErr {
    let cls = class_for(py, e.code);
    let err = PyErr::from_type(cls, e.message.clone());
    let value = err.value(py);
    // Setting attributes on a fresh exception instance cannot fail short of memory exhaustion.
    let _ = value.setattr("index", index);
    let _ = value.setattr("event_id", event_id);
    err
}

pub fn to_py(e: CoreError) -> PyErr {
    Python::with_gil(|py| located(py, &e, None, None))
}

/// `?` on core results inside binding code.
pub trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for crate::error::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let base = py.get_type::<MimiError>();
    base.setattr("code", 0)?;
    base.setattr("name", "mimi_error")?;
    base.setattr("http_status", 500)?;
    base.setattr("index", py.None())?;
    base.setattr("event_id", py.None())?;
    m.add("MimiError", base)?;
    for code in ErrorCode::ALL {
        let cls = class_for(py, code);
        cls.setattr("code", code as u16)?;
        cls.setattr("name", code.name())?;
        cls.setattr("http_status", code.http_status())?;
        m.add(cls.name()?, cls)?;
    }
    Ok(())
}

/// `error_from_code(code, message)`: the exception instance for a wire error code.
#[pyfunction]
pub fn error_from_code(py: Python<'_>, code: u16, message: String) -> PyObject {
    let code = ErrorCode::from_u16(code).unwrap_or(ErrorCode::Internal);
    located(py, &CoreError::new(code, message), None, None).into_value(py).into_any()
}
