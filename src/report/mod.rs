//! The PDF report: Typst source and plotters figures, compiled with the
//! `typst` CLI.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analysis::{Analysis, Dynamics};

/// Text of one training example, for the report's example tables.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExampleText {
    pub id: String,
    pub question: String,
    pub solution: String,
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct ReportInput {
    /// Experiment name; also the folder name under `reports/`.
    pub name: String,
    pub title: String,
    /// The experiment's configuration as (key, value) rows.
    pub config: Vec<(String, String)>,
    pub dynamics: Dynamics,
    pub analysis: Analysis,
    pub examples: Vec<ExampleText>,
    /// Provenance rows: premem version, git revision, stage keys, seeds,
    /// libtorch and typst versions, data and model digests.
    pub provenance: Vec<(String, String)>,
    /// Unix seconds written into the PDF, derived from the inputs so that
    /// the same inputs give the same PDF.
    pub creation_timestamp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("typst CLI not found: install it with `cargo install typst-cli --locked` (or run scripts/setup.sh)")]
    TypstMissing,
    #[error("typst failed to compile {path}: {stderr}")]
    TypstFailed { path: PathBuf, stderr: String },
    #[error("figure {path}: {message}")]
    Figure { path: PathBuf, message: String },
}

/// Writes figures, CSV tables and Typst source into `out_dir` and compiles
/// `out_dir/report.pdf`, whose path is returned.
pub fn render(input: &ReportInput, out_dir: &Path) -> Result<PathBuf, ReportError> {
    let _ = (input, out_dir);
    todo!("report rendering")
}
