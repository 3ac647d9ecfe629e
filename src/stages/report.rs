//! report: renders the PDF from the analyze entry and the prepared example
//! texts, then the pipeline copies the entry's files to `reports/NAME/`.

use std::path::Path;

use std::collections::HashMap;

use crate::analysis::pm::{example_series, pm_series};
use crate::analysis::{Analysis, Dynamics};
use crate::experiment::{DataSource, Experiment, Source, SyntheticData};
use crate::curation::Strategy;
use crate::report::curation::CurationInput;
use crate::report::robustness::{ExampleAccuracy, PerturbedAccuracy, RobustnessInput};
use crate::report::{self, ExampleText, ReportInput};

use super::analyze::{read_dynamics, read_json};
use super::curation::{read_eval, read_selection};
use super::pipeline::StageContext;
use super::plan::{Job, Split};
use super::prepare::read_prepared;
use super::provenance::provenance_rows;
use super::robustness::read_accuracy;
use super::{StageError, StageKind};

pub fn run(context: &StageContext) -> Result<(), StageError> {
    let plan = context.plan;
    let experiment = &plan.experiment;

    let analyze_dir = context.upstream_dir(StageKind::Analyze)?;
    let dynamics = read_dynamics(&analyze_dir)?;
    let dynamics_for_robustness = dynamics.clone();
    let analysis: Analysis = read_json(&analyze_dir.join("analysis.json"))?;
    let examples = read_prepared(&context.upstream_dir(StageKind::PrepareData)?, Split::Train)?
        .into_iter()
        .map(|example| ExampleText {
            id: example.id,
            question: example.question,
            solution: example.solution,
        })
        .collect();

    let input = ReportInput {
        name: experiment.name.clone(),
        title: experiment.title.clone(),
        config: config_rows(experiment),
        dynamics,
        analysis,
        examples,
        provenance: provenance_rows(plan),
        creation_timestamp: timestamp_from_key(&context.stage().key),
        robustness: robustness_input(context, &dynamics_for_robustness)?,
        curation: curation_input(context)?,
    };
    report::render(&input, context.out_dir)?;
    Ok(())
}

/// Joins each robustness entry's per-example accuracy with PM and the
/// unperturbed accuracy at the checked checkpoint; None without
/// `[robustness]`.
fn robustness_input(
    context: &StageContext,
    dynamics: &Dynamics,
) -> Result<Option<RobustnessInput>, StageError> {
    let plan = context.plan;
    let (Some(config), Some(training)) = (&plan.experiment.robustness, plan.training()) else {
        return Ok(None);
    };
    let run_name = training.runs[config.run].name();
    let label = format!("epoch-{}", config.epoch);
    let analyze_dir = context.upstream_dir(StageKind::Analyze)?;
    let missing = |what: String| StageError::read(&analyze_dir.join("dynamics.json"), what);

    let run = dynamics
        .runs
        .iter()
        .find(|run| run.name == run_name)
        .ok_or_else(|| missing(format!("no run `{run_name}`")))?;
    let t = run
        .checkpoints
        .iter()
        .position(|c| c.label == label)
        .ok_or_else(|| missing(format!("run `{run_name}` has no checkpoint `{label}`")))?;
    let threshold = plan.experiment.scoring.threshold;
    let measured: HashMap<String, (f64, f64)> = example_series(run)
        .into_iter()
        .filter_map(|series| {
            let pm = pm_series(&series.accuracy, &series.perplexity, threshold)[t]?;
            Some((series.id, (pm, series.accuracy[t]?)))
        })
        .collect();

    let mut perturbations = Vec::new();
    for &index in &context.stage().upstream {
        let stage = &plan.stages[index];
        let Job::Robustness { perturbation } = stage.job else {
            continue;
        };
        let named = &config.perturbations[perturbation];
        let entry = context.cache.entry_dir(stage.kind.name(), &stage.key);
        let examples = read_accuracy(&entry)?
            .into_iter()
            .filter_map(|(id, perturbed)| {
                let (pm, accuracy) = *measured.get(&id)?;
                Some(ExampleAccuracy {
                    id,
                    pm,
                    accuracy,
                    perturbed,
                })
            })
            .collect();
        perturbations.push(PerturbedAccuracy {
            name: named.name.clone(),
            label: named.perturbation.label(),
            examples,
        });
    }
    Ok(Some(RobustnessInput {
        run: run_name,
        checkpoint: label,
        perturbations,
    }))
}

/// Collects the curation rounds' evaluations and selection notes; None without
/// `[curation]`.
fn curation_input(context: &StageContext) -> Result<Option<CurationInput>, StageError> {
    let plan = context.plan;
    let Some(config) = &plan.experiment.curation else {
        return Ok(None);
    };
    let mut results = Vec::new();
    let mut notes = Vec::new();
    let mut chosen = std::collections::BTreeMap::new();
    for &index in &context.stage().upstream {
        let stage = &plan.stages[index];
        let entry = context.cache.entry_dir(stage.kind.name(), &stage.key);
        match stage.job {
            Job::CurationEval { .. } => results.push(read_eval(&entry)?),
            Job::CurationSelect { .. } => {
                let selection = read_selection(&entry)?;
                if let Some(note) = &selection.note {
                    notes.push(format!(
                        "{} seed {}, after round {}: {note}",
                        selection.strategy, selection.seed, selection.round
                    ));
                }
                chosen.insert(
                    (selection.strategy, selection.seed, selection.round),
                    selection.chosen,
                );
            }
            _ => {}
        }
    }
    // premem and random draw in the same seeded order, so when premem's
    // filter admits every remaining candidate the two choose alike.
    for ((strategy, seed, round), ids) in &chosen {
        if strategy == "premem" && chosen.get(&("random".to_string(), *seed, *round)) == Some(ids) {
            notes.push(format!(
                "premem seed {seed}, after round {round}: chose the same candidates as random, because every candidate it reached in their shared seeded order passed the PM threshold"
            ));
        }
    }
    let base_examples = read_prepared(&context.upstream_dir(StageKind::PrepareData)?, Split::Train)?.len();
    Ok(Some(CurationInput {
        strategies: config.strategies.iter().map(|s| s.label().to_string()).collect(),
        seeds: config.seeds.clone(),
        threshold: config
            .strategies
            .iter()
            .find_map(|s| match s {
                Strategy::Premem { threshold } => Some(*threshold),
                _ => None,
            })
            .unwrap_or(crate::curation::DEFAULT_PM_THRESHOLD),
        base_examples,
        results,
        notes,
    }))
}

