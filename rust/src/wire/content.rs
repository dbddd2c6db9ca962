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

/// The registered `m.` event types (PROFILE.md section 5).
pub const REGISTERED_TYPES: [&str; 10] = [
    "m.room.create",
    "m.room.user",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.role",
    "m.room.role_map",
    "m.room.encrypted",
];

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
