//! Batch entry points for Python: the GIL is released while Rust works and rayon spreads the
//! work over all cores (or over a pool of the requested size).

use super::errors::{located, IntoPyResult};
use super::event::{sign_event, PyEvent, PyLimitedEvent};
use super::keys::{PyKeyRing, PySigningKey};
use crate::batch::{check_events as core_check_events, decode_and_prepare, ChainFailure, ChainValidator};
use crate::verify::Prepared;
use crate::wire::room_file::record_size;
use crate::crypto::hash::event_id_from_reference_hash;
use crate::wire::event::Event;
use crate::wire::room_file::RoomFileReader;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use rayon::prelude::*;

fn slices(blobs: &[PyBackedBytes]) -> Vec<&[u8]> {
    blobs.iter().map(|b| &b[..]).collect()
}

#[pyfunction]
fn decode_events(py: Python<'_>, blobs: Vec<PyBackedBytes>) -> PyResult<Vec<PyEvent>> {
    let refs = slices(&blobs);
    let decoded: Vec<crate::error::Result<Event>> = py.allow_threads(|| refs.par_iter().map(|b| Event::decode(b)).collect());
    decoded
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.map(PyEvent::new).map_err(|e| located(py, &e, Some(i as u64), None)))
        .collect()
}

#[pyfunction]
fn compute_event_ids(py: Python<'_>, blobs: Vec<PyBackedBytes>) -> PyResult<Vec<String>> {
    let refs = slices(&blobs);
    let ids: Vec<crate::error::Result<String>> = py.allow_threads(|| {
        refs.par_iter()
            .map(|b| {
                let ev = Event::decode(b)?;
                Ok(event_id_from_reference_hash(&crate::verify::reference_hash(&ev)?))
            })
            .collect()
    });
    ids.into_iter().enumerate().map(|(i, r)| r.map_err(|e| located(py, &e, Some(i as u64), None))).collect()
}

#[pyclass(frozen, get_all, name = "BatchResult", module = "mimi_signaling")]
pub struct PyBatchResult {
    count: usize,
    event_ids: Vec<String>,
    reference_hashes: Py<PyBytes>,
    failures: Vec<(usize, PyObject)>,
}

#[pyfunction]
fn check_events(py: Python<'_>, blobs: Vec<PyBackedBytes>, keyring: PyRef<'_, PyKeyRing>) -> PyResult<PyBatchResult> {
    let refs = slices(&blobs);
    let keys = &keyring.inner;
    let outcomes = py.allow_threads(|| core_check_events(&refs, keys));
    let mut hashes = Vec::with_capacity(outcomes.len() * 32);
    let mut event_ids = Vec::with_capacity(outcomes.len());
    let mut failures = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        match o {
            Ok(p) => {
                hashes.extend_from_slice(&p.reference_hash);
                event_ids.push(p.event_id.clone());
            }
            Err(e) => {
                // An event that decodes still has an ID even when its signatures fail.
                let id = decode_and_prepare(refs[i]).ok();
                hashes.extend_from_slice(&id.as_ref().map(|p| p.reference_hash).unwrap_or([0; 32]));
                let event_id = id.map(|p| p.event_id).unwrap_or_default();
                let located_id = (!event_id.is_empty()).then_some(event_id.as_str());
                failures.push((i, located(py, e, Some(i as u64), located_id).into_value(py).into_any()));
                event_ids.push(event_id);
            }
        }
    }
    Ok(PyBatchResult { count: outcomes.len(), event_ids, reference_hashes: PyBytes::new(py, &hashes).unbind(), failures })
}

/// `check_events` for a caller that goes on with the events (a follower applying
/// deliveries): each event that passes, decoded, with the reference hash and ID the checks
/// computed (so nothing is decoded or hashed twice), `None` for one that fails; and the
/// failures by index, as `check_events` reports them.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn checked_events(
    py: Python<'_>,
    blobs: Vec<PyBackedBytes>,
    keyring: PyRef<'_, PyKeyRing>,
) -> PyResult<(Vec<Option<PyEvent>>, Vec<(usize, PyObject)>)> {
    let refs = slices(&blobs);
    let keys = &keyring.inner;
    let outcomes = py.allow_threads(|| core_check_events(&refs, keys));
    let mut events = Vec::with_capacity(outcomes.len());
    let mut failures = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(p) => events.push(Some(PyEvent::with_id(p.event, p.reference_hash, p.event_id))),
            Err(e) => {
                let event_id = decode_and_prepare(refs[i]).ok().map(|p| p.event_id);
                failures.push((i, located(py, &e, Some(i as u64), event_id.as_deref()).into_value(py).into_any()));
                events.push(None);
            }
        }
    }
    Ok((events, failures))
}

