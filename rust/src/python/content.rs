//! Content classes of the registered event types for Python. Encoding runs the same
//! validating decoder on the result, so Python cannot build content the core would refuse.

use super::errors::IntoPyResult;
use crate::error::MimiError;
use crate::wire::content::{
    event_type_rule, CreateContent, EVENT_TYPES, EventTypePermission, EventTypePermissionRecord, HistoryVisibilityContent, JoinRule, JoinRulesContent,
    Participation, PermissionValue, RoleConfig, RoleContent, RoleMapContent, RolePermission, TextContent, UserContent,
    Visibility,
};
use crate::wire::flag::Flag;
use crate::wire::vector::{Opaque, VarVec};
use crate::wire::{decode_exact, encode, text, vl};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

fn bytes<'py>(py: Python<'py>, b: &[u8]) -> Py<PyBytes> {
    PyBytes::new(py, b).unbind()
}

fn enum_value<T>(what: &str, v: u8, decode: impl Fn(&[u8]) -> crate::error::Result<T>) -> PyResult<T> {
    decode(&[v]).map_err(|_| MimiError::malformed(format!("{what} {v} is not a known value"))).py()
}

#[pyclass(frozen, get_all, name = "CreateContent", module = "mimi_signaling")]
pub struct PyCreateContent {
    policy_id: String,
    encryption_algorithm: String,
}

#[pymethods]
impl PyCreateContent {
    #[new]
    fn new(policy_id: String, encryption_algorithm: String) -> Self {
        PyCreateContent { policy_id, encryption_algorithm }
    }
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let c = CreateContent { policy_id: vl(&self.policy_id), encryption_algorithm: vl(&self.encryption_algorithm) };
        let out = encode(&c).py()?;
        CreateContent::decode(&out).py()?;
        Ok(PyBytes::new(py, &out))
    }
    #[staticmethod]
    fn decode(data: &[u8]) -> PyResult<Self> {
        let c = CreateContent::decode(data).py()?;
        Ok(PyCreateContent { policy_id: text("policy_id", &c.policy_id).py()?, encryption_algorithm: text("encryption_algorithm", &c.encryption_algorithm).py()? })
    }
    fn __repr__(&self) -> String {
        format!("CreateContent(policy_id={:?}, encryption_algorithm={:?})", self.policy_id, self.encryption_algorithm)
    }
}

#[pyclass(frozen, get_all, name = "UserContent", module = "mimi_signaling")]
pub struct PyUserContent {
    participation: u8,
    reason: Py<PyBytes>,
}

#[pymethods]
impl PyUserContent {
    #[new]
    #[pyo3(signature = (participation, reason = None))]
    fn new(py: Python<'_>, participation: u8, reason: Option<Vec<u8>>) -> PyResult<Self> {
        enum_value("participation", participation, decode_exact::<Participation>)?;
        Ok(PyUserContent { participation, reason: bytes(py, &reason.unwrap_or_default()) })
    }
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let participation = enum_value("participation", self.participation, decode_exact::<Participation>)?;
        let c = UserContent { participation, reason: Opaque::new(self.reason.as_bytes(py).to_vec()) };
        Ok(PyBytes::new(py, &encode(&c).py()?))
    }
    #[staticmethod]
    fn decode(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let c: UserContent = decode_exact(data).py()?;
        Ok(PyUserContent { participation: c.participation as u8, reason: bytes(py, c.reason.as_slice()) })
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!("UserContent(participation={}, reason={:?})", self.participation, String::from_utf8_lossy(self.reason.as_bytes(py)))
    }
}

#[pyclass(frozen, get_all, name = "TextContent", module = "mimi_signaling")]
pub struct PyTextContent {
    value: Option<Py<PyBytes>>,
}

#[pymethods]
impl PyTextContent {
    #[new]
    #[pyo3(signature = (value = None))]
    fn new(py: Python<'_>, value: Option<Vec<u8>>) -> Self {
        PyTextContent { value: value.map(|v| bytes(py, &v)) }
    }
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        match &self.value {
            None => Ok(PyBytes::new(py, b"")),
            Some(v) => Ok(PyBytes::new(py, &encode(&TextContent { value: Opaque::new(v.as_bytes(py).to_vec()) }).py()?)),
        }
    }
    #[staticmethod]
    fn decode(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        if data.is_empty() {
            return Ok(PyTextContent { value: None });
        }
        let c: TextContent = decode_exact(data).py()?;
        Ok(PyTextContent { value: Some(bytes(py, c.value.as_slice())) })
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        match &self.value {
            None => "TextContent(None)".into(),
            Some(v) => format!("TextContent({:?})", String::from_utf8_lossy(v.as_bytes(py))),
        }
    }
}

