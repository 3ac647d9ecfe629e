//! The cache folder: entries, their atomic completion, per-key locks and
//! the sweep of leftovers from killed processes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};

use super::manifest::Manifest;
use super::CacheError;

/// Name of the completion marker; an entry without it does not exist.
pub const MARKER: &str = "complete.json";
pub const MANIFEST: &str = "manifest.json";

/// Content of the completion marker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryRecord {
    /// Wall-clock seconds the stage took to build the entry.
    pub duration_s: f64,
    /// Unix seconds when the entry was completed.
    pub completed_unix: u64,
}

/// A complete entry found on disk.
#[derive(Debug, Clone)]
pub struct EntryInfo {
    pub stage: String,
    pub key: String,
    pub dir: PathBuf,
    pub record: EntryRecord,
}

/// Whether [`Cache::build`] found the entry or built it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildOutcome {
    Hit,
    Built,
}

/// An open cache. While it is open, the process holds a shared lock on
/// `v1/gc.lock`, so `premem gc` (exclusive) never removes entries in use.
#[derive(Debug)]
pub struct Cache {
    root: PathBuf,
    _gc_lock: File,
}

impl Cache {
    /// Opens (creating) the cache at `dir` and sweeps unfinished entries
    /// that no live process is building. With `exclusive`, waits until no
    /// other process has the cache open (for garbage collection).
    pub fn open(dir: &Path, exclusive: bool) -> Result<Cache, CacheError> {
        let root = dir.join("v1");
        for sub in ["tmp", "locks", "work"] {
            create_dir(&root.join(sub))?;
        }

        let lock_path = root.join("gc.lock");
        let gc_lock = open_lock(&lock_path)?;
        let locked = if exclusive {
            FileExt::lock_exclusive(&gc_lock)
        } else {
            FileExt::lock_shared(&gc_lock)
        };
        locked.map_err(|source| CacheError::Io {
            path: lock_path,
            source,
        })?;

        let cache = Cache {
            root,
            _gc_lock: gc_lock,
        };
        cache.sweep()?;
        Ok(cache)
    }