#[pyclass(frozen, get_all, name = "ChainBatch", module = "mimi_signaling")]
pub struct PyChainBatch {
    events: Vec<Py<PyEvent>>,
    error: Option<PyObject>,
}

#[pyclass(name = "ChainValidator", module = "mimi_signaling")]
pub struct PyChainValidator {
    inner: ChainValidator,
    pool: Option<rayon::ThreadPool>,
}

#[pymethods]
impl PyChainValidator {
    #[new]
    #[pyo3(signature = (keyring, threads = None))]
    fn new(keyring: PyRef<'_, PyKeyRing>, threads: Option<usize>) -> PyResult<Self> {
        let pool = match threads {
            None => None,
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n.max(1))
                    .build()
                    .map_err(|e| super::errors::to_py(crate::error::MimiError::new(crate::error::ErrorCode::Internal, e.to_string())))?,
            ),
        };
        Ok(PyChainValidator { inner: ChainValidator::new(keyring.inner.clone()), pool })
    }
    #[getter]
    fn next_index(&self) -> u64 {
        self.inner.next_index
    }
    #[getter]
    fn last_event_id(&self) -> Option<String> {
        self.inner.last_event_id.clone()
    }
    fn validate(&mut self, py: Python<'_>, blobs: Vec<PyBackedBytes>) -> PyResult<PyChainBatch> {
        let refs = slices(&blobs);
        let inner = &mut self.inner;
        let pool = &self.pool;
        let (valid, failure) = py.allow_threads(|| in_pool(pool, || inner.validate(&refs)));
        chain_batch(py, valid, failure)
    }
    /// Read up to ``max_count`` events from ``reader`` and validate them in one call without
    /// the GIL (``mimi verify``'s helper thread): the events never become Python bytes.
    /// Returns ``(batch, bytes_read)``, or None at the end of the file; a read error is raised
    /// with its index, as ``RoomFileReader.read_events`` raises it.
    fn validate_next(
        &mut self,
        py: Python<'_>,
        mut reader: PyRefMut<'_, PyRoomFileReader>,
        max_count: usize,
    ) -> PyResult<Option<(PyChainBatch, u64)>> {
        let file = &mut reader.inner;
        let inner = &mut self.inner;
        let pool = &self.pool;
        let read = py.allow_threads(|| {
            let blobs = file.read_events(max_count)?;
            if blobs.is_empty() {
                return Ok(None);
            }
            let bytes: usize = blobs.iter().map(|b| record_size(b.len())).sum();
            let refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
            Ok(Some((in_pool(pool, || inner.validate(&refs)), bytes as u64)))
        });
        match read {
            Err(e) => Err(located(py, &e, Some(reader.inner.events_read), None)),
            Ok(None) => Ok(None),
            Ok(Some(((valid, failure), bytes))) => Ok(Some((chain_batch(py, valid, failure)?, bytes))),
        }
    }
}

fn in_pool<T: Send>(pool: &Option<rayon::ThreadPool>, work: impl FnOnce() -> T + Send) -> T {
    match pool {
        Some(p) => p.install(work),
        None => work(),
    }
}

/// The valid prefix as Python events (IDs computed once, by the core) and the first failure.
fn chain_batch(py: Python<'_>, valid: Vec<Prepared>, failure: Option<ChainFailure>) -> PyResult<PyChainBatch> {
    let events = valid
        .into_iter()
        .map(|p| Py::new(py, PyEvent::with_id(p.event, p.reference_hash, p.event_id)))
        .collect::<PyResult<Vec<_>>>()?;
    let error = failure.map(|f| located(py, &f.error, Some(f.index), f.event_id.as_deref()).into_value(py).into_any());
    Ok(PyChainBatch { events, error })
}

