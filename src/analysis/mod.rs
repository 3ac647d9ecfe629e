//! Pre-memorization analysis of learning dynamics.

pub mod dynamics;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use dynamics::Dynamics;

/// Settings of the analysis stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnalysisOptions {
    /// Memorization threshold on target perplexity.
    pub threshold: f64,
    /// Thresholds of the sensitivity sweep.
    pub threshold_grid: Vec<f64>,
}

/// Everything the analysis computes, for the report and for JSON output.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Analysis {}

/// Computes per-checkpoint metrics, the pooled regressions and the
/// threshold sweep.
pub fn analyze(dynamics: &Dynamics, options: &AnalysisOptions) -> Analysis {
    let _ = (dynamics, options);
    todo!("analysis")
}

/// Writes the analysis as CSV tables and a JSON summary into `dir`.
pub fn write_tables(analysis: &Analysis, dynamics: &Dynamics, dir: &Path) -> std::io::Result<()> {
    let _ = (analysis, dynamics, dir);
    todo!("analysis tables")
}
