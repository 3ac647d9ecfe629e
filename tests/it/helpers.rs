//! Shared test helpers.

use std::path::PathBuf;

/// Root of this repository.
#[allow(dead_code)]
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared folder beside the checkout (data and reference dynamics), if present.
#[allow(dead_code)]
pub fn shared_dir() -> Option<PathBuf> {
    let dir = repo_root().join("..").join("shared");
    dir.is_dir().then_some(dir)
}
