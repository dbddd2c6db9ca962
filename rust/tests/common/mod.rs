//! What the integration tests share: reading the public vectors from `../shared/vectors`
//! (or `$MIMI_VECTORS_DIR`), never copied into the repository.

use serde_json::Value;
use std::path::PathBuf;

pub fn vectors_dir() -> PathBuf {
    std::env::var_os("MIMI_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"))
}

pub fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}
