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
use pyo3::sync::GILOnceCell;
use pyo3::ffi;
use pyo3::types::{PyBytes, PyList, PyString, PyType};
use rayon::prelude::*;
use std::ffi::{c_int, CStr};
use std::sync::{Mutex, OnceLock, TryLockError};

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

    fn header_of<'py>(&self, py: Python<'py>, cls: &Bound<'py, PyType>, cache: &mut StringCache) -> PyResult<Bound<'py, PyAny>> {
        let ev = &self.inner;
        let event_id = self.ids()?.1.as_str();
        // The event read before this one is its prev in a run of a chain.
        let prev_event = cache.string(py, Field::LastEventId, s(&ev.prev_event));
        let auth_events = PyList::new(py, ev.auth_events.iter().map(|id| cache.id(py, s(id))))?;
        let items = vec![
            cache.string(py, Field::LastEventId, event_id),
            cache.string(py, Field::RoomId, s(&ev.room_id)),
            cache.string(py, Field::Type, s(&ev.event_type)),
            opt_str(py, ev.state_key.as_ref()),
            cache.string(py, Field::Sender, s(&ev.sender)),
            prev_event,
            auth_events.into_any(),
            PyBytes::new(py, ev.content.as_slice()).into_any(),
        ];
        struct_sequence(py, cls, items)
    }

    /// Compute and keep the event ID if it is not known yet (no GIL needed; a failure is left
    /// for `ids` to report).
    fn fill_id(&self) {
        if self.id.get().is_none() {
            if let Ok(h) = crate::verify::reference_hash(&self.inner) {
                let _ = self.id.set((h, event_id_from_reference_hash(&h)));
            }
        }
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

// --- headers: what the Python room code reads of an event, in one crossing -------------------
//
// Each getter is a call into the core that makes a new Python object, and the room code reads
// the same few fields several times per event (shape check, policy, state, fan-out). A header
// is a named tuple made once per event: reading its fields afterwards is plain Python.

const EVENT_HEADER_FIELDS: [&CStr; 8] =
    [c"event_id", c"room_id", c"type", c"state_key", c"sender", c"prev_event", c"auth_events", c"content"];
const LIMITED_EVENT_HEADER_FIELDS: [&CStr; 6] = [c"room_id", c"type", c"state_key", c"sender", c"origin_server", c"content"];

static EVENT_HEADER: GILOnceCell<Py<PyType>> = GILOnceCell::new();
static LIMITED_EVENT_HEADER: GILOnceCell<Py<PyType>> = GILOnceCell::new();

/// A struct sequence type (the C form of a named tuple, like `os.stat_result`): a tuple whose
/// fields are also attributes, read by CPython without a call into the core, and made from C
/// without a Python `__new__` (half a header's cost with `collections.namedtuple`).
fn header_type<'py>(
    py: Python<'py>,
    cell: &'static GILOnceCell<Py<PyType>>,
    name: &'static CStr,
    doc: &'static CStr,
    fields: &[&'static CStr],
) -> PyResult<&'py Bound<'py, PyType>> {
    let cls = cell.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let mut members: Vec<ffi::PyStructSequence_Field> = fields
            .iter()
            .map(|f| ffi::PyStructSequence_Field { name: f.as_ptr(), doc: std::ptr::null() })
            .chain(std::iter::once(ffi::PyStructSequence_Field { name: std::ptr::null(), doc: std::ptr::null() }))
            .collect();
        let mut desc = ffi::PyStructSequence_Desc {
            name: name.as_ptr(),
            doc: doc.as_ptr(),
            fields: members.as_mut_ptr(),
            n_in_sequence: fields.len() as c_int,
        };
        // SAFETY: the description is read during the call (the field array is copied into the
        // type); the names and doc it points to are 'static, as the type keeps pointers to them.
        let cls = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyStructSequence_NewType(&mut desc).cast())? };
        Ok(cls.downcast_into::<PyType>()?.unbind())
    })?;
    Ok(cls.bind(py))
}