#[pyclass(frozen, get_all, name = "JoinRulesContent", module = "mimi_signaling")]
pub struct PyJoinRulesContent {
    rule: u8,
}

#[pymethods]
impl PyJoinRulesContent {
    #[new]
    fn new(rule: u8) -> PyResult<Self> {
        enum_value("join rule", rule, decode_exact::<JoinRule>)?;
        Ok(PyJoinRulesContent { rule })
    }
    fn encode<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &[self.rule])
    }
    #[staticmethod]
    fn decode(data: &[u8]) -> PyResult<Self> {
        let c: JoinRulesContent = decode_exact(data).py()?;
        Ok(PyJoinRulesContent { rule: c.rule as u8 })
    }
    fn __repr__(&self) -> String {
        format!("JoinRulesContent(rule={})", self.rule)
    }
}

#[pyclass(frozen, get_all, name = "HistoryVisibilityContent", module = "mimi_signaling")]
pub struct PyHistoryVisibilityContent {
    visibility: u8,
}

#[pymethods]
impl PyHistoryVisibilityContent {
    #[new]
    fn new(visibility: u8) -> PyResult<Self> {
        enum_value("visibility", visibility, decode_exact::<Visibility>)?;
        Ok(PyHistoryVisibilityContent { visibility })
    }
    fn encode<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &[self.visibility])
    }
    #[staticmethod]
    fn decode(data: &[u8]) -> PyResult<Self> {
        let c: HistoryVisibilityContent = decode_exact(data).py()?;
        Ok(PyHistoryVisibilityContent { visibility: c.visibility as u8 })
    }
    fn __repr__(&self) -> String {
        format!("HistoryVisibilityContent(visibility={})", self.visibility)
    }
}

#[pyclass(frozen, get_all, name = "Permission", module = "mimi_signaling")]
#[derive(Clone)]
pub struct PyPermission {
    kind: u8,
    granted: Option<bool>,
    event_types: Option<Vec<(String, bool)>>,
    role_ids: Option<Vec<String>>,
}

impl PyPermission {
    fn to_wire(&self) -> PyResult<PermissionValue> {
        let flag = || Flag(self.granted.unwrap_or(false));
        Ok(match self.kind {
            1 => PermissionValue::Invite(flag()),
            2 => PermissionValue::Kick(flag()),
            3 => PermissionValue::Ban(flag()),
            4 => PermissionValue::Redact(flag()),
            5 => PermissionValue::Events(EventTypePermission {
                event_types: VarVec(
                    self.event_types
                        .iter()
                        .flatten()
                        .map(|(t, g)| EventTypePermissionRecord { event_type: vl(t), granted: Flag(*g) })
                        .collect(),
                ),
            }),
            6 => PermissionValue::Roles(RolePermission { affect_role_ids: VarVec(self.role_ids.iter().flatten().map(vl).collect()) }),
            k => return Err(super::errors::to_py(MimiError::malformed(format!("permission kind {k} is not 1-6")))),
        })
    }

    fn from_wire(p: &PermissionValue) -> PyResult<Self> {
        let boolean = |kind: u8, f: &Flag| PyPermission { kind, granted: Some(f.0), event_types: None, role_ids: None };
        Ok(match p {
            PermissionValue::Invite(f) => boolean(1, f),
            PermissionValue::Kick(f) => boolean(2, f),
            PermissionValue::Ban(f) => boolean(3, f),
            PermissionValue::Redact(f) => boolean(4, f),
            PermissionValue::Events(e) => PyPermission {
                kind: 5,
                granted: None,
                event_types: Some(
                    e.event_types.iter().map(|r| Ok((text("event type", &r.event_type).py()?, r.granted.0))).collect::<PyResult<_>>()?,
                ),
                role_ids: None,
            },
            PermissionValue::Roles(r) => PyPermission {
                kind: 6,
                granted: None,
                event_types: None,
                role_ids: Some(r.affect_role_ids.iter().map(|o| text("role ID", o).py()).collect::<PyResult<_>>()?),
            },
        })
    }
}

