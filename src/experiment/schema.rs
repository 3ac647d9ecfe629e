//! The typed, resolved content of an experiment file.
//!
//! Every key, its type, default and meaning is listed in
//! `experiments/README.md`; the doc comments below repeat the contract that
//! code relies on. All values here are already validated: reading a file
//! rejects out-of-range values, so stages may assume them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::data::{Format, Templates};
use crate::model::Precision;

use super::error::Location;

/// One experiment: data, model, the sweep of fine-tuning runs and the
/// settings of every later stage.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// Report folder name under `reports/`; defaults to the file stem.
    pub name: String,
    pub title: String,
    /// The experiment file as given on the command line.
    pub path: PathBuf,
    pub data: DataConfig,
    pub templates: Templates,
    /// Source of the learning dynamics.
    pub source: Source,
    pub scoring: ScoringConfig,
    pub analysis: AnalysisConfig,
    pub report: ReportConfig,
    /// The robustness check (`[robustness]`); only for training experiments.
    pub robustness: Option<RobustnessConfig>,
    /// Position of every key that was set, by dotted key path, so that
    /// checks against the data can point at the key.
    pub locations: BTreeMap<String, Location>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DataConfig {
    pub format: Format,
    /// Relative to the data root, or absolute.
    pub train: PathBuf,
    pub test: PathBuf,
    /// Size of the seeded train subset; `None` keeps every example.
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    /// Seeds the shuffle that orders the prepared examples.
    pub subset_seed: u64,
}

/// Fine-tuning runs of premem itself, or dynamics recorded by another tool.
#[derive(Debug, Clone)]
pub enum Source {
    Training(TrainingConfig),
    Import(ImportConfig),
}

#[derive(Debug, Clone)]
pub struct TrainingConfig {
    pub model: ModelConfig,
    pub optimizer: OptimizerConfig,
    /// The sweep expanded into runs: grid runs first (in the order of the
    /// cartesian product), then explicit runs, duplicates removed.
    pub runs: Vec<RunConfig>,
    pub sampling: SamplingConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Relative to the model root, or absolute: a `.gguf` file or a
    /// Hugging Face checkpoint folder.
    pub path: PathBuf,
    pub precision: Precision,
}

/// Fixed optimizer settings of every run (`[train]`).
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerConfig {
    pub batch_size: usize,
    pub grad_accum: usize,
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub max_grad_norm: f64,
}

/// One point of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    pub learning_rate: f64,
    pub epochs: usize,
    /// Fraction of the prepared train set the run trains on: its first
    /// `ceil(fraction * n)` examples.
    pub data_fraction: f64,
    /// Seeds the example order of fine-tuning.
    pub seed: u64,
}

impl RunConfig {
    /// Unique, readable run name, e.g. `lr1e-5_ep3_frac0.5_seed0`.
    pub fn name(&self) -> String {
        format!(
            "lr{:e}_ep{}_frac{}_seed{}",
            self.learning_rate, self.epochs, self.data_fraction, self.seed
        )
    }

    /// Number of training examples the run uses out of `prepared`.
    pub fn train_count(&self, prepared: usize) -> usize {
        ((self.data_fraction * prepared as f64).ceil() as usize).clamp(1, prepared.max(1))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingConfig {
    pub k_train: usize,
    pub k_test: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: usize,
    pub stop: Vec<String>,
    pub seed: u64,
    pub batch_size: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImportConfig {
    /// Folder of recorded dynamics, relative to the data root or absolute.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoringConfig {
    /// Memorization threshold on target perplexity.
    pub threshold: f64,
    /// Maximum padded tokens in one forward batch.
    pub token_budget: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisConfig {
    pub threshold_grid: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReportConfig {
    /// Rows of the "memorized, not learned" example table.
    pub examples: usize,
}

/// Robustness check of one checkpoint (`[robustness]`): k samples per
/// training query under each perturbation of the prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct RobustnessConfig {
    /// Index into `TrainingConfig::runs` of the run whose checkpoint is
    /// checked.
    pub run: usize,
    /// Epoch of the checked checkpoint, from 1.
    pub epoch: usize,
    /// Samples per training query and perturbation.
    pub k: usize,
    pub perturbations: Vec<NamedPerturbation>,
}

/// One perturbation with its name (unique in the experiment, used in stage
/// ids, file names and the report) and the seed of its random draws.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedPerturbation {
    pub name: String,
    pub perturbation: crate::robustness::Perturbation,
    pub seed: u64,
}