    /// The `v1` folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn entry_dir(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join(stage).join(key)
    }

    /// Stable folder for work that survives a kill (fine-tuning's resume
    /// state); the sweep leaves it alone and [`Cache::build`] removes it
    /// once the entry is complete.
    pub fn work_dir(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join("work").join(format!("{stage}-{key}"))
    }

    fn temp_dir(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join("tmp").join(format!("{stage}-{key}"))
    }

    fn lock_path(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join("locks").join(format!("{stage}-{key}.lock"))
    }

    /// The entry's record if it is complete.
    pub fn lookup(&self, stage: &str, key: &str) -> Option<EntryRecord> {
        let marker = self.entry_dir(stage, key).join(MARKER);
        let bytes = std::fs::read(marker).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Returns the complete entry of `key`, building it with `build` if it
    /// is missing. `build` writes outputs into the folder it receives; the
    /// manifest is written first and the marker last, then the folder is
    /// renamed into place. A second process asking for the same key waits
    /// on the key's lock and then reuses the entry.
    pub fn build<E: From<CacheError>>(
        &self,
        manifest: &Manifest,
        build: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<BuildOutcome, E> {
        let (stage, key) = (manifest.stage.as_str(), manifest.key());
        if self.lookup(stage, &key).is_some() {
            return Ok(BuildOutcome::Hit);
        }

        let lock_path = self.lock_path(stage, &key);
        let lock = open_lock(&lock_path)?;
        let acquired = FileExt::try_lock_exclusive(&lock).map_err(|source| CacheError::Io {
            path: lock_path.clone(),
            source,
        })?;
        if !acquired {
            tracing::info!(
                stage,
                key = &key[..12],
                "waiting for another process building this entry"
            );
            FileExt::lock_exclusive(&lock).map_err(|source| CacheError::Io {
                path: lock_path.clone(),
                source,
            })?;
        }
        if self.lookup(stage, &key).is_some() {
            return Ok(BuildOutcome::Hit);
        }

        let temp = self.temp_dir(stage, &key);
        remove_dir(&temp)?;
        create_dir(&temp)?;
        write_json(&temp.join(MANIFEST), &manifest.to_json())?;

        let started = Instant::now();
        if let Err(error) = build(&temp) {
            remove_dir(&temp)?;
            return Err(error);
        }

        test_pause_before_commit();
        let record = EntryRecord {
            duration_s: started.elapsed().as_secs_f64(),
            completed_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        let record_json = serde_json::to_value(&record).map_err(|e| CacheError::Io {
            path: temp.join(MARKER),
            source: e.into(),
        })?;
        write_json(&temp.join(MARKER), &record_json)?;

        // NOTE: nothing is fsynced, so an entry survives a killed process
        // (the kernel keeps its pages) but not necessarily a power loss.
        let entry = self.entry_dir(stage, &key);
        create_dir(entry.parent().unwrap_or(&self.root))?;
        remove_dir(&entry)?;
        std::fs::rename(&temp, &entry).map_err(|source| CacheError::Io {
            path: entry.clone(),
            source,
        })?;
        remove_dir(&self.work_dir(stage, &key))?;
        Ok(BuildOutcome::Built)
    }

    /// Every complete entry, by stage then key.
    pub fn entries(&self) -> Result<Vec<EntryInfo>, CacheError> {
        let mut entries = Vec::new();
        for stage_dir in read_dir_sorted(&self.root)? {
            let stage = file_name(&stage_dir);
            if !stage_dir.is_dir() || ["tmp", "locks", "work"].contains(&stage.as_str()) {
                continue;
            }
            for dir in read_dir_sorted(&stage_dir)? {
                let key = file_name(&dir);
                if let Some(record) = self.lookup(&stage, &key) {
                    entries.push(EntryInfo {
                        stage: stage.clone(),
                        key,
                        dir,
                        record,
                    });
                }
            }
        }
        Ok(entries)
    }

    /// Lists the work folders (resume state of unfinished fine-tuning) as
    /// (stage, key, folder).
    pub fn work_dirs(&self) -> Result<Vec<(String, String, PathBuf)>, CacheError> {
        let mut found = Vec::new();
        for dir in read_dir_sorted(&self.root.join("work"))? {
            let name = file_name(&dir);
            // Keys are 64 hex digits, so the stage is what precedes `-KEY`.
            if name.len() > 65 && name.is_char_boundary(name.len() - 65) {
                let (stage, key) = name.split_at(name.len() - 65);
                found.push((stage.to_string(), key[1..].to_string(), dir));
            }
        }
        Ok(found)
    }

    /// The manifest of a complete entry.
    pub fn read_manifest(&self, stage: &str, key: &str) -> Option<Manifest> {
        let bytes = std::fs::read(self.entry_dir(stage, key).join(MANIFEST)).ok()?;
        Manifest::from_json(&serde_json::from_slice(&bytes).ok()?)
    }

    /// Removes an entry (garbage collection); its lock must not be held.
    pub fn remove_entry(&self, stage: &str, key: &str) -> Result<(), CacheError> {
        remove_dir(&self.entry_dir(stage, key))?;
        remove_dir(&self.work_dir(stage, key))?;
        let _ = std::fs::remove_file(self.lock_path(stage, key));
        Ok(())
    }

    /// Removes temporary folders and marker-less entries whose key lock is
    /// free, i.e. whose builder was killed.
    fn sweep(&self) -> Result<(), CacheError> {
        let mut unfinished = Vec::new();
        for temp in read_dir_sorted(&self.root.join("tmp"))? {
            unfinished.push((file_name(&temp), temp));
        }
        for stage_dir in read_dir_sorted(&self.root)? {
            let stage = file_name(&stage_dir);
            if !stage_dir.is_dir() || ["tmp", "locks", "work"].contains(&stage.as_str()) {
                continue;
            }
            for dir in read_dir_sorted(&stage_dir)? {
                if !dir.join(MARKER).is_file() {
                    unfinished.push((format!("{stage}-{}", file_name(&dir)), dir));
                }
            }
        }

        for (lock_name, dir) in unfinished {
            let lock_path = self.root.join("locks").join(format!("{lock_name}.lock"));
            if lock_is_free(&lock_path)? {
                tracing::debug!(path = %dir.display(), "removing an unfinished entry");
                remove_dir(&dir)?;
            }
        }
        Ok(())
    }
}

/// Test hook: `PREMEM_TEST_PAUSE_BEFORE_COMMIT_MS` makes every build pause
/// after its outputs are written and before the marker, so that a test can
/// kill the process at that point.
fn test_pause_before_commit() {
    if let Some(ms) = std::env::var("PREMEM_TEST_PAUSE_BEFORE_COMMIT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

fn lock_is_free(path: &Path) -> Result<bool, CacheError> {
    let file = open_lock(path)?;
    let free = FileExt::try_lock_exclusive(&file).map_err(|source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(free)
}

fn open_lock(path: &Path) -> Result<File, CacheError> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| CacheError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn create_dir(path: &Path) -> Result<(), CacheError> {
    std::fs::create_dir_all(path).map_err(|source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn remove_dir(path: &Path) -> Result<(), CacheError> {
    match std::fs::remove_dir_all(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(CacheError::Io {
            path: path.to_path_buf(),
            source: error,
        }),
        _ => Ok(()),
    }
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), CacheError> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    std::fs::write(path, text).map_err(|source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, CacheError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CacheError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    Ok(paths)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Total size in bytes of the files under `path`.
pub fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                dir_size(&path)
            } else {
                entry.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}
