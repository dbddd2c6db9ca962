//! Content structs of the registered event types (PROFILE.md section 5 and the policy draft).

use super::flag::Flag;
use super::vector::{Opaque, VarVec};
use super::{decode_exact, text_ref};
use crate::error::{MimiError, Result};
use crate::ids;
use std::collections::HashSet;
use tls_codec::{TlsDeserializeBytes, TlsSerialize, TlsSize};

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct CreateContent {
    pub policy_id: Opaque,
    pub encryption_algorithm: Opaque,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, TlsSerialize, TlsDeserializeBytes, TlsSize)]
#[repr(u8)]
pub enum Participation {
    Invite = 0,
    Join = 1,
    Leave = 2,
    Ban = 3,
    Knock = 4,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct UserContent {
    pub participation: Participation,
    pub reason: Opaque,
}

/// `m.room.name`, `m.room.avatar`, `m.room.topic`: one opaque field.
#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct TextContent {
    pub value: Opaque,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, TlsSerialize, TlsDeserializeBytes, TlsSize)]
#[repr(u8)]
pub enum JoinRule {
    Invite = 0,
    Knock = 1,
    Public = 2,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct JoinRulesContent {
    pub rule: JoinRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, TlsSerialize, TlsDeserializeBytes, TlsSize)]
