//! Typed reading of `[robustness]`: which checkpoint to check, how many
//! samples to draw and the perturbations of the prompt. Kept apart from
//! `read.rs` so that the main sweep's keys read top to bottom there.

use std::collections::BTreeSet;

use crate::robustness::Perturbation;

use super::error::ExperimentError;
use super::schema::{NamedPerturbation, RobustnessConfig, Source};
use super::tree::{Node, NodeKind};
use super::typed::{Range, Reader, Table};

const P: &str = "robustness";

/// Reads `[robustness]` when present. It needs a training source, because
/// it samples from one of the sweep's checkpoints.
pub(super) fn read_robustness(
    reader: &mut Reader,
    root: &Table,
    source: &Source,
) -> Result<Option<RobustnessConfig>, ExperimentError> {
    let Some(node) = root.get(P) else {
        return Ok(None);
    };
    let Source::Training(training) = source else {
        return Err(ExperimentError::invalid(
            &node.location,
            P,
            "no `[robustness]` table when `[import]` is set",
            "`[robustness]`",
            Some(
                "the check samples from premem's own checkpoints; remove one of the tables".into(),
            ),
        ));
    };
    let table = reader.table(node, P)?;
    reader.reject_unknown(table, P, &["run", "checkpoint", "k", "perturbations"])?;

    let names: Vec<String> = training.runs.iter().map(|run| run.name()).collect();
    let run = match reader.string(table, P, "run")? {
        None => 0,
        Some(name) => names.iter().position(|n| *n == name).ok_or_else(|| {
            ExperimentError::invalid(
                &reader.locations["robustness.run"],
                "robustness.run",
                "the name of a run of the sweep",
                format!("{name:?}"),
                Some(format!("runs of this sweep: {}", names.join(", "))),
            )
        })?,
    };

    let epochs = training.runs[run].epochs;
    let epoch = match reader.string(table, P, "checkpoint")? {
        None => epochs,
        Some(label) => parse_checkpoint(&label, epochs).ok_or_else(|| {
            ExperimentError::invalid(
                &reader.locations["robustness.checkpoint"],
                "robustness.checkpoint",
                format!("\"last\" or \"epoch-N\" with N in 1..={epochs}"),
                format!("{label:?}"),
                Some(format!("run {} has {epochs} epoch checkpoints", names[run])),
            )
        })?,
    };

    let k = reader.count(table, P, "k", 1)?.unwrap_or(4);
    let perturbations = match table.get("perturbations") {
        None => Perturbation::default_prefixes()
            .into_iter()
            .map(|perturbation| NamedPerturbation {
                name: default_name(&perturbation),
                perturbation,
                seed: 0,
            })
            .collect(),
        Some(list) => read_perturbations(reader, list)?,
    };

    Ok(Some(RobustnessConfig {
        run,
        epoch,
        k,
        perturbations,
    }))
}

/// `last` is `epochs`; `epoch-N` is N when 1 <= N <= epochs.
fn parse_checkpoint(label: &str, epochs: usize) -> Option<usize> {
    if label == "last" {
        return Some(epochs);
    }
    let epoch: usize = label.strip_prefix("epoch-")?.parse().ok()?;
    (1..=epochs).contains(&epoch).then_some(epoch)
}

/// Returns a file-name-safe name such as `prefix-first` or `typos-0.1`.
pub fn default_name(perturbation: &Perturbation) -> String {
    match perturbation {
        Perturbation::AnswerPrefix { text } => {
            let words: Vec<String> = text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect();
            format!("prefix-{}", words.join("-"))
        }
        Perturbation::Typos { rate } => format!("typos-{rate}"),
    }
}

fn read_perturbations(
    reader: &mut Reader,
    list: &Node,
) -> Result<Vec<NamedPerturbation>, ExperimentError> {
    let path = "robustness.perturbations";
    reader
        .locations
        .insert(path.to_string(), list.location.clone());
    let NodeKind::Array(items) = &list.kind else {
        return Err(reader.wrong_type(
            list,
            path,
            "an array of tables (`[[robustness.perturbations]]`)",
        ));
    };
    if items.is_empty() {
        return Err(ExperimentError::invalid(
            &list.location,
            path,
            "at least one perturbation",
            "an empty array",
            Some("remove the key to use the default answer prefixes".into()),
        ));
    }

    let mut seen = BTreeSet::new();
    let mut perturbations = Vec::new();
    for item in items {
        let table = reader.table(item, path)?;
        reader.reject_unknown(table, path, &["kind", "text", "rate", "seed", "name"])?;
        let kind = reader.required_string(table, path, "kind", item)?;
        let perturbation = match kind.as_str() {
            "answer_prefix" => {
                reader.reject_unknown(table, path, &["kind", "text", "seed", "name"])?;
                Perturbation::AnswerPrefix {
                    text: reader.required_string(table, path, "text", item)?,
                }
            }
            "typos" => {
                reader.reject_unknown(table, path, &["kind", "rate", "seed", "name"])?;
                Perturbation::Typos {
                    rate: reader.required_float(
                        table,
                        path,
                        "rate",
                        Range::open_closed(0.0, 1.0),
                        item,
                    )?,
                }
            }
            other => {
                return Err(ExperimentError::invalid(
                    &item.location,
                    &format!("{path}.kind"),
                    "\"answer_prefix\" or \"typos\"",
                    format!("{other:?}"),
                    None,
                ))
            }
        };
        let seed = reader.seed(table, path, "seed")?.unwrap_or(0);
        let name = match reader.string(table, path, "name")? {
            Some(name) => name,
            None => default_name(&perturbation),
        };
        let safe = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !safe || !seen.insert(name.clone()) {
            return Err(ExperimentError::invalid(
                &item.location,
                &format!("{path}.name"),
                "a unique name of letters, digits, `-`, `_` and `.`",
                format!("{name:?}"),
                Some("two perturbations need different names; set `name` on one of them".into()),
            ));
        }
        perturbations.push(NamedPerturbation {
            name,
            perturbation,
            seed,
        });
    }
    Ok(perturbations)
}
