//! SHA-256 content digests of input files and folders, with a memo so that
//! the 94 MB GGUF is not rehashed on every run.
//!
//! The memo maps (canonical path, size, modification time) to a digest. It
//! is only a speed-up: a change of size or modification time rehashes, and
//! the digest, never the path or time, goes into cache keys.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MemoEntry {
    size: u64,
    modified_ns: u128,
    sha256: String,
}

/// The digest memo, stored as JSON at `path`.
#[derive(Debug)]
pub struct DigestMemo {
    path: Option<PathBuf>,
    entries: BTreeMap<String, MemoEntry>,
    changed: bool,
}

impl DigestMemo {
    /// Loads the memo at `path`; a missing or unreadable memo starts empty.
    pub fn load(path: &Path) -> DigestMemo {
        let entries = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        DigestMemo {
            path: Some(path.to_path_buf()),
            entries,
            changed: false,
        }
    }

    /// A memo that is never saved.
    pub fn in_memory() -> DigestMemo {
        DigestMemo {
            path: None,
            entries: BTreeMap::new(),
            changed: false,
        }
    }

    /// Writes the memo if it changed (atomically, by rename).
    pub fn save(&mut self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !self.changed {
            return Ok(());
        }
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&temporary, serde_json::to_vec_pretty(&self.entries)?)?;
        std::fs::rename(&temporary, path)?;
        self.changed = false;
        Ok(())
    }

    /// SHA-256 (hex) of a file's content, or of a folder: the digest of its
    /// sorted (relative path, file digest) pairs.
    pub fn digest(&mut self, path: &Path) -> std::io::Result<String> {
        if path.is_dir() {
            return self.folder_digest(path);
        }

        let canonical = std::fs::canonicalize(path)?;
        let metadata = std::fs::metadata(&canonical)?;
        let modified_ns = metadata
            .modified()?
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let memo_key = canonical.to_string_lossy().into_owned();
        if let Some(entry) = self.entries.get(&memo_key) {
            if entry.size == metadata.len() && entry.modified_ns == modified_ns {
                return Ok(entry.sha256.clone());
            }
        }

        let sha256 = file_sha256(&canonical)?;
        self.entries.insert(
            memo_key,
            MemoEntry {
                size: metadata.len(),
                modified_ns,
                sha256: sha256.clone(),
            },
        );
        self.changed = true;
        Ok(sha256)
    }

    fn folder_digest(&mut self, dir: &Path) -> std::io::Result<String> {
        let mut files = Vec::new();
        collect_files(dir, dir, &mut files)?;
        files.sort();

        let mut hasher = Sha256::new();
        for relative in files {
            let digest = self.digest(&dir.join(&relative))?;
            let name = relative.to_string_lossy().replace('\\', "/");
            hasher.update((name.len() as u64).to_be_bytes());
            hasher.update(name.as_bytes());
            hasher.update(digest.as_bytes());
        }
        Ok(hex::encode(hasher.finalize()))
    }
}

fn collect_files(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(root, &path, files)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            files.push(relative.to_path_buf());
        }
    }
    Ok(())
}

/// SHA-256 (hex) of a file's bytes, read in 1 MiB blocks.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}
