//! Published verify keys by server name, and the `Signatures` set rule of PROFILE.md section 2:
//! a set verifies when at least one entry carries a key ID the signing server publishes and
//! verifies, and no entry with a published key ID fails. Entries under unknown key IDs are
//! ignored. Expired keys still verify old events (events carry no timestamp to compare).

use super::sign::{parse_public_key, sign_content, verify, PublicKey};
use crate::error::{MimiError, Result};
use crate::wire::event::Signature;
use crate::wire::keys::{ServerKeys, VerifyKey};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct PublishedKey {
    pub key_id: String,
    pub key: PublicKey,
    pub expired_ts: u64,
}

#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    servers: HashMap<String, Vec<PublishedKey>>,
}

/// One signature check to run: which key, over which SignContent bytes.
pub struct SignatureTask<'a> {
    pub key: &'a PublicKey,
    pub signature: &'a [u8],
}

impl KeyRing {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add or replace (by key ID) one key of a server.
    pub fn add(&mut self, server_name: &str, key: &VerifyKey) -> Result<()> {
        key.validate()?;
        let published = PublishedKey {
            key_id: key.key_id_str().to_string(),
            key: parse_public_key(key.public_key.as_slice())?,
            expired_ts: key.expired_ts,
        };
        let list = self.servers.entry(server_name.to_string()).or_default();
        list.retain(|k| k.key_id != published.key_id);
        list.push(published);
        Ok(())
    }

    pub fn add_server_keys(&mut self, keys: &ServerKeys) -> Result<()> {
        keys.validate()?;
        for k in keys.keys.iter() {
            self.add(keys.server_name_str(), k)?;
        }
        Ok(())
    }

    pub fn has_server(&self, server: &str) -> bool {
        self.servers.contains_key(server)
    }

    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.servers.keys().map(String::as_str)
    }

    pub fn keys_of(&self, server: &str) -> &[PublishedKey] {
        self.servers.get(server).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn lookup(&self, server: &str, key_id: &str) -> Option<&PublicKey> {
        self.keys_of(server).iter().find(|k| k.key_id == key_id).map(|k| &k.key)
    }

    /// The checks a `Signatures` set needs: one per entry whose key ID `server` publishes.
    /// No such entry at all is already a failure.
    pub fn tasks<'a>(&'a self, what: &str, server: &str, sigs: &'a [Signature]) -> Result<Vec<SignatureTask<'a>>> {
        let tasks: Vec<_> = sigs
            .iter()
            .filter_map(|s| {
                self.lookup(server, s.key_id_str()).map(|key| SignatureTask { key, signature: s.signature.as_slice() })
            })
            .collect();
        if tasks.is_empty() {
            return Err(MimiError::bad_signature(format!("{what}: no entry under a key that {server} publishes")));
        }
        Ok(tasks)
    }

    /// Check a whole `Signatures` set over `message` signed with `label`.
    pub fn verify_set(&self, what: &str, server: &str, sigs: &[Signature], label: &[u8], message: &[u8]) -> Result<()> {
        let tasks = self.tasks(what, server, sigs)?;
        let content = sign_content(label, message);
        for t in tasks {
            verify(t.key, &content, t.signature).map_err(|e| e.context(what))?;
        }
        Ok(())
    }
}
