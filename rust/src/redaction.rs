//! Redaction per the registry table (PROFILE.md section 5): which part of `content` survives.

use crate::error::Result;
use crate::wire::content::UserContent;
use crate::wire::vector::Opaque;
use crate::wire::{decode_exact, encode};
use std::borrow::Cow;

/// What redaction keeps of a type's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Everything,
    /// `m.room.user`: the participation, with the reason emptied.
    Participation,
    Nothing,
}

pub fn kept(event_type: &str) -> Kept {
    match event_type {
        "m.room.create" | "m.room.join_rules" | "m.room.history_visibility" | "m.room.role" | "m.room.role_map" => {
            Kept::Everything
        }
        "m.room.user" => Kept::Participation,
        // name, avatar, topic, encrypted, and every other type: nothing.
        _ => Kept::Nothing,
    }
}

/// The redacted content. Borrowed when redaction keeps everything.
pub fn redact_content<'a>(event_type: &str, content: &'a [u8]) -> Result<Cow<'a, [u8]>> {
    match kept(event_type) {
        Kept::Everything => Ok(Cow::Borrowed(content)),
        Kept::Nothing => Ok(Cow::Borrowed(&[])),
        Kept::Participation => {
            let user: UserContent = decode_exact(content).map_err(|e| e.context("m.room.user content"))?;
            if user.reason.is_empty() {
                return Ok(Cow::Borrowed(content));
            }
            Ok(Cow::Owned(encode(&UserContent { participation: user.participation, reason: Opaque::default() })?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(&*redact_content("m.room.user", &[0x00, 0x02, b'h', b'i']).unwrap(), &[0x00, 0x00]);
        assert_eq!(&*redact_content("m.room.name", &[0x02, b'h', b'i']).unwrap(), &[] as &[u8]);
        assert_eq!(&*redact_content("m.room.join_rules", &[0x01]).unwrap(), &[0x01]);
        assert_eq!(&*redact_content("org.example.x", &[9, 9]).unwrap(), &[] as &[u8]);
        assert!(redact_content("m.room.user", &[0x09, 0x00]).is_err());
        // idempotent
        let once = redact_content("m.room.user", &[0x01, 0x01, b'x']).unwrap().into_owned();
        assert_eq!(&*redact_content("m.room.user", &once).unwrap(), &once[..]);
    }
}