fn event_header_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    header_type(
        py,
        &EVENT_HEADER,
        c"mimi_signaling.EventHeader",
        c"What the room code reads of an Event, made in one call (Event.header(), event_headers): \
event_id, room_id, type, state_key (None for a non-state event), sender, prev_event, \
auth_events (a new list), content.",
        &EVENT_HEADER_FIELDS,
    )
}

fn limited_event_header_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    header_type(
        py,
        &LIMITED_EVENT_HEADER,
        c"mimi_signaling.LimitedEventHeader",
        c"What the hub reads of a LimitedEvent, made in one call (LimitedEvent.header(), \
limited_event_headers): room_id, type, state_key (None for a non-state event), sender, \
origin_server, content.",
        &LIMITED_EVENT_HEADER_FIELDS,
    )
}

fn struct_sequence<'py>(py: Python<'py>, cls: &Bound<'py, PyType>, items: Vec<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `cls` is one of the struct sequence types above and `items` has exactly its
    // number of fields; each item's reference is handed to the new object (SetItem steals it).
    unsafe {
        let obj = Bound::from_owned_ptr_or_err(py, ffi::PyStructSequence_New(cls.as_type_ptr()))?;
        for (i, item) in items.into_iter().enumerate() {
            ffi::PyStructSequence_SetItem(obj.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr());
        }
        Ok(obj)
    }
}

/// The header fields whose last value `StringCache` keeps.
#[derive(Clone, Copy)]
enum Field {
    RoomId,
    Type,
    Sender,
    Server,
    LastEventId,
}

/// Recent auth event IDs kept: an event's auth events are a few current state events (the
/// create event, the sender's membership, the role map, its roles), the same for every event
/// of one sender.
const RECENT_IDS: usize = 16;

/// Python strings of recent header fields, reused when a later header has the same value:
/// one room's events repeat its room ID, types, senders and auth event IDs, and each event's
/// prev is the ID of the one read before it in a chain. A header then makes only its own
/// event ID, content and auth list, and equal fields are one object (dictionary lookups
/// match them by identity).
struct StringCache {
    fields: [Option<(Box<str>, Py<PyString>)>; 5],
    ids: [Option<(Box<str>, Py<PyString>)>; RECENT_IDS],
    next_id: usize,
}

static STRINGS: Mutex<StringCache> = Mutex::new(StringCache::new());

/// Run `f` with the shared cache, or with an empty one when the shared one is in use: never
/// wait for it. Python code can run while a header is made (a finalizer started by an
/// allocation) and make a header itself on this thread, or give up the GIL to a thread that
/// does; waiting there would deadlock.
fn with_strings<R>(f: impl FnOnce(&mut StringCache) -> R) -> R {
    match STRINGS.try_lock() {
        Ok(mut cache) => f(&mut cache),
        Err(TryLockError::Poisoned(poisoned)) => f(&mut poisoned.into_inner()), // a cache breaks no invariant
        Err(TryLockError::WouldBlock) => f(&mut StringCache::new()),
    }
}

impl StringCache {
    const fn new() -> Self {
        StringCache { fields: [const { None }; 5], ids: [const { None }; RECENT_IDS], next_id: 0 }
    }

    fn string<'py>(&mut self, py: Python<'py>, field: Field, value: &str) -> Bound<'py, PyAny> {
        let slot = &mut self.fields[field as usize];
        if let Some((known, string)) = slot {
            if **known == *value {
                return string.bind(py).clone().into_any();
            }
        }
        let string = PyString::new(py, value);
        *slot = Some((value.into(), string.clone().unbind()));
        string.into_any()
    }

    /// An auth event ID: one of the recent ones, else made and remembered in place of the
    /// oldest.
    fn id<'py>(&mut self, py: Python<'py>, value: &str) -> Bound<'py, PyString> {
        for (known, string) in self.ids.iter().flatten() {
            if **known == *value {
                return string.bind(py).clone();
            }
        }
        let string = PyString::new(py, value);
        self.ids[self.next_id] = Some((value.into(), string.clone().unbind()));
        self.next_id = (self.next_id + 1) % RECENT_IDS;
        string
    }
}

