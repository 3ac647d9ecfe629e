//! Files a fine-tune leaves in its output folder: checkpoints at epoch ends
//! and the resume state that lets an interrupted run continue exactly.
//!
//! Every folder is written under a temporary name beside its final place and
//! renamed into place, so a crash never leaves a half-written folder under
//! the final name. `out_dir/resume/` contains `model.safetensors` (parameters),
//! `optimizer.safetensors` (AdamW moments) and `state.json` ([`TrainState`]).
//! The example order of an epoch is a pure function of (seed, epoch), so the
//! step count stands in for the random-number state.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::optim::AdamW;
use super::train::{CheckpointInfo, TrainOptions};
use super::{LoadedModel, ModelError};

/// Version of the resume-state layout, bumped when the layout changes.
const STATE_VERSION: u32 = 1;

/// Progress of a fine-tune, as saved in `resume/state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    pub version: u32,
    /// Options of the run, which a resumed run must repeat.
    pub options: TrainOptions,
    /// SHA-256 of the training pairs, so a resume with other data fails.
    pub examples_sha256: String,
    /// Optimizer steps done.
    pub step: u64,
    /// Epochs finished and checkpointed.
    pub epochs_done: usize,
    /// Mean target-token loss of every step so far, in nats.
    pub losses: Vec<f64>,
    pub checkpoints: Vec<CheckpointInfo>,
}

impl TrainState {
    pub fn new(options: &TrainOptions, examples_sha256: String) -> Self {
        TrainState {
            version: STATE_VERSION,
            options: options.clone(),
            examples_sha256,
            step: 0,
            epochs_done: 0,
            losses: Vec::new(),
            checkpoints: Vec::new(),
        }
    }
}

pub fn resume_dir(out_dir: &Path) -> PathBuf {
    out_dir.join("resume")
}

pub fn checkpoint_dir(out_dir: &Path, epoch: usize) -> PathBuf {
    out_dir.join(format!("epoch-{epoch}"))
}

/// Writes the resume state of `model` and `optimizer` at `state`.
pub fn save_resume(
    out_dir: &Path,
    model: &LoadedModel,
    optimizer: &AdamW,
    state: &TrainState,
) -> Result<(), ModelError> {
    write_dir_atomically(&resume_dir(out_dir), |dir| {
        model.vs.save(dir.join("model.safetensors"))?;
        let moments = optimizer.moments();
        Tensor::write_safetensors(&moments, dir.join("optimizer.safetensors"))?;
        let json = serde_json::to_string_pretty(state).expect("TrainState serializes");
        let path = dir.join("state.json");
        fs::write(&path, json).map_err(|source| ModelError::Io { path, source })
    })
}

/// Loads resume state into `model` and `optimizer` when `out_dir` has one.
/// Fails when it was written with other options or other examples, because
/// continuing it would mix two runs.
pub fn load_resume(
    out_dir: &Path,
    model: &mut LoadedModel,
    optimizer: &mut AdamW,
    expected: &TrainState,
) -> Result<Option<TrainState>, ModelError> {
    let dir = resume_dir(out_dir);
    let old = sibling(&dir, "old");
    let dir = if dir.is_dir() {
        dir
    } else if old.is_dir() {
        // A crash between the two renames of a save left only the old copy.
        old
    } else {
        return Ok(None);
    };

    let state_path = dir.join("state.json");
    let text = fs::read_to_string(&state_path).map_err(|source| ModelError::Io {
        path: state_path.clone(),
        source,
    })?;
    let state: TrainState = serde_json::from_str(&text).map_err(|e| ModelError::Format {
        path: state_path.clone(),
        message: format!("invalid resume state ({e}); delete {} to start over", dir.display()),
    })?;

    let mismatch = |what: &str| ModelError::Format {
        path: state_path.clone(),
        message: format!(
            "the resume state was written with other {what}; rerun with the same {what} or delete {} to start over",
            dir.display()
        ),
    };
    if state.version != STATE_VERSION {
        return Err(mismatch("premem version"));
    }
    if !same_run_options(&state.options, &expected.options) {
        return Err(mismatch("training options"));
    }
    if state.examples_sha256 != expected.examples_sha256 {
        return Err(mismatch("training examples"));
    }

    model.vs.load(dir.join("model.safetensors"))?;
    let moments_path = dir.join("optimizer.safetensors");
    let moments = Tensor::read_safetensors(&moments_path)?;
    optimizer
        .restore(moments, state.step)
        .map_err(|message| ModelError::Format {
            path: moments_path,
            message,
        })?;
    Ok(Some(state))
}

/// Compares the options that change the computation. `save_every_steps`
/// only changes how often state is written, so it may differ.
fn same_run_options(saved: &TrainOptions, current: &TrainOptions) -> bool {
    let mut saved = saved.clone();
    saved.save_every_steps = current.save_every_steps;
    serde_json::to_value(&saved).ok() == serde_json::to_value(current).ok()
}

/// Writes a checkpoint folder for `epoch` and returns its path.
pub fn save_checkpoint(out_dir: &Path, model: &LoadedModel, epoch: usize) -> Result<PathBuf, ModelError> {
    let dir = checkpoint_dir(out_dir, epoch);
    write_dir_atomically(&dir, |tmp| model.save_checkpoint(tmp))?;
    Ok(dir)
}

/// Runs `write` on a fresh temporary folder beside `dir`, then renames it to
/// `dir`, replacing any previous folder there.
fn write_dir_atomically(dir: &Path, write: impl FnOnce(&Path) -> Result<(), ModelError>) -> Result<(), ModelError> {
    let tmp = sibling(dir, "tmp");
    let old = sibling(dir, "old");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };

    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    write(&tmp)?;

    if dir.exists() {
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        fs::rename(dir, &old).map_err(io(dir))?;
    }
    fs::rename(&tmp, dir).map_err(io(&tmp))?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

/// `parent/.NAME.SUFFIX`, on the same filesystem as `dir` so renames are atomic.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!(".{name}.{suffix}"))
}
