//! `premem check FILE`: validates an experiment file and the data and model
//! files it names, then prints the resolved plan without running anything.
//! The arguments and setup that the other experiment commands share live here too.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cache::DigestMemo;
use crate::experiment::{self, Experiment, LoadedData, Roots};
use crate::stages::{Plan, StageKind};

/// Data, model and cache folders, shared by the experiment commands and gc.
#[derive(Debug, Clone, clap::Args)]
pub struct FolderArgs {
    /// Root of relative data paths [env: PREMEM_DATA_DIR] [default: ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Root of relative model paths [env: PREMEM_MODEL_DIR] [default: ./models].
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,

    /// Cache folder [env: PREMEM_CACHE_DIR] [default: ./cache].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

fn from_flag_env_or(flag: &Option<PathBuf>, variable: &str, default: &str) -> PathBuf {
    flag.clone()
        .or_else(|| std::env::var_os(variable).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(default))
}

impl FolderArgs {
    pub fn roots(&self) -> Roots {
        Roots {
            data: from_flag_env_or(&self.data_dir, "PREMEM_DATA_DIR", "data"),
            models: from_flag_env_or(&self.model_dir, "PREMEM_MODEL_DIR", "models"),
        }
    }

    pub fn cache_dir(&self) -> PathBuf {
        from_flag_env_or(&self.cache_dir, "PREMEM_CACHE_DIR", "cache")
    }
}

/// Arguments shared by every command that reads an experiment file.
#[derive(Debug, Clone, clap::Args)]
pub struct ExperimentArgs {
    /// Experiment file (TOML), e.g. experiments/gsm8k-smollm2.toml.
    pub file: PathBuf,

    #[command(flatten)]
    pub folders: FolderArgs,
}

impl ExperimentArgs {
    pub fn roots(&self) -> Roots {
        self.folders.roots()
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.folders.cache_dir()
    }

    /// Reads the experiment and checks its data and model files.
    pub fn load(&self) -> anyhow::Result<(Experiment, LoadedData)> {
        let experiment = experiment::load(&self.file)?;
        let data = experiment::check_inputs(&experiment, &self.roots())?;
        Ok((experiment, data))
    }

    /// Loads, checks and plans the experiment; input digests go through the
    /// memo in the cache folder, which is saved afterwards.
    pub fn plan(&self) -> anyhow::Result<(Plan, LoadedData)> {
        let (experiment, data) = self.load()?;
        let mut memo = digest_memo(&self.cache_dir());
        let plan = Plan::build(&experiment, &self.roots(), &mut memo)
            .with_context(|| format!("cannot plan {}", self.file.display()))?;
        if let Err(error) = memo.save() {
            tracing::warn!(%error, "cannot save the digest memo; the next run rehashes its inputs");
        }
        Ok((plan, data))
    }
}

/// Loads the digest memo of a cache folder, or returns an unsaved one if
/// the folder does not exist yet (so `check` creates no cache).
pub fn digest_memo(cache_dir: &Path) -> DigestMemo {
    let root = cache_dir.join("v1");
    if root.is_dir() {
        DigestMemo::load(&root.join("digests.json"))
    } else {
        DigestMemo::in_memory()
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (plan, data) = args.experiment.plan()?;
    let experiment = &plan.experiment;

    println!("experiment {} ({})", experiment.name, experiment.title);
    println!(
        "data: {} format, {} train and {} test examples in the files",
        experiment.data.format,
        data.train.len(),
        data.test.len()
    );
    if let Some(training) = plan.training() {
        println!("runs: {}", training.runs.len());
        for run in &training.runs {
            let labels: Vec<String> = (1..=run.epochs).map(|e| format!("epoch-{e}")).collect();
            println!("  {}: checkpoints {}", run.name(), labels.join(", "));
        }
    }
    println!("stages: {}", plan.stages.len());
    for stage in &plan.stages {
        println!(
            "  {:<13} {} {}",
            stage.kind.name(),
            &stage.key[..12],
            stage_label(&stage.id, stage.kind)
        );
    }
    println!("ok: {} is valid", args.experiment.file.display());
    Ok(())
}

/// Returns the part of a stage id after its kind name.
pub fn stage_label(id: &str, kind: StageKind) -> &str {
    id.strip_prefix(kind.name()).unwrap_or(id).trim()
}