fn opt_str<'py>(py: Python<'py>, value: Option<&Opaque>) -> Bound<'py, PyAny> {
    match value {
        Some(v) => PyString::new(py, s(v)).into_any(),
        None => py.None().into_bound(py),
    }
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
    /// The fields the room code reads, in one call (`EventHeader`); computes the event ID if
    /// it is not known yet.
    fn header<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let cls = event_header_type(py)?;
        with_strings(|cache| self.header_of(py, cls, cache))
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

impl PyLimitedEvent {
    fn header_of<'py>(&self, py: Python<'py>, cls: &Bound<'py, PyType>, cache: &mut StringCache) -> PyResult<Bound<'py, PyAny>> {
        let ev = &self.inner;
        let items = vec![
            cache.string(py, Field::RoomId, s(&ev.room_id)),
            cache.string(py, Field::Type, s(&ev.event_type)),
            opt_str(py, ev.state_key.as_ref()),
            cache.string(py, Field::Sender, s(&ev.sender)),
            cache.string(py, Field::Server, ids::server_of(s(&ev.sender))),
            PyBytes::new(py, ev.content.as_slice()).into_any(),
        ];
        struct_sequence(py, cls, items)
    }
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
    /// The fields the hub reads, in one call (`LimitedEventHeader`).
    fn header<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let cls = limited_event_header_type(py)?;
        with_strings(|cache| self.header_of(py, cls, cache))
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

/// `Event.header()` of many events in one call; the event IDs not known yet are computed on
/// all cores first.
#[pyfunction]
fn event_headers<'py>(py: Python<'py>, events: Vec<PyRef<'py, PyEvent>>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let refs: Vec<&PyEvent> = events.iter().map(|e| &**e).collect();
    // The IDs not known yet (events from `decode_events`), on all cores; the events of a
    // `ChainValidator` or the hub's own have theirs, and then no thread is woken.
    let missing: Vec<&PyEvent> = refs.iter().copied().filter(|e| e.id.get().is_none()).collect();
    if !missing.is_empty() {
        py.allow_threads(|| missing.par_iter().for_each(|e| e.fill_id()));
    }
    let cls = event_header_type(py)?;
    with_strings(|cache| {
        refs.iter()
            .enumerate()
            .map(|(i, e)| {
                // Only an event whose ID cannot be computed fails (fill_id left it unset).
                e.header_of(py, cls, cache).inspect_err(|err| {
                    let _ = err.value(py).setattr("index", i);
                })
            })
            .collect()
    })
}

/// `LimitedEvent.header()` of many limited events in one call.
#[pyfunction]
fn limited_event_headers<'py>(py: Python<'py>, events: Vec<PyRef<'py, PyLimitedEvent>>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let cls = limited_event_header_type(py)?;
    with_strings(|cache| events.iter().map(|e| e.header_of(py, cls, cache)).collect())
}

/// `Event.encode()` of many events in one call (the inverse of `decode_events`).
#[pyfunction]
fn encode_events<'py>(py: Python<'py>, events: Vec<PyRef<'py, PyEvent>>) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    events.iter().map(|e| Ok(PyBytes::new(py, &encode(&e.inner).py()?))).collect()
}

/// SHA-256 of each encoded limited event, on all cores: the hub's key for recognising a
/// byte-identical resubmit.
#[pyfunction]
fn limited_event_digests<'py>(py: Python<'py>, events: Vec<PyRef<'py, PyLimitedEvent>>) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let inner: Vec<&LimitedEvent> = events.iter().map(|e| &e.inner).collect();
    let digests: Vec<crate::error::Result<[u8; 32]>> =
        py.allow_threads(|| inner.par_iter().map(|e| encode(*e).map(|bytes| sha256(&bytes))).collect());
    digests.into_iter().map(|d| Ok(PyBytes::new(py, &d.py()?))).collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("EventHeader", event_header_type(py)?)?;
    m.add("LimitedEventHeader", limited_event_header_type(py)?)?;
    m.add_function(wrap_pyfunction!(event_headers, m)?)?;
    m.add_function(wrap_pyfunction!(limited_event_headers, m)?)?;
    m.add_function(wrap_pyfunction!(encode_events, m)?)?;
    m.add_function(wrap_pyfunction!(limited_event_digests, m)?)?;
    Ok(())
}
