//! Learning dynamics as every analysis reads them: for each run and
//! checkpoint, the graded samples and target perplexity of every training
//! example and the graded samples of every test example.
//!
//! premem's own sample and score stages produce this, and so does the import
//! of dynamics recorded by other tools.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::grade::Outcome;

/// All runs of one experiment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Dynamics {
    pub runs: Vec<RunDynamics>,
}

/// One fine-tuning run (one sweep configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunDynamics {
    /// Unique, human-readable run name, e.g. `lr2e-05_ep3_full`.
    pub name: String,
    pub learning_rate: Option<f64>,
    pub epochs: Option<f64>,
    pub data_fraction: Option<f64>,
    /// Other sweep parameters, for tables.
    pub params: BTreeMap<String, String>,
    /// Checkpoints in training order.
    pub checkpoints: Vec<CheckpointDynamics>,
}

/// What was measured at one checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointDynamics {
    /// Label such as `epoch-2` or `checkpoint-116`.
    pub label: String,
    /// Epochs of training completed (may be fractional).
    pub epoch: f64,
    /// Optimizer steps completed.
    pub step: u64,
    /// One record per training example of the run, in a fixed order that is
    /// the same at every checkpoint of the run.
    pub train: Vec<TrainRecord>,
    pub test: Vec<TestRecord>,
}

/// One training example at one checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainRecord {
    pub id: String,
    /// Graded outcome of each of the k samples.
    pub outcomes: Vec<Outcome>,
    /// exp(mean NLL of the target tokens given the prompt).
    pub perplexity: f64,
    pub nll_mean: Option<f64>,
    pub target_tokens: Option<usize>,
}

/// One test example at one checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestRecord {
    pub id: String,
    pub outcomes: Vec<Outcome>,
}

/// Fraction of outcomes that are correct (0 for no outcomes).
pub fn accuracy(outcomes: &[Outcome]) -> f64 {
    if outcomes.is_empty() {
        return 0.0;
    }
    outcomes.iter().filter(|o| **o == Outcome::Correct).count() as f64 / outcomes.len() as f64
}