#[pymethods]
impl PyPermission {
    #[staticmethod]
    fn boolean(kind: u8, granted: bool) -> PyResult<Self> {
        if !(1..=4).contains(&kind) {
            return Err(super::errors::to_py(MimiError::malformed(format!("permission kind {kind} is not a boolean permission (1-4)"))));
        }
        Ok(PyPermission { kind, granted: Some(granted), event_types: None, role_ids: None })
    }
    #[staticmethod]
    fn events(event_types: Vec<(String, bool)>) -> Self {
        PyPermission { kind: 5, granted: None, event_types: Some(event_types), role_ids: None }
    }
    #[staticmethod]
    fn roles(role_ids: Vec<String>) -> Self {
        PyPermission { kind: 6, granted: None, event_types: None, role_ids: Some(role_ids) }
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.kind == other.kind && self.granted == other.granted && self.event_types == other.event_types && self.role_ids == other.role_ids
    }
    fn __repr__(&self) -> String {
        match self.kind {
            5 => format!("Permission.events({:?})", self.event_types.clone().unwrap_or_default()),
            6 => format!("Permission.roles({:?})", self.role_ids.clone().unwrap_or_default()),
            k => format!("Permission.boolean({k}, {})", self.granted.unwrap_or(false)),
        }
    }
}

#[pyclass(frozen, get_all, name = "RoleContent", module = "mimi_signaling")]
pub struct PyRoleContent {
    permissions: Vec<PyPermission>,
}

#[pymethods]
impl PyRoleContent {
    #[new]
    fn new(permissions: Vec<PyPermission>) -> Self {
        PyRoleContent { permissions }
    }
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let c = RoleContent { permissions: VarVec(self.permissions.iter().map(PyPermission::to_wire).collect::<PyResult<_>>()?) };
        let out = encode(&c).py()?;
        RoleContent::decode(&out).py()?;
        Ok(PyBytes::new(py, &out))
    }
    #[staticmethod]
    fn decode(data: &[u8]) -> PyResult<Self> {
        let c = RoleContent::decode(data).py()?;
        Ok(PyRoleContent { permissions: c.permissions.iter().map(PyPermission::from_wire).collect::<PyResult<_>>()? })
    }
    fn __repr__(&self) -> String {
        format!("RoleContent({:?})", self.permissions.iter().map(|p| p.__repr__()).collect::<Vec<_>>())
    }
}

#[pyclass(frozen, get_all, name = "RoleConfig", module = "mimi_signaling")]
#[derive(Clone)]
pub struct PyRoleConfig {
    role_id: String,
    user_ids: Vec<String>,
    order: u32,
}

#[pymethods]
impl PyRoleConfig {
    #[new]
    fn new(role_id: String, user_ids: Vec<String>, order: u32) -> Self {
        PyRoleConfig { role_id, user_ids, order }
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.role_id == other.role_id && self.user_ids == other.user_ids && self.order == other.order
    }
    fn __repr__(&self) -> String {
        format!("RoleConfig({:?}, {:?}, order={})", self.role_id, self.user_ids, self.order)
    }
}

#[pyclass(frozen, get_all, name = "RoleMapContent", module = "mimi_signaling")]
pub struct PyRoleMapContent {
    roles: Vec<PyRoleConfig>,
}

#[pymethods]
impl PyRoleMapContent {
    #[new]
    fn new(roles: Vec<PyRoleConfig>) -> Self {
        PyRoleMapContent { roles }
    }
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let c = RoleMapContent {
            roles: VarVec(
                self.roles
                    .iter()
                    .map(|r| RoleConfig { role_id: vl(&r.role_id), user_ids: VarVec(r.user_ids.iter().map(vl).collect()), order: r.order })
                    .collect(),
            ),
        };
        let out = encode(&c).py()?;
        RoleMapContent::decode(&out).py()?;
        Ok(PyBytes::new(py, &out))
    }
    #[staticmethod]
    fn decode(data: &[u8]) -> PyResult<Self> {
        let c = RoleMapContent::decode(data).py()?;
        let roles = c
            .roles
            .iter()
            .map(|r| {
                Ok(PyRoleConfig {
                    role_id: text("role ID", &r.role_id).py()?,
                    user_ids: r.user_ids.iter().map(|u| text("user ID", u).py()).collect::<PyResult<_>>()?,
                    order: r.order,
                })
            })
            .collect::<PyResult<_>>()?;
        Ok(PyRoleMapContent { roles })
    }
    fn __repr__(&self) -> String {
        format!("RoleMapContent({:?})", self.roles.iter().map(|r| r.__repr__()).collect::<Vec<_>>())
    }
}

