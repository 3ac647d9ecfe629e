//! analyze: builds the dynamics (from the score entries, or from the import
//! entry), runs the pre-memorization analysis and writes its tables plus
//! `dynamics.json` and `analysis.json` for the report stage.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::analysis::{self, AnalysisOptions, Dynamics};

use super::dynamics::{collect_dynamics, ScoredRun};
use super::pipeline::StageContext;
use super::plan::Job;
use super::{StageError, StageKind};

pub fn run(context: &StageContext) -> Result<(), StageError> {
    let plan = context.plan;
    let dynamics = match plan.training() {
        None => read_json(
            &context
                .upstream_dir(StageKind::Import)?
                .join("dynamics.json"),
        )?,
        Some(training) => {
            let mut runs: Vec<ScoredRun> = training
                .runs
                .iter()
                .map(|run| ScoredRun {
                    run: run.clone(),
                    score_dirs: Vec::new(),
                })
                .collect();
            for &index in &context.stage().upstream {
                let stage = &plan.stages[index];
                if let Job::Score { run, .. } = stage.job {
                    runs[run]
                        .score_dirs
                        .push(context.cache.entry_dir(stage.kind.name(), &stage.key));
                }
            }
            collect_dynamics(&runs)?
        }
    };

    let options = AnalysisOptions {
        threshold: plan.experiment.scoring.threshold,
        threshold_grid: plan.experiment.analysis.threshold_grid.clone(),
    };
    let analysis = analysis::analyze(&dynamics, &options);
    analysis::write_tables(&analysis, &dynamics, context.out_dir)
        .map_err(StageError::write(context.out_dir))?;

    write_json(&context.out_dir.join("dynamics.json"), &dynamics)?;
    write_json(&context.out_dir.join("analysis.json"), &analysis)
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StageError> {
    let text = serde_json::to_string(value).map_err(|e| StageError::write(path)(e.into()))?;
    std::fs::write(path, text).map_err(StageError::write(path))
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StageError> {
    let text = std::fs::read_to_string(path).map_err(|e| StageError::read(path, e))?;
    serde_json::from_str(&text).map_err(|e| StageError::read(path, e))
}

/// The dynamics an analyze entry was computed from.
pub fn read_dynamics(entry_dir: &Path) -> Result<Dynamics, StageError> {
    read_json(&entry_dir.join("dynamics.json"))
}
