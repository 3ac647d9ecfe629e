//! The stages of an experiment and the pipeline that plans and runs them.
//!
//! A training experiment runs prepare-data, then one fine-tune per sweep
//! configuration, a sample stage per checkpoint and split, a score stage
//! per checkpoint, then analyze and report; `[robustness]` and `[curation]`
//! add their stages before the report. An import experiment runs
//! prepare-data (for the example texts), import, analyze and report. Every
//! stage reads only its upstream entries' files and writes plain files:
//! JSONL for examples and samples, CSV for per-example tables, JSON for
//! summaries, safetensors for weights.

mod analyze;
mod curation;
mod dynamics;
mod finetune;
mod import;
mod pipeline;
mod plan;
mod prepare;
mod progress;
mod provenance;
mod report;
mod robustness;
mod sample;
mod score;

use std::fmt;
use std::path::PathBuf;

pub use dynamics::{collect_dynamics, ScoredRun};
pub use pipeline::{run_pipeline, PipelineError, RunOptions, RunSummary};
pub use plan::{Job, Plan, PlannedStage, Split};
pub use prepare::{read_prepared, PreparedExample};

/// Kinds of stage, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StageKind {
    PrepareData,
    FineTune,
    Import,
    Sample,
    Score,
    /// Samples under perturbed prompts at one checkpoint (`[robustness]`).
    Robustness,
    /// The candidate pool of `[curation]`, with IFD of the base examples.
    CurationPool,
    /// Test accuracy (and base-set dynamics) of one curation round.
    CurationEval,
    /// One strategy's choice of candidates for the next curation round.
    CurationSelect,
    Analyze,
    Report,
}

impl StageKind {
    pub const ALL: [StageKind; 11] = [
        StageKind::PrepareData,
        StageKind::FineTune,
        StageKind::Import,
        StageKind::Sample,
        StageKind::Score,
        StageKind::Robustness,
        StageKind::CurationPool,
        StageKind::CurationEval,
        StageKind::CurationSelect,
        StageKind::Analyze,
        StageKind::Report,
    ];

    /// Name used in cache folders and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            StageKind::PrepareData => "prepare-data",
            StageKind::FineTune => "fine-tune",
            StageKind::Import => "import",
            StageKind::Sample => "sample",
            StageKind::Score => "score",
            StageKind::Robustness => "robustness",
            StageKind::CurationPool => "curation-pool",
            StageKind::CurationEval => "curation-eval",
            StageKind::CurationSelect => "curation-select",
            StageKind::Analyze => "analyze",
            StageKind::Report => "report",
        }
    }

    /// Format version of the stage's outputs, part of its cache key. Bump
    /// it whenever the stage writes different files for the same inputs.
    pub fn version(self) -> u32 {
        match self {
            StageKind::PrepareData => 1,
            StageKind::FineTune => 1,
            StageKind::Import => 1,
            StageKind::Sample => 1,
            StageKind::Score => 1,
            StageKind::Robustness => 1,
            StageKind::CurationPool => 1,
            StageKind::CurationEval => 1,
            StageKind::CurationSelect => 1,
            StageKind::Analyze => 1,
            StageKind::Report => 2,
        }
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for StageKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StageKind::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = StageKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown stage `{s}`: expected one of {}", names.join(", "))
            })
    }
}

/// Failure inside one stage.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error("cannot generate the synthetic problems of `[data.synthetic]`: {0}")]
    Synthetic(#[from] crate::synth::SynthError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("recorded dynamics in {path}: {message}")]
    Import { path: PathBuf, message: String },
    #[error("interrupted; rerun the same command to resume")]
    Interrupted,
    #[error("the stage's code panicked: {0}")]
    Panic(String),
    #[error("{path} changed while the stage ran; rerun the command to use the new content")]
    InputChanged { path: PathBuf },
}

impl StageError {
    pub(crate) fn write(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StageError + '_ {
        move |source| StageError::Write {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn read(path: &std::path::Path, message: impl fmt::Display) -> StageError {
        StageError::Read {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}
