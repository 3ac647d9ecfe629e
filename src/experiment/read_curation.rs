//! Typed reading of `[curation]`: the candidate pool, how many candidates
//! each round adds, the strategies and seeds, and the fine-tuning settings
//! of the rounds. Kept apart from `read.rs` like `[robustness]`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::curation::{Strategy, DEFAULT_PM_THRESHOLD};

use super::error::ExperimentError;
use super::schema::{CurationConfig, DataSource, PoolSource, Source};
use super::tree::NodeKind;
use super::typed::{Range, Reader, Table};

const P: &str = "curation";

const STRATEGY_NAMES: [&str; 5] = ["premem", "random", "ifd", "length", "loss"];

/// Reads `[curation]` when present. It needs a training source (rounds
/// fine-tune the experiment's model) and, for a synthetic pool, synthetic
/// data (the variants come from the same generator).
pub(super) fn read_curation(
    reader: &mut Reader,
    root: &Table,
    source: &Source,
    data: &DataSource,
) -> Result<Option<CurationConfig>, ExperimentError> {
    let Some(node) = root.get(P) else {
        return Ok(None);
    };
    let Source::Training(training) = source else {
        return Err(ExperimentError::invalid(
            &node.location,
            P,
            "no `[curation]` table when `[import]` is set",
            "`[curation]`",
            Some("curation fine-tunes premem's own runs; remove one of the tables".into()),
        ));
    };
    let table = reader.table(node, P)?;
    reader.reject_unknown(
        table,
        P,
        &[
            "pool",
            "per_seed",
            "pool_seed",
            "add",
            "strategies",
            "threshold",
            "seeds",
            "learning_rate",
            "epochs",
        ],
    )?;

    // The pool: "synthetic" or a JSONL file.
    let pool_name = reader.required_string(table, P, "pool", node)?;
    let per_seed = reader.count(table, P, "per_seed", 1)?;
    let pool_seed = reader.seed(table, P, "pool_seed")?;
    let pool = if pool_name == "synthetic" {
        if !matches!(data, DataSource::Synthetic(_)) {
            return Err(ExperimentError::invalid(
                &reader.locations["curation.pool"],
                "curation.pool",
                "a JSONL file with a `seed_id` field when the data are files",
                "\"synthetic\"",
                Some("a synthetic pool varies generated problems; use `[data.synthetic]` or name a pool file".into()),
            ));
        }
        PoolSource::Synthetic {
            per_seed: per_seed.unwrap_or(4),
            seed: pool_seed.unwrap_or(1),
        }
    } else {
        for key in ["per_seed", "pool_seed"] {
            if let Some(location) = reader.locations.get(&format!("curation.{key}")) {
                return Err(ExperimentError::invalid(
                    location,
                    &format!("curation.{key}"),
                    "no such key with a pool file",
                    format!("`{key}`"),
                    Some("`per_seed` and `pool_seed` set up the synthetic pool only".into()),
                ));
            }
        }
        PoolSource::File(PathBuf::from(pool_name))
    };

    let add = reader.count_list(table, P, "add", node)?;

    let threshold = reader
        .float(table, P, "threshold", Range::closed(0.0, 1.0))?
        .unwrap_or(DEFAULT_PM_THRESHOLD);
    let strategies = match table.get("strategies") {
        None => vec![Strategy::Premem { threshold }, Strategy::Random],
        Some(_) => {
            let expected = format!("a non-empty array of names out of {}", STRATEGY_NAMES.join(", "));
            let (items, path) = reader.list(table, P, "strategies", node, &expected)?;
            let mut seen = BTreeSet::new();
            let mut strategies = Vec::new();
            for item in items {
                let strategy = match &item.kind {
                    NodeKind::Str(name) => match name.as_str() {
                        "premem" => Strategy::Premem { threshold },
                        "random" => Strategy::Random,
                        "ifd" => Strategy::Ifd,
                        "length" => Strategy::Length,
                        "loss" => Strategy::Loss,
                        _ => {
                            return Err(ExperimentError::invalid(
                                &item.location,
                                &path,
                                expected,
                                format!("{name:?}"),
                                None,
                            ))
                        }
                    },
                    _ => return Err(reader.wrong_type(item, &path, &expected)),
                };
                if !seen.insert(strategy.label()) {
                    return Err(ExperimentError::invalid(
                        &item.location,
                        &path,
                        "each strategy once",
                        format!("{:?} twice", strategy.label()),
                        None,
                    ));
                }
                strategies.push(strategy);
            }
            strategies
        }
    };

    let seeds = match table.get("seeds") {
        None => vec![0, 1],
        Some(_) => {
            let seeds = reader.seed_list(table, P, "seeds", node)?;
            let distinct: BTreeSet<u64> = seeds.iter().copied().collect();
            if distinct.len() != seeds.len() {
                return Err(ExperimentError::invalid(
                    &reader.locations["curation.seeds"],
                    "curation.seeds",
                    "distinct seeds",
                    format!("{seeds:?}"),
                    None,
                ));
            }
            seeds
        }
    };

    // By default the rounds train like the sweep's first run, so that
    // round 1 and that run share one cached fine-tune when it uses the
    // whole train split with seed 0.
    let first = &training.runs[0];
    let learning_rate = reader
        .float(table, P, "learning_rate", Range::above(0.0))?
        .unwrap_or(first.learning_rate);
    let epochs = reader.count(table, P, "epochs", 1)?.unwrap_or(first.epochs);

    Ok(Some(CurationConfig {
        pool,
        add,
        strategies,
        seeds,
        learning_rate,
        epochs,
    }))
}