#[pyfunction]
fn verify_signatures_batch(
    py: Python<'_>,
    messages: Vec<PyBackedBytes>,
    signatures: Vec<PyBackedBytes>,
    public_keys: Vec<PyBackedBytes>,
) -> PyResult<Vec<usize>> {
    let (m, s, k) = (slices(&messages), slices(&signatures), slices(&public_keys));
    py.allow_threads(|| crate::batch::verify_signatures_batch(&m, &s, &k)).py()
}

#[pyclass(name = "RoomFileReader", module = "mimi_signaling")]
pub struct PyRoomFileReader {
    inner: RoomFileReader<std::fs::File>,
}

#[pymethods]
impl PyRoomFileReader {
    #[new]
    fn new(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let file = std::fs::File::open(&path).map_err(|e| {
            super::errors::to_py(crate::error::MimiError::new(crate::error::ErrorCode::NotFound, format!("{}: {e}", path.display())))
        })?;
        let inner = py.allow_threads(|| RoomFileReader::open(file)).py()?;
        Ok(PyRoomFileReader { inner })
    }
    #[getter]
    fn server_keys(&self) -> Vec<super::keys::PyServerKeys> {
        self.inner.server_keys.iter().map(|k| super::keys::PyServerKeys { inner: k.clone() }).collect()
    }
    #[getter]
    fn events_read(&self) -> u64 {
        self.inner.events_read
    }
    fn read_events<'py>(&mut self, py: Python<'py>, max_count: usize) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let inner = &mut self.inner;
        let events = py.allow_threads(|| inner.read_events(max_count)).map_err(|e| {
            let idx = self.inner.events_read;
            located(py, &e, Some(idx), None)
        })?;
        Ok(events.iter().map(|e| PyBytes::new(py, e)).collect())
    }
}

/// Sign events made by ``LimitedEvent.to_unsigned_event`` with the hub key, on all cores.
#[pyfunction]
fn sign_events(py: Python<'_>, events: Vec<PyRef<'_, PyEvent>>, hub_key: PyRef<'_, PySigningKey>) -> PyResult<Vec<PyEvent>> {
    let work: Vec<(Event, [u8; 32])> = events
        .iter()
        .map(|e| Ok((e.inner.clone(), e.reference_hash_array()?)))
        .collect::<PyResult<_>>()?;
    let key = hub_key.inner.clone();
    Ok(py.allow_threads(|| work.into_par_iter().map(|(ev, hash)| sign_event(ev, hash, &key)).collect()))
}

/// The hub's first step for many submits at once: origin signature and exact content hash,
/// batch-verified on all cores. Returns per event None or the error (not raised).
#[pyfunction]
fn verify_limited_events(py: Python<'_>, events: Vec<PyRef<'_, PyLimitedEvent>>, keyring: PyRef<'_, PyKeyRing>) -> Vec<Option<PyObject>> {
    let inner: Vec<&crate::wire::event::LimitedEvent> = events.iter().map(|e| &e.inner).collect();
    let keys = &keyring.inner;
    let errors = py.allow_threads(|| crate::batch::verify_limited_events(&inner, keys));
    errors
        .into_iter()
        .enumerate()
        .map(|(i, e)| e.map(|e| located(py, &e, Some(i as u64), None).into_value(py).into_any()))
        .collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sign_events, m)?)?;
    m.add_function(wrap_pyfunction!(verify_limited_events, m)?)?;
    m.add_class::<PyBatchResult>()?;
    m.add_class::<PyChainBatch>()?;
    m.add_class::<PyChainValidator>()?;
    m.add_class::<PyRoomFileReader>()?;
    m.add_function(wrap_pyfunction!(decode_events, m)?)?;
    m.add_function(wrap_pyfunction!(compute_event_ids, m)?)?;
    m.add_function(wrap_pyfunction!(check_events, m)?)?;
    m.add_function(wrap_pyfunction!(checked_events, m)?)?;
    m.add_function(wrap_pyfunction!(verify_signatures_batch, m)?)?;
    Ok(())
}