/// A PDF creation time derived from the report key, so that the same
/// inputs give the same bytes: 2020-01-01 plus up to one year of seconds.
fn timestamp_from_key(key: &str) -> i64 {
    let offset = i64::from_str_radix(&key[..8], 16).unwrap_or(0) % 31_536_000;
    1_577_836_800 + offset
}

/// The experiment's configuration as (key, value) rows for the report.
pub fn config_rows(experiment: &Experiment) -> Vec<(String, String)> {
    let data = &experiment.data;
    let optional = |value: Option<usize>| value.map_or("all".to_string(), |v| v.to_string());
    let mut rows = vec![
        ("data.format".to_string(), data.format.name().to_string()),
    ];
    match &data.source {
        DataSource::Files { train, test } => rows.extend([
            ("data.train".to_string(), train.display().to_string()),
            ("data.test".to_string(), test.display().to_string()),
            ("data.train_subset".to_string(), optional(data.train_subset)),
            ("data.test_subset".to_string(), optional(data.test_subset)),
        ]),
        DataSource::Synthetic(synthetic) => rows.extend(synthetic_rows(synthetic)),
    }
    rows.push((
        "scoring.threshold".to_string(),
        experiment.scoring.threshold.to_string(),
    ));
    match &experiment.source {
        Source::Import(import) => {
            rows.push(("import.dir".to_string(), import.dir.display().to_string()))
        }
        Source::Training(training) => {
            rows.push((
                "model.path".to_string(),
                training.model.path.display().to_string(),
            ));
            let optimizer = &training.optimizer;
            rows.push((
                "train.batch_size".to_string(),
                optimizer.batch_size.to_string(),
            ));
            rows.push((
                "train.grad_accum".to_string(),
                optimizer.grad_accum.to_string(),
            ));
            rows.push((
                "train.weight_decay".to_string(),
                optimizer.weight_decay.to_string(),
            ));
            for run in &training.runs {
                rows.push(("sweep run".to_string(), run.name()));
            }
            let sampling = &training.sampling;
            rows.push(("sampling.k_train".to_string(), sampling.k_train.to_string()));
            rows.push(("sampling.k_test".to_string(), sampling.k_test.to_string()));
            rows.push((
                "sampling.temperature".to_string(),
                sampling.temperature.to_string(),
            ));
            rows.push(("sampling.top_p".to_string(), sampling.top_p.to_string()));
        }
    }
    rows
}

/// Copies the files of the report entry (PDF, figures, CSV tables), but
/// not its cache bookkeeping, into `target`, replacing earlier copies.
pub fn publish(entry_dir: &Path, target: &Path) -> Result<(), StageError> {
    std::fs::create_dir_all(target).map_err(StageError::write(target))?;
    copy_tree(
        entry_dir,
        target,
        &[crate::cache::MANIFEST, crate::cache::MARKER],
    )
}

fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> Result<(), StageError> {
    for entry in std::fs::read_dir(from).map_err(|e| StageError::read(from, e))? {
        let entry = entry.map_err(|e| StageError::read(from, e))?;
        if skip.iter().any(|name| entry.file_name() == *name) {
            continue;
        }
        let source = entry.path();
        let destination = to.join(entry.file_name());
        if source.is_dir() {
            std::fs::create_dir_all(&destination).map_err(StageError::write(&destination))?;
            copy_tree(&source, &destination, &[])?;
        } else {
            std::fs::copy(&source, &destination).map_err(StageError::write(&destination))?;
        }
    }
    Ok(())
}

/// The `[data.synthetic]` settings as report rows.
fn synthetic_rows(synthetic: &SyntheticData) -> Vec<(String, String)> {
    let generator = &synthetic.generator;
    let operations: Vec<&str> = generator.operations.iter().map(|op| op.name()).collect();
    [
        ("train_count", synthetic.train_count.to_string()),
        ("test_count", synthetic.test_count.to_string()),
        ("seed", generator.seed.to_string()),
        (
            "steps",
            format!("{} to {}", generator.min_steps, generator.max_steps),
        ),
        ("operations", operations.join(", ")),
        (
            "values",
            format!("{} to {}", generator.min_value, generator.max_value),
        ),
        ("max_factor", generator.max_factor.to_string()),
        ("max_result", generator.max_result.to_string()),
        ("allow_negative", generator.allow_negative.to_string()),
        ("surface_forms", generator.surface_forms.to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (format!("data.synthetic.{key}"), value))
    .collect()
}