#[repr(u8)]
pub enum Visibility {
    Invited = 0,
    Joined = 1,
    Shared = 2,
    World = 3,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct HistoryVisibilityContent {
    pub visibility: Visibility,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct EventTypePermissionRecord {
    pub event_type: Opaque,
    pub granted: Flag,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct EventTypePermission {
    pub event_types: VarVec<EventTypePermissionRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct RolePermission {
    pub affect_role_ids: VarVec<Opaque>,
}

/// `PermissionValue`: the `uint8` tag of `Permission` then its case struct.
#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
#[repr(u8)]
pub enum PermissionValue {
    #[tls_codec(discriminant = 1)]
    Invite(Flag),
    #[tls_codec(discriminant = 2)]
    Kick(Flag),
    #[tls_codec(discriminant = 3)]
    Ban(Flag),
    #[tls_codec(discriminant = 4)]
    Redact(Flag),
    #[tls_codec(discriminant = 5)]
    Events(EventTypePermission),
    #[tls_codec(discriminant = 6)]
    Roles(RolePermission),
}

impl PermissionValue {
    pub fn tag(&self) -> u8 {
        match self {
            PermissionValue::Invite(_) => 1,
            PermissionValue::Kick(_) => 2,
            PermissionValue::Ban(_) => 3,
            PermissionValue::Redact(_) => 4,
            PermissionValue::Events(_) => 5,
            PermissionValue::Roles(_) => 6,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct RoleContent {
    pub permissions: VarVec<PermissionValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct RoleConfig {
    pub role_id: Opaque,
    pub user_ids: VarVec<Opaque>,
    pub order: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct RoleMapContent {
    pub roles: VarVec<RoleConfig>,
}

impl CreateContent {
    pub fn decode(data: &[u8]) -> Result<Self> {
        let c: Self = decode_exact(data)?;
        ids::validate_event_type(text_ref("policy_id", &c.policy_id)?).map_err(|e| e.context("policy_id"))?;
        ids::validate_event_type(text_ref("encryption_algorithm", &c.encryption_algorithm)?)
            .map_err(|e| e.context("encryption_algorithm"))?;
        Ok(c)
    }
}

impl RoleContent {
    /// Decode and check: a permission tag at most once; event types and role IDs well formed.
    pub fn decode(data: &[u8]) -> Result<Self> {
        let c: Self = decode_exact(data)?;
        let mut seen = HashSet::new();
        for p in c.permissions.iter() {
            if !seen.insert(p.tag()) {
                return Err(MimiError::malformed(format!("m.room.role lists permission {} twice", p.tag())));
            }
            match p {
                PermissionValue::Events(ev) => {
                    for r in ev.event_types.iter() {
                        ids::validate_event_type(text_ref("event type", &r.event_type)?)
                            .map_err(|e| e.context("m.room.role events permission"))?;
                    }
                }
                PermissionValue::Roles(rp) => {
                    for r in rp.affect_role_ids.iter() {
                        ids::validate_role_id(text_ref("role ID", r)?).map_err(|e| e.context("m.room.role roles permission"))?;
                    }
                }
                _ => {}
            }
        }
        Ok(c)
    }
}

impl RoleMapContent {
    /// Decode and check: role IDs unique and orders distinct (policy draft), the IDs well
    /// formed and no user listed twice in one role (PROFILE.md section 6: "a role map that
    /// lists one user twice in one role is malformed").
    pub fn decode(data: &[u8]) -> Result<Self> {
        let c: Self = decode_exact(data)?;
        let mut role_ids = HashSet::new();
        let mut orders = HashSet::new();
        for r in c.roles.iter() {
            let role_id = text_ref("role ID", &r.role_id)?;
            ids::validate_role_id(role_id).map_err(|e| e.context("m.room.role_map"))?;
            if !role_ids.insert(role_id) {
                return Err(MimiError::malformed(format!("m.room.role_map lists role {role_id:?} twice")));
            }
            if !orders.insert(r.order) {
                return Err(MimiError::malformed(format!("m.room.role_map uses order {} twice", r.order)));
            }
            let mut users = HashSet::new();
            for u in r.user_ids.iter() {
                let user_id = text_ref("user ID", u)?;
                ids::parse_user_id(user_id).map_err(|e| e.context(&format!("m.room.role_map role {role_id:?}")))?;
                if !users.insert(user_id) {
                    return Err(MimiError::malformed(format!("m.room.role_map role {role_id:?} lists {user_id} twice")));
                }
            }
        }
        Ok(c)
    }
}

/// The state-key column of PROFILE.md section 5: how a registered type's state key is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKeyRule {
    /// Not a state event: no state key.
    NotState,
    /// State, with the state key `""`.
    Empty,
    /// State, keyed by the target's user ID (section 3).
    UserId,
    /// State, keyed by a role ID (1-255 of `A-Z a-z 0-9 - . ~ _`).
    RoleId,
}

impl StateKeyRule {
    /// The name the Python registry sees (`EVENT_TYPE_TABLE`).
    pub const fn name(self) -> &'static str {
        match self {
            StateKeyRule::NotState => "not_state",
            StateKeyRule::Empty => "empty",
            StateKeyRule::UserId => "user_id",
            StateKeyRule::RoleId => "role_id",
        }
    }

    /// "A type is either always state or never state" and "the state key MUST follow the
    /// type's rule" (sections 3 and 4 rule 4).
    pub fn check(self, event_type: &str, state_key: Option<&str>) -> Result<()> {
        match (self, state_key) {
            (StateKeyRule::NotState, None) => Ok(()),
            (StateKeyRule::NotState, Some(_)) => {
                Err(MimiError::malformed(format!("{event_type} is not a state event type: it takes no state key")))
            }
            (_, None) => {
                Err(MimiError::malformed(format!("{event_type} is a state event type: a state key is required")))
            }
            (StateKeyRule::Empty, Some("")) => Ok(()),
            (StateKeyRule::Empty, Some(key)) => {
                Err(MimiError::malformed(format!("{event_type}: the state key must be empty, got {key:?}")))
            }
            (StateKeyRule::UserId, Some(key)) => ids::parse_user_id(key)
                .map(drop)
                .map_err(|e| e.context(&format!("{event_type}: the state key is not a valid user ID"))),
            (StateKeyRule::RoleId, Some(key)) => ids::validate_role_id(key)
                .map_err(|e| e.context(&format!("{event_type}: the state key is not a valid role ID"))),
        }
    }
}

/// One row of the registry of PROFILE.md section 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTypeRule {
    pub event_type: &'static str,
    pub state_key: StateKeyRule,
    /// The content struct's name (the Python content class), or None for opaque content.
    pub codec: Option<&'static str>,
}

const fn rule(event_type: &'static str, state_key: StateKeyRule, codec: Option<&'static str>) -> EventTypeRule {
    EventTypeRule { event_type, state_key, codec }
}

/// The registered `m.` event types (PROFILE.md section 5), in the table's order: the one
/// registry every layer uses (the Python registry is built from it).
pub const EVENT_TYPES: [EventTypeRule; 10] = [
    rule("m.room.create", StateKeyRule::Empty, Some("CreateContent")),
    rule("m.room.user", StateKeyRule::UserId, Some("UserContent")),
    rule("m.room.name", StateKeyRule::Empty, Some("TextContent")),
    rule("m.room.avatar", StateKeyRule::Empty, Some("TextContent")),
    rule("m.room.topic", StateKeyRule::Empty, Some("TextContent")),
    rule("m.room.join_rules", StateKeyRule::Empty, Some("JoinRulesContent")),
    rule("m.room.history_visibility", StateKeyRule::Empty, Some("HistoryVisibilityContent")),
    rule("m.room.role", StateKeyRule::RoleId, Some("RoleContent")),
    rule("m.room.role_map", StateKeyRule::Empty, Some("RoleMapContent")),
    rule("m.room.encrypted", StateKeyRule::NotState, None),
];

/// The names of `EVENT_TYPES`, in the same order.
pub const REGISTERED_TYPES: [&str; EVENT_TYPES.len()] = {
    let mut out = [""; EVENT_TYPES.len()];
    let mut i = 0;
    while i < EVENT_TYPES.len() {
        out[i] = EVENT_TYPES[i].event_type;
        i += 1;
    }
    out
};

/// The registry row of a registered type.
pub fn event_type_rule(event_type: &str) -> Option<&'static EventTypeRule> {
    EVENT_TYPES.iter().find(|r| r.event_type == event_type)
}

/// Section 4 rule 4 for an `m.` type: registered (else malformed), the state key following
/// the type's rule, the content decoding as the type's struct.
pub fn check_registered_shape(event_type: &str, state_key: Option<&str>, content: &[u8]) -> Result<()> {
    let rule = event_type_rule(event_type)
        .ok_or_else(|| MimiError::malformed(format!("unknown event type {event_type:?} in the reserved m. namespace")))?;
    rule.state_key.check(event_type, state_key)?;
    validate_content(event_type, content)
}

pub fn is_text_type(t: &str) -> bool {
    matches!(t, "m.room.name" | "m.room.avatar" | "m.room.topic")
}

/// Content must decode as its registered type. Name/avatar/topic may be empty (redacted);
/// `m.room.encrypted` and non-`m.` types are opaque; an unknown `m.` type is refused.
pub fn validate_content(event_type: &str, content: &[u8]) -> Result<()> {
    let r = match event_type {
        "m.room.create" => CreateContent::decode(content).map(drop),
        "m.room.user" => decode_exact::<UserContent>(content).map(drop),
        t if is_text_type(t) => {
            if content.is_empty() {
                Ok(())
            } else {
                decode_exact::<TextContent>(content).map(drop)
            }
        }
        "m.room.join_rules" => decode_exact::<JoinRulesContent>(content).map(drop),
        "m.room.history_visibility" => decode_exact::<HistoryVisibilityContent>(content).map(drop),
        "m.room.role" => RoleContent::decode(content).map(drop),
        "m.room.role_map" => RoleMapContent::decode(content).map(drop),
        "m.room.encrypted" => Ok(()),
        t if t.starts_with("m.") => Err(MimiError::malformed(format!("{t:?} is not a registered m. event type"))),
        _ => Ok(()),
    };
    r.map_err(|e| e.context(&format!("{event_type} content")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tls_codec::Serialize as _;

    #[test]
    fn registered_types_are_the_tables_names_in_order() {
        let names: Vec<&str> = EVENT_TYPES.iter().map(|r| r.event_type).collect();
        assert_eq!(names, REGISTERED_TYPES.to_vec());
        assert!(EVENT_TYPES.iter().all(|r| r.event_type.starts_with("m.room.")));
        // only m.room.encrypted is opaque and not state (section 5)
        let opaque: Vec<&str> = EVENT_TYPES.iter().filter(|r| r.codec.is_none()).map(|r| r.event_type).collect();
        assert_eq!(opaque, ["m.room.encrypted"]);
        assert_eq!(event_type_rule("m.room.encrypted").unwrap().state_key, StateKeyRule::NotState);
    }

    #[test]
    fn state_key_rules_of_section_5() {
        use StateKeyRule::*;
        assert!(Empty.check("m.room.name", Some("")).is_ok());
        assert!(Empty.check("m.room.name", Some("x")).unwrap_err().to_string().contains("must be empty"));
        assert!(Empty.check("m.room.name", None).unwrap_err().to_string().contains("a state key is required"));
        assert!(UserId.check("m.room.user", Some("@ana:hub.example")).is_ok());
        assert!(UserId.check("m.room.user", Some("ana")).is_err());
        assert!(RoleId.check("m.room.role", Some("mod")).is_ok());
        assert!(RoleId.check("m.room.role", Some("a b")).is_err());
        assert!(NotState.check("m.room.encrypted", None).is_ok());
        assert!(NotState.check("m.room.encrypted", Some("")).unwrap_err().to_string().contains("takes no state key"));
    }

    #[test]
    fn registered_shape_refuses_unknown_m_types_and_bad_content() {
        assert!(check_registered_shape("m.room.encrypted", None, b"anything").is_ok());
        assert_eq!(check_registered_shape("m.room.unknown", None, b"").unwrap_err().code, crate::error::ErrorCode::Malformed);
        assert!(check_registered_shape("m.room.join_rules", Some(""), &[9]).is_err());
        assert!(check_registered_shape("m.room.join_rules", Some(""), &[2]).is_ok());
    }

    #[test]
    fn permission_round_trip_and_strictness() {
        let role = RoleContent {
            permissions: VarVec(vec![
                PermissionValue::Invite(Flag(true)),
                PermissionValue::Events(EventTypePermission {
                    event_types: VarVec(vec![EventTypePermissionRecord { event_type: "m.room.name".into(), granted: Flag(false) }]),
                }),
                PermissionValue::Roles(RolePermission { affect_role_ids: VarVec(vec!["admin".into()]) }),
            ]),
        };
        let bytes = role.tls_serialize_detached().unwrap();
        assert_eq!(RoleContent::decode(&bytes).unwrap(), role);
        // tag 7 is unknown
        assert!(RoleContent::decode(&[0x02, 0x07, 0x01]).is_err());
        // granted byte 2
        assert!(RoleContent::decode(&[0x02, 0x01, 0x02]).is_err());
        // the same tag twice
        assert!(RoleContent::decode(&[0x04, 0x01, 0x01, 0x01, 0x00]).is_err());
    }

    #[test]
    fn role_map_uniqueness() {
        let rc = |id: &str, order| RoleConfig { role_id: id.into(), user_ids: VarVec(vec![]), order };
        let dup_id = RoleMapContent { roles: VarVec(vec![rc("a", 1), rc("a", 2)]) }.tls_serialize_detached().unwrap();
        assert!(RoleMapContent::decode(&dup_id).is_err());
        let dup_order = RoleMapContent { roles: VarVec(vec![rc("a", 1), rc("b", 1)]) }.tls_serialize_detached().unwrap();
        assert!(RoleMapContent::decode(&dup_order).is_err());
        let ok = RoleMapContent { roles: VarVec(vec![rc("a", 1), rc("b", 2)]) }.tls_serialize_detached().unwrap();
        assert!(RoleMapContent::decode(&ok).is_ok());
        let with_users = |users: &[&str]| {
            let config = RoleConfig { role_id: "a".into(), user_ids: VarVec(users.iter().map(|&u| u.into()).collect()), order: 1 };
            RoleMapContent { roles: VarVec(vec![config]) }.tls_serialize_detached().unwrap()
        };
        let err = RoleMapContent::decode(&with_users(&["@ana:hub.test", "@bo:hub.test", "@ana:hub.test"])).unwrap_err();
        assert!(err.to_string().contains("lists @ana:hub.test twice"), "{err}");
        // one user once per role is fine, in two roles too
        assert!(RoleMapContent::decode(&with_users(&["@ana:hub.test", "@bo:hub.test"])).is_ok());
        let two_roles = RoleMapContent {
            roles: VarVec(vec![
                RoleConfig { role_id: "a".into(), user_ids: VarVec(vec!["@ana:hub.test".into()]), order: 1 },
                RoleConfig { role_id: "b".into(), user_ids: VarVec(vec!["@ana:hub.test".into()]), order: 2 },
            ]),
        };
        assert!(RoleMapContent::decode(&two_roles.tls_serialize_detached().unwrap()).is_ok());
        assert!(RoleMapContent::decode(&with_users(&["@Ana:hub.test"])).is_err());
    }

    #[test]
    fn content_rules() {
        assert!(validate_content("m.room.user", &[0x05, 0x00]).is_err()); // participation 5
        assert!(validate_content("m.room.user", &[]).is_err()); // auth type with empty content
        assert!(validate_content("m.room.name", &[]).is_ok()); // redacted name
        assert!(validate_content("m.room.unknown", &[]).is_err());
        assert!(validate_content("org.example.x", &[1, 2, 3]).is_ok());
        assert!(validate_content("m.room.join_rules", &[0x03]).is_err());
    }
}
