//! Full-parameter fine-tuning with the loss on target tokens only.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use super::{LoadedModel, ModelError};

/// One training pair.
#[derive(Debug, Clone)]
pub struct TrainExample {
    pub prompt: String,
    pub target: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    pub learning_rate: f64,
    pub epochs: usize,
    /// Examples per optimizer step (before accumulation).
    pub batch_size: usize,
    pub grad_accum: usize,
    /// Fraction of all steps spent in linear warmup.
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Global gradient norm clip; 0 disables clipping.
    pub max_grad_norm: f64,
    /// Fixes the example order of every epoch.
    pub seed: u64,
    /// Also save every N optimizer steps.
    pub save_every_steps: Option<usize>,
}

/// Progress of a running fine-tune.
#[derive(Debug, Clone, Copy)]
pub struct TrainProgress {
    pub step: u64,
    pub total_steps: u64,
    pub epoch: usize,
    pub loss: f64,
}

/// A checkpoint saved at an epoch end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointInfo {
    pub epoch: usize,
    pub step: u64,
    /// Folder loadable by [`LoadedModel::load`].
    pub dir: PathBuf,
    /// Mean training loss over the epoch.
    pub mean_loss: f64,
}

/// Fine-tunes `model` in place and saves `out_dir/epoch-{E}/` at every epoch
/// end. If `out_dir` holds resume state from an interrupted run, training
/// continues from it. Returns when done, or with `ModelError::Interrupted`
/// at the next step boundary after `stop` becomes true.
pub fn finetune(
    model: &mut LoadedModel,
    examples: &[TrainExample],
    options: &TrainOptions,
    out_dir: &Path,
    progress: &mut dyn FnMut(TrainProgress),
    stop: &AtomicBool,
) -> Result<Vec<CheckpointInfo>, ModelError> {
    let _ = (model, examples, options, out_dir, progress, stop);
    todo!("fine-tuning")
}