#[pyfunction]
pub fn redact_content<'py>(py: Python<'py>, event_type: &str, content: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &crate::redaction::redact_content(event_type, content).py()?))
}

#[pyfunction]
pub fn validate_content(event_type: &str, content: &[u8]) -> PyResult<()> {
    crate::wire::content::validate_content(event_type, content).py()
}

/// Section 4 rule 4 for an `m.` type in one call: registered (else `MalformedError`), the
/// state key following the type's rule, the content decoded as its struct (the content class;
/// `bytes` for opaque content). The Python registry's shape check calls this once per event.
#[pyfunction]
#[pyo3(signature = (event_type, state_key, content))]
pub fn decode_registered_content(py: Python<'_>, event_type: &str, state_key: Option<&str>, content: &[u8]) -> PyResult<PyObject> {
    let rule = event_type_rule(event_type)
        .ok_or_else(|| MimiError::malformed(format!("unknown event type {event_type:?} in the reserved m. namespace")))
        .py()?;
    rule.state_key.check(event_type, state_key).py()?;
    decode_as(py, rule.codec, content).map_err(|err| {
        if err.is_instance_of::<super::errors::MalformedError>(py) {
            let message = err.value(py).to_string();
            super::errors::located(py, &MimiError::malformed(format!("{event_type}: content does not decode: {message}")), None, None)
        } else {
            err
        }
    })
}

fn decode_as(py: Python<'_>, codec: Option<&str>, content: &[u8]) -> PyResult<PyObject> {
    match codec {
        None => Ok(PyBytes::new(py, content).into_any().unbind()),
        Some("CreateContent") => Ok(Py::new(py, PyCreateContent::decode(content)?)?.into_any()),
        Some("UserContent") => Ok(Py::new(py, PyUserContent::decode(py, content)?)?.into_any()),
        Some("TextContent") => Ok(Py::new(py, PyTextContent::decode(py, content)?)?.into_any()),
        Some("JoinRulesContent") => Ok(Py::new(py, PyJoinRulesContent::decode(content)?)?.into_any()),
        Some("HistoryVisibilityContent") => Ok(Py::new(py, PyHistoryVisibilityContent::decode(content)?)?.into_any()),
        Some("RoleContent") => Ok(Py::new(py, PyRoleContent::decode(content)?)?.into_any()),
        Some("RoleMapContent") => Ok(Py::new(py, PyRoleMapContent::decode(content)?)?.into_any()),
        Some(other) => Err(MimiError::new(crate::error::ErrorCode::Internal, format!("no content class {other}"))).py(),
    }
}

/// `EVENT_TYPE_TABLE`: `(type, state-key rule, content class name or None)` per registered type.
pub fn event_type_table() -> Vec<(&'static str, &'static str, Option<&'static str>)> {
    EVENT_TYPES.iter().map(|r| (r.event_type, r.state_key.name(), r.codec)).collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("EVENT_TYPE_TABLE", event_type_table())?;
    m.add_function(wrap_pyfunction!(decode_registered_content, m)?)?;
    m.add_class::<PyCreateContent>()?;
    m.add_class::<PyUserContent>()?;
    m.add_class::<PyTextContent>()?;
    m.add_class::<PyJoinRulesContent>()?;
    m.add_class::<PyHistoryVisibilityContent>()?;
    m.add_class::<PyPermission>()?;
    m.add_class::<PyRoleContent>()?;
    m.add_class::<PyRoleConfig>()?;
    m.add_class::<PyRoleMapContent>()?;
    m.add_function(wrap_pyfunction!(redact_content, m)?)?;
    m.add_function(wrap_pyfunction!(validate_content, m)?)?;
    Ok(())
}
