//! `premem report FILE`: runs every stage of an experiment that is not
//! cached and copies the rendered report to `reports/NAME/`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::cache::Cache;
use crate::stages::{run_pipeline, RunOptions, StageKind};

use super::check::ExperimentArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub experiment: ExperimentArgs,

    /// Run only the stages up to and including this kind, in pipeline order:
    /// prepare-data, fine-tune, import, sample, score, robustness,
    /// curation-pool, curation-eval, curation-select, analyze, report.
    /// Stages that read a skipped stage are skipped too.
    #[arg(long, value_name = "STAGE")]
    pub until: Option<StageKind>,

    /// Folder that receives a copy of the report, as `DIR/NAME/`.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub reports_dir: PathBuf,
}

pub fn run(args: Args, quiet: bool) -> anyhow::Result<()> {
    let (plan, _) = args.experiment.plan()?;
    let cache = Cache::open(&args.experiment.cache_dir(), false)?;

    let stop = Arc::new(AtomicBool::new(false));
    let handler_flag = Arc::clone(&stop);
    let installed = ctrlc::set_handler(move || {
        handler_flag.store(true, Ordering::SeqCst);
        eprintln!("stopping at the next safe point; rerun the same command to resume");
    });
    if let Err(error) = installed {
        tracing::warn!(%error, "cannot install the Ctrl-C handler");
    }

    let options = RunOptions {
        until: args.until,
        show_progress: !quiet,
        reports_dir: args.reports_dir,
    };
    let summary = run_pipeline(&plan, &cache, &options, &stop)?;

    println!("{} stages reused, {} built", summary.reused, summary.built);
    if let Some(dir) = summary.report_dir {
        println!("report: {}", dir.join("report.pdf").display());
    }
    Ok(())
}
