//! `VerifyKey` and `ServerKeys` (PROFILE.md section 8).

use super::vector::{Opaque, VarVec};
use super::{decode_exact, text_ref};
use crate::crypto::sign::parse_public_key;
use crate::error::{MimiError, Result};
use crate::ids;
use tls_codec::{TlsDeserializeBytes, TlsSerialize, TlsSize};

/// Bound on a `ServerKeys` record: plenty for a long key history, small enough to read eagerly.
pub const MAX_SERVER_KEYS_SIZE: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct VerifyKey {
    pub key_id: Opaque,
    pub public_key: Opaque,
    /// 0 = current; otherwise when the key stopped being used (ms since the epoch).
    pub expired_ts: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserializeBytes, TlsSize)]
pub struct ServerKeys {
    pub server_name: Opaque,
    pub keys: VarVec<VerifyKey>,
}

impl VerifyKey {
    pub fn decode(data: &[u8]) -> Result<Self> {
        let k: Self = decode_exact(data)?;
        k.validate()?;
        Ok(k)
    }
    pub fn key_id_str(&self) -> &str {
        std::str::from_utf8(self.key_id.as_slice()).unwrap_or("")
    }
    pub fn validate(&self) -> Result<()> {
        ids::validate_key_id(text_ref("key_id", &self.key_id)?)?;
        parse_public_key(self.public_key.as_slice())?;
        Ok(())
    }
}

impl ServerKeys {
    pub fn decode(data: &[u8]) -> Result<Self> {
        if data.len() > MAX_SERVER_KEYS_SIZE {
            return Err(MimiError::too_large(format!("ServerKeys is {} bytes, the limit is {MAX_SERVER_KEYS_SIZE}", data.len())));
        }
        let k: Self = decode_exact(data)?;
        k.validate()?;
        Ok(k)
    }
    pub fn server_name_str(&self) -> &str {
        std::str::from_utf8(self.server_name.as_slice()).unwrap_or("")
    }
    pub fn validate(&self) -> Result<()> {
        ids::validate_server_name(text_ref("server_name", &self.server_name)?)?;
        let mut seen = std::collections::HashSet::new();
        for k in self.keys.iter() {
            k.validate()?;
            if !seen.insert(k.key_id.as_slice()) {
                return Err(MimiError::malformed(format!("ServerKeys lists key {} twice", k.key_id_str())));
            }
        }
        Ok(())
    }
}
