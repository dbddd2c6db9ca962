//! Identifier grammar of PROFILE.md section 3: room IDs, user IDs, server names, event types,
//! role IDs, key IDs and event IDs. Every check returns a `malformed` error that says which
//! rule broke, or `too_large` past the 255-byte limit.

use crate::error::{MimiError, Result};
use std::net::{Ipv4Addr, Ipv6Addr};

pub const MAX_ID_SIZE: usize = 255;
pub const EVENT_ID_LEN: usize = 44;

fn check_len(what: &str, s: &str) -> Result<()> {
    if s.len() > MAX_ID_SIZE {
        return Err(MimiError::too_large(format!("{what} is {} bytes, the limit is {MAX_ID_SIZE}", s.len())));
    }
    if s.is_empty() {
        return Err(MimiError::malformed(format!("{what} is empty")));
    }
    Ok(())
}

/// Validate an RFC 1123 host name, an IPv4 literal or a bracketed IPv6 literal, with an
/// optional `:port` (1-65535).
pub fn validate_server_name(name: &str) -> Result<()> {
    check_len("server name", name)?;
    let (host, port) = if let Some(rest) = name.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(|| MimiError::malformed(format!("server name {name:?}: unclosed IPv6 literal")))?;
        let literal = &rest[..end];
        literal
            .parse::<Ipv6Addr>()
            .map_err(|_| MimiError::malformed(format!("server name {name:?}: bad IPv6 literal")))?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(MimiError::malformed(format!("server name {name:?}: junk after IPv6 literal"))),
        };
        (None, port)
    } else {
        match name.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(name), None),
        }
    };
    if let Some(port) = port {
        let ok = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && matches!(port.parse::<u32>(), Ok(1..=65535));
        if !ok {
            return Err(MimiError::malformed(format!("server name {name:?}: port must be 1-65535")));
        }
    }
    if let Some(host) = host {
        if host.parse::<Ipv4Addr>().is_ok() {
            return Ok(());
        }
        validate_hostname(host).map_err(|why| MimiError::malformed(format!("server name {name:?}: {why}")))?;
    }
    Ok(())
}

fn validate_hostname(host: &str) -> std::result::Result<(), String> {
    if host.is_empty() {
        return Err("empty host".into());
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each host label must be 1-63 characters".into());
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("host labels hold only letters, digits and hyphens".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a host label may not start or end with a hyphen".into());
        }
    }
    Ok(())
}

/// Split `sigil localpart ":" server_name` at the first `:` after the sigil.
fn split_id<'a>(what: &str, id: &'a str, sigil: char) -> Result<(&'a str, &'a str)> {
    check_len(what, id)?;
    let body = id
        .strip_prefix(sigil)
        .ok_or_else(|| MimiError::malformed(format!("{what} {id:?} must start with {sigil:?}")))?;
    let (local, server) = body
        .split_once(':')
        .ok_or_else(|| MimiError::malformed(format!("{what} {id:?} has no \":server_name\"")))?;
    if local.is_empty() {
        return Err(MimiError::malformed(format!("{what} {id:?} has an empty local part")));
    }
    validate_server_name(server).map_err(|e| e.context(what))?;
    Ok((local, server))
}

/// `"!" 1*opaque ":" server_name`; returns (opaque, server_name).
pub fn parse_room_id(id: &str) -> Result<(&str, &str)> {
    let (local, server) = split_id("room ID", id, '!')?;
    if !local.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'~' | b'_')) {
        return Err(MimiError::malformed(format!("room ID {id:?}: the opaque part allows A-Z a-z 0-9 - . ~ _")));
    }
    Ok((local, server))
}

/// `"@" 1*user_id_char ":" server_name` (lower case only); returns (localpart, server_name).
pub fn parse_user_id(id: &str) -> Result<(&str, &str)> {
    let (local, server) = split_id("user ID", id, '@')?;
    let ok = local
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || matches!(b, b'-' | b'.' | b'=' | b'_' | b'/' | b'+'));
    if !ok {
        return Err(MimiError::malformed(format!("user ID {id:?}: the localpart allows a-z 0-9 - . = _ / + (lower case only)")));
    }
    Ok((local, server))
}

