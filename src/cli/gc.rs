//! `premem gc [--dry-run]`: removes cache entries that no experiment file in
//! `experiments/` references, printing each entry and the bytes freed.
//!
//! It marks every key that the plans of all experiment files contain, then
//! sweeps the rest, holding the cache's exclusive lock so that no running
//! pipeline loses an entry it is using. If any experiment file cannot be
//! planned, nothing is removed: an entry it references might look unused.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cache::{dir_size, Cache};
use crate::experiment;
use crate::stages::Plan;

use super::check::{digest_memo, FolderArgs};
use super::status::human_size;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print what would be removed without removing it.
    #[arg(long)]
    pub dry_run: bool,

    /// Folder of experiment files whose entries are kept.
    #[arg(long, value_name = "DIR", default_value = "experiments")]
    pub experiments_dir: PathBuf,

    #[command(flatten)]
    pub folders: FolderArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let roots = args.folders.roots();
    let cache_dir = args.folders.cache_dir();

    let referenced = referenced_keys(&args.experiments_dir, &roots, &cache_dir)?;
    let cache = Cache::open(&cache_dir, true)?;

    let mut removed = 0;
    let mut freed = 0;
    for entry in cache.entries()? {
        if referenced.contains(&(entry.stage.clone(), entry.key.clone())) {
            continue;
        }
        let size = dir_size(&entry.dir);
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removing"
        };
        println!(
            "{verb} {} {} ({})",
            entry.stage,
            &entry.key[..12],
            human_size(size)
        );
        if !args.dry_run {
            cache.remove_entry(&entry.stage, &entry.key)?;
        }
        removed += 1;
        freed += size;
    }

    for (stage, key, dir) in cache.work_dirs()? {
        if referenced.contains(&(stage.clone(), key.clone())) {
            continue;
        }
        let size = dir_size(&dir);
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removing"
        };
        println!(
            "{verb} resume state of {stage} {} ({})",
            &key[..12],
            human_size(size)
        );
        if !args.dry_run {
            cache.remove_entry(&stage, &key)?;
        }
        removed += 1;
        freed += size;
    }

    let verb = if args.dry_run { "would free" } else { "freed" };
    println!("{removed} entries, {verb} {}", human_size(freed));
    Ok(())
}

/// (stage, key) of every stage planned by the experiment files in `dir`.
/// Files that only serve as `extends` bases may be incomplete and are
/// skipped when they do not load on their own.
fn referenced_keys(
    dir: &Path,
    roots: &experiment::Roots,
    cache_dir: &Path,
) -> anyhow::Result<BTreeSet<(String, String)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list experiment files in {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let bases = base_files(&files);

    let mut memo = digest_memo(cache_dir);
    let mut keys = BTreeSet::new();
    for file in &files {
        let experiment = match experiment::load(file) {
            Ok(experiment) => experiment,
            Err(error) if bases.contains(&canonical(file)) => {
                tracing::debug!(file = %file.display(), %error, "skipping a base file that is not a full experiment");
                continue;
            }
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context("nothing was removed: every experiment file must load"))
            }
        };
        experiment::check_inputs(&experiment, roots)
            .context("nothing was removed: every experiment file must plan")?;
        let plan = Plan::build(&experiment, roots, &mut memo)?;
        for stage in plan.stages {
            keys.insert((stage.kind.name().to_string(), stage.key));
        }
    }
    Ok(keys)
}

/// Files named by an `extends` key of another file, canonicalized.
fn base_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut bases = BTreeSet::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let Ok(table) = text.parse::<toml::Table>() else {
            continue;
        };
        if let Some(toml::Value::String(base)) = table.get("extends") {
            bases.insert(canonical(
                &file.parent().unwrap_or(Path::new(".")).join(base),
            ));
        }
    }
    bases
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
