//! `premem status FILE`: each planned stage with whether it is cached, its
//! key prefix, the size of its entry and the time it took to build.

use crate::cache::{dir_size, Cache};

use super::check::{stage_label, ExperimentArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (plan, _) = args.experiment.plan()?;
    let cache = Cache::open(&args.experiment.cache_dir(), false)?;

    let mut cached = 0;
    for stage in &plan.stages {
        let label = stage_label(&stage.id, stage.kind);
        let key = &stage.key[..12];
        match cache.lookup(stage.kind.name(), &stage.key) {
            Some(record) => {
                cached += 1;
                let size = dir_size(&cache.entry_dir(stage.kind.name(), &stage.key));
                println!(
                    "cached   {:<13} {key} {:>10} {:>9.1}s {label}",
                    stage.kind.name(),
                    human_size(size),
                    record.duration_s
                );
            }
            None => println!(
                "missing  {:<13} {key} {:>10} {:>10} {label}",
                stage.kind.name(),
                "-",
                "-"
            ),
        }
    }
    println!("{cached} of {} stages cached", plan.stages.len());
    Ok(())
}

/// Bytes in binary units, e.g. `1.5 MiB`.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}