/// Event types and policy IDs (PROFILE.md section 3): reverse-domain namespaced,
/// `a-z A-Z 0-9 . _ -`, at least one dot and no empty segment (`a..b`, `.a`, `a.` are refused).
pub fn validate_event_type(t: &str) -> Result<()> {
    check_len("event type", t)?;
    if !t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(MimiError::malformed(format!("event type {t:?}: allowed characters are a-z A-Z 0-9 . _ -")));
    }
    if !t.contains('.') || t.split('.').any(str::is_empty) {
        return Err(MimiError::malformed(format!("event type {t:?} must be namespaced (e.g. org.example.thing)")));
    }
    Ok(())
}

/// Role IDs: 1-255 of `A-Z a-z 0-9 - . ~ _`.
pub fn validate_role_id(r: &str) -> Result<()> {
    check_len("role ID", r)?;
    if !r.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'~' | b'_')) {
        return Err(MimiError::malformed(format!("role ID {r:?}: allowed characters are A-Z a-z 0-9 - . ~ _")));
    }
    Ok(())
}

/// Key IDs: `"ed25519:" 1*64(ALPHA / DIGIT / "_")`.
pub fn validate_key_id(k: &str) -> Result<()> {
    let rest = k
        .strip_prefix("ed25519:")
        .ok_or_else(|| MimiError::malformed(format!("key ID {k:?} must start with \"ed25519:\"")))?;
    if rest.is_empty() || rest.len() > 64 || !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(MimiError::malformed(format!("key ID {k:?}: 1-64 of A-Z a-z 0-9 _ after \"ed25519:\"")));
    }
    Ok(())
}

/// Event IDs: `"$"` + 43 characters of unpadded URL-safe base64 of a 32-byte hash.
pub fn validate_event_id(id: &str) -> Result<()> {
    let ok = id.len() == EVENT_ID_LEN
        && id.starts_with('$')
        && crate::crypto::hash::base64url_decode(&id[1..]).map(|b| b.len() == 32).unwrap_or(false);
    if !ok {
        return Err(MimiError::malformed(format!("event ID {:?} is not \"$\" + 43 base64url characters", truncate(id))));
    }
    Ok(())
}

/// The server name of a user ID or room ID (the part after the first ":").
pub fn server_of(id: &str) -> &str {
    id.split_once(':').map(|(_, s)| s).unwrap_or("")
}

pub(crate) fn truncate(s: &str) -> String {
    if s.len() <= 80 {
        s.to_string()
    } else {
        let mut end = 80;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        for ok in ["hub.test", "a", "a-b.c", "1.2.3.4", "[::1]", "[::1]:8448", "hub.test:443", "x:65535"] {
            validate_server_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "-a.b", "a-.b", "a..b", "a:0", "a:65536", "a:", "[::1", "[zz]", "a_b", "a:1:2", "[::1]x"] {
            assert!(validate_server_name(bad).is_err(), "{bad} accepted");
        }
        let long = format!("{}.test", "a".repeat(64));
        assert!(validate_server_name(&long).is_err());
    }

    #[test]
    fn ids() {
        assert_eq!(parse_room_id("!golden:hub.test").unwrap(), ("golden", "hub.test"));
        assert_eq!(parse_user_id("@ana:hub.test:8448").unwrap(), ("ana", "hub.test:8448"));
        assert!(parse_user_id("@Ana:hub.test").is_err());
        assert!(parse_user_id("@:hub.test").is_err());
        assert!(parse_room_id("golden:hub.test").is_err());
        assert!(parse_room_id("!a b:hub.test").is_err());
        let long = format!("!{}:hub.test", "a".repeat(250));
        assert_eq!(parse_room_id(&long).unwrap_err().code, crate::error::ErrorCode::TooLarge);
    }

    #[test]
    fn types_roles_keys() {
        validate_event_type("m.room.create").unwrap();
        validate_event_type("org.example.thing_x-1").unwrap();
        for bad in ["mroom", "m..x", ".m", "m.", "m room.x", ""] {
            assert!(validate_event_type(bad).is_err(), "{bad}");
        }
        validate_role_id("admin~1.x_y-z").unwrap();
        assert!(validate_role_id("a/b").is_err());
        validate_key_id("ed25519:hubkey").unwrap();
        assert!(validate_key_id("ed25519:").is_err());
        assert!(validate_key_id("rsa:x").is_err());
        assert!(validate_key_id("ed25519:a-b").is_err());
    }
}
