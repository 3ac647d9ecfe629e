//! Running a plan: each stage in order, reused when its entry is complete,
//! otherwise built under the cache's per-key lock. Progress is logged with
//! `tracing`; a stop request (Ctrl-C) ends the run at the next stage
//! boundary, or inside fine-tuning at the next step.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::cache::{BuildOutcome, Cache, DigestMemo};

use super::plan::{Job, Plan, PlannedStage, Split};
use super::{
    analyze, curation, finetune, import, prepare, report, robustness, sample, score, StageError,
    StageKind,
};

/// Everything a stage's code receives.
pub(crate) struct StageContext<'a> {
    pub plan: &'a Plan,
    pub index: usize,
    pub cache: &'a Cache,
    /// Folder the stage writes its outputs into.
    pub out_dir: &'a Path,
    pub stop: &'a AtomicBool,
    pub show_progress: bool,
}

impl StageContext<'_> {
    pub fn stage(&self) -> &PlannedStage {
        &self.plan.stages[self.index]
    }

    /// Entry folder of the upstream stage of `kind`.
    pub fn upstream_dir(&self, kind: StageKind) -> Result<PathBuf, StageError> {
        let stage = self.plan.upstream_of(self.index, kind).ok_or_else(|| {
            StageError::read(
                self.out_dir,
                format!("stage `{}` has no upstream {kind} stage", self.stage().id),
            )
        })?;
        Ok(self.cache.entry_dir(kind.name(), &stage.key))
    }

    /// Entry folder of the upstream sample stage of `split`.
    pub fn sample_dir(&self, split: Split) -> Result<PathBuf, StageError> {
        self.stage()
            .upstream
            .iter()
            .map(|&i| &self.plan.stages[i])
            .find(|stage| matches!(stage.job, Job::Sample { split: s, .. } if s == split))
            .map(|stage| self.cache.entry_dir(StageKind::Sample.name(), &stage.key))
            .ok_or_else(|| {
                StageError::read(
                    self.out_dir,
                    format!(
                        "stage `{}` has no {} sample stage",
                        self.stage().id,
                        split.name()
                    ),
                )
            })
    }
}

/// Options of one pipeline run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Run only stages up to this kind (in pipeline order); all when `None`.
    pub until: Option<StageKind>,
    pub show_progress: bool,
    /// Folder that receives a copy of the final report (`reports/`).
    pub reports_dir: PathBuf,
}

/// Counts of reused and built stages of one pipeline run.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub reused: usize,
    pub built: usize,
    /// Folder the report was copied to, when the report stage ran.
    pub report_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("stage `{stage}` (key {key}) failed: {source}")]
    StageFailed {
        stage: String,
        key: String,
        #[source]
        source: StageError,
    },
    #[error("interrupted before stage `{stage}`; nothing incomplete was kept; rerun the same command to resume")]
    Interrupted { stage: String },
}

/// Runs every planned stage (up to `options.until`) that is not cached.
pub fn run_pipeline(
    plan: &Plan,
    cache: &Cache,
    options: &RunOptions,
    stop: &AtomicBool,
) -> Result<RunSummary, PipelineError> {
    let mut summary = RunSummary::default();
    // A stage past `until` is skipped, and so is every stage that reads a
    // skipped one (a later curation round's fine-tune reads a selection).
    let mut skipped = vec![false; plan.stages.len()];
    for (index, stage) in plan.stages.iter().enumerate() {
        if options.until.is_some_and(|until| stage.kind > until)
            || stage.upstream.iter().any(|&up| skipped[up])
        {
            skipped[index] = true;
            continue;
        }
        if stop.load(Ordering::SeqCst) {
            return Err(PipelineError::Interrupted {
                stage: stage.id.clone(),
            });
        }

        let key_prefix = &stage.key[..12];
        let started = Instant::now();
        let fail = |source: StageError| PipelineError::StageFailed {
            stage: stage.id.clone(),
            key: key_prefix.to_string(),
            source,
        };

        let outcome = cache
            .build(&stage.manifest, |out_dir: &Path| {
                tracing::info!(stage = %stage.id, key = key_prefix, "cache miss; running");
                let context = StageContext {
                    plan,
                    index,
                    cache,
                    out_dir,
                    stop,
                    show_progress: options.show_progress,
                };
                run_stage_catching_panics(&context)?;
                if stop.load(Ordering::SeqCst) {
                    return Err(StageError::Interrupted);
                }
                check_inputs_unchanged(plan, stage)
            })
            .map_err(fail)?;

        match outcome {
            BuildOutcome::Hit => {
                summary.reused += 1;
                tracing::info!(stage = %stage.id, key = key_prefix, "cache hit");
            }
            BuildOutcome::Built => {
                summary.built += 1;
                tracing::info!(stage = %stage.id, key = key_prefix, seconds = started.elapsed().as_secs_f64(), "finished");
            }
        }

        if stage.kind == StageKind::Report {
            let target = options.reports_dir.join(&plan.experiment.name);
            report::publish(&cache.entry_dir(stage.kind.name(), &stage.key), &target)
                .map_err(fail)?;
            tracing::info!(path = %target.display(), "report copied");
            summary.report_dir = Some(target);
        }
    }
    Ok(summary)
}

/// Rehashes the stage's input files after it ran, so that a file edited
/// while the stage read it is never stored under the old file's key.
fn check_inputs_unchanged(plan: &Plan, stage: &PlannedStage) -> Result<(), StageError> {
    let mut memo = DigestMemo::in_memory();
    for (role, planned) in &stage.manifest.inputs {
        let Some(path) = plan.input_paths.get(role) else {
            continue;
        };
        let now = memo.digest(path).map_err(|e| StageError::read(path, e))?;
        if now != *planned {
            return Err(StageError::InputChanged { path: path.clone() });
        }
    }
    Ok(())
}

/// Runs a stage and turns a panic inside it into a [`StageError::Panic`],
/// so that the failure names the stage and key and its temporary folder
/// is removed.
fn run_stage_catching_panics(context: &StageContext) -> Result<(), StageError> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_stage(context)));
    result.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(StageError::Panic(message))
    })
}

fn run_stage(context: &StageContext) -> Result<(), StageError> {
    match context.stage().kind {
        StageKind::PrepareData => prepare::run(context.plan, context.out_dir),
        StageKind::FineTune => finetune::run(context),
        StageKind::Import => import::run(context),
        StageKind::Sample => sample::run(context),
        StageKind::Score => score::run(context),
        StageKind::Robustness => robustness::run(context),
        StageKind::CurationPool => curation::run_pool(context),
        StageKind::CurationEval => curation::run_eval(context),
        StageKind::CurationSelect => curation::run_select(context),
        StageKind::Analyze => analyze::run(context),
        StageKind::Report => report::run(context),
    }
}
