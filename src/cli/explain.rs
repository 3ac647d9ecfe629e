//! `premem explain FILE STAGE`: why a stage would rerun. For every planned
//! stage of that kind that is not cached, lists the manifest fields that
//! differ from the closest cached entry of the same stage.

use crate::cache::Cache;
use crate::stages::StageKind;

use super::check::{stage_label, ExperimentArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub experiment: ExperimentArgs,

    /// Stage kind: prepare-data, fine-tune, import, sample, score, robustness,
    /// curation-pool, curation-eval, curation-select, analyze or report.
    pub stage: StageKind,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (plan, _) = args.experiment.plan()?;
    let cache = Cache::open(&args.experiment.cache_dir(), false)?;

    let cached_manifests: Vec<_> = cache
        .entries()?
        .into_iter()
        .filter(|entry| entry.stage == args.stage.name())
        .filter_map(|entry| {
            cache
                .read_manifest(&entry.stage, &entry.key)
                .map(|m| (entry.key, m))
        })
        .collect();

    let planned: Vec<_> = plan
        .stages
        .iter()
        .filter(|s| s.kind == args.stage)
        .collect();
    if planned.is_empty() {
        println!("the experiment plans no {} stage", args.stage);
        return Ok(());
    }

    for stage in planned {
        let title = format!("{} {}", args.stage, stage_label(&stage.id, stage.kind));
        if cache.lookup(stage.kind.name(), &stage.key).is_some() {
            println!(
                "{} (key {}): cached, would not rerun",
                title.trim(),
                &stage.key[..12]
            );
            continue;
        }

        let closest = cached_manifests
            .iter()
            .map(|(key, manifest)| (key, stage.manifest.differences(manifest)))
            .min_by_key(|(_, differences)| differences.len());
        match closest {
            None => println!(
                "{} (key {}): would run, because no entry of stage {} is cached",
                title.trim(),
                &stage.key[..12],
                args.stage
            ),
            Some((key, differences)) => {
                println!(
                    "{} (key {}): would run; the closest cached entry {} differs in:",
                    title.trim(),
                    &stage.key[..12],
                    &key[..12]
                );
                for difference in differences {
                    println!("  {difference}");
                }
            }
        }
    }
    Ok(())
}
