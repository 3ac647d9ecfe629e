//! robustness: at the checkpoint chosen in `[robustness]`, draws k samples
//! per training query with one perturbation applied, grades them and writes
//! `outcomes.csv` (id, sample, outcome), `accuracy.csv` (id, accuracy) and
//! `samples.jsonl` (the raw continuations, for inspection).
//!
//! Typos change only the question, so the prompt template's own words
//! (such as `Answer:`) stay intact. For an answer prefix the prompt ends
//! with the prefix, the model continues after it, and the grader reads
//! prefix + continuation, because the prefix is part of the answer.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::data::{Example, Format};
use crate::experiment::NamedPerturbation;
use crate::grade::Outcome;
use crate::model::sample::{self, SampleRequest};
use crate::model::LoadedModel;
use crate::robustness::{self as checks, Perturbation};

use super::pipeline::StageContext;
use super::plan::{Job, Split};
use super::prepare::{read_prepared, PreparedExample};
use super::sample::SampleRecord;
use super::{progress, StageError, StageKind};

pub fn run(context: &StageContext) -> Result<(), StageError> {
    let plan = context.plan;
    let Job::Robustness { perturbation } = context.stage().job else {
        unreachable!("robustness stage with another job");
    };
    let training = plan
        .training()
        .expect("robustness is planned only for training experiments");
    let config = plan
        .experiment
        .robustness
        .as_ref()
        .expect("robustness is planned only with [robustness]");
    let named = &config.perturbations[perturbation];
    let run = &training.runs[config.run];

    let mut train = read_prepared(&context.upstream_dir(StageKind::PrepareData)?, Split::Train)?;
    train.truncate(run.train_count(train.len()));
    let requests: Vec<SampleRequest> = train
        .iter()
        .map(|example| SampleRequest {
            prompt: perturbed_prompt(&plan.experiment.templates, named, example),
            example_id: example.id.clone(),
        })
        .collect();

    let options = training.sampling.options(config.k);
    let checkpoint = context
        .upstream_dir(StageKind::FineTune)?
        .join(format!("epoch-{}", config.epoch));
    let model = LoadedModel::load(&checkpoint, training.model.precision)?;

    let total = (requests.len() * options.k) as u64;
    let bar = progress::bar(total, &context.stage().id, context.show_progress);
    let samples = sample::sample(&model, &requests, &options, &mut |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();

    let records: Vec<SampleRecord> = samples
        .into_iter()
        .map(|sample| SampleRecord {
            id: requests[sample.request_index].example_id.clone(),
            sample: sample.sample_index,
            text: sample.text,
            tokens: sample.tokens,
            stop_reason: sample.stop_reason,
        })
        .collect();
    write_samples(&context.out_dir.join("samples.jsonl"), &records)?;

    let outcomes = grade_all(
        plan.experiment.data.format,
        &named.perturbation,
        &train,
        &records,
    );
    write_outcomes(&context.out_dir.join("outcomes.csv"), &outcomes)?;
    write_accuracy(&context.out_dir.join("accuracy.csv"), &train, &outcomes)
}

/// Returns the prompt of `example` with the perturbation applied: typos go into
/// the question before the template is filled, an answer prefix after it.
pub fn perturbed_prompt(
    templates: &crate::data::Templates,
    named: &NamedPerturbation,
    example: &PreparedExample,
) -> String {
    match &named.perturbation {
        Perturbation::AnswerPrefix { .. } => checks::apply(
            &named.perturbation,
            &example.prompt,
            &example.id,
            named.seed,
        ),
        Perturbation::Typos { .. } => {
            let question = checks::apply(
                &named.perturbation,
                &example.question,
                &example.id,
                named.seed,
            );
            templates.prompt(&Example {
                id: example.id.clone(),
                line: example.line,
                question,
                solution: example.solution.clone(),
                extra: example.extra.clone(),
            })
        }
    }
}

/// Grades every sample into (id, sample index, outcome), graded on the text the
/// perturbation implies (see [`checks::text_for_grading`]).
fn grade_all(
    format: Format,
    perturbation: &Perturbation,
    examples: &[PreparedExample],
    records: &[SampleRecord],
) -> Vec<(String, usize, Outcome)> {
    let solutions: BTreeMap<&str, &str> = examples
        .iter()
        .map(|e| (e.id.as_str(), e.solution.as_str()))
        .collect();
    records
        .iter()
        .map(|record| {
            let solution = solutions.get(record.id.as_str()).copied().unwrap_or("");
            let text = checks::text_for_grading(perturbation, &record.text);
            let outcome = crate::grade::grade(format, solution, &text);
            (record.id.clone(), record.sample, outcome)
        })
        .collect()
}

fn write_samples(path: &Path, records: &[SampleRecord]) -> Result<(), StageError> {
    let file = std::fs::File::create(path).map_err(StageError::write(path))?;
    let mut writer = BufWriter::new(file);
    for record in records {
        let line = serde_json::to_string(record).map_err(|e| StageError::write(path)(e.into()))?;
        writeln!(writer, "{line}").map_err(StageError::write(path))?;
    }
    writer.flush().map_err(StageError::write(path))
}

fn write_outcomes(path: &Path, outcomes: &[(String, usize, Outcome)]) -> Result<(), StageError> {
    let mut writer = csv::Writer::from_path(path).map_err(|e| StageError::write(path)(e.into()))?;
    let mut row = |fields: &[&str]| {
        writer
            .write_record(fields)
            .map_err(|e| StageError::write(path)(e.into()))
    };
    row(&["id", "sample", "outcome"])?;
    for (id, sample, outcome) in outcomes {
        row(&[id, &sample.to_string(), outcome.name()])?;
    }
    writer.flush().map_err(StageError::write(path))
}

/// Writes one row per training example in prepared order: the fraction
/// of its samples graded correct.
fn write_accuracy(
    path: &Path,
    examples: &[PreparedExample],
    outcomes: &[(String, usize, Outcome)],
) -> Result<(), StageError> {
    let mut by_id: BTreeMap<&str, Vec<Outcome>> = BTreeMap::new();
    for (id, _, outcome) in outcomes {
        by_id.entry(id.as_str()).or_default().push(*outcome);
    }
    let mut writer = csv::Writer::from_path(path).map_err(|e| StageError::write(path)(e.into()))?;
    let mut row = |fields: &[&str]| {
        writer
            .write_record(fields)
            .map_err(|e| StageError::write(path)(e.into()))
    };
    row(&["id", "accuracy"])?;
    for example in examples {
        let graded = by_id
            .get(example.id.as_str())
            .map_or(&[][..], Vec::as_slice);
        let accuracy = crate::analysis::dynamics::accuracy(graded);
        row(&[&example.id, &accuracy.to_string()])?;
    }
    writer.flush().map_err(StageError::write(path))
}

/// Reads `accuracy.csv` of a robustness entry as (id, accuracy) rows.
pub fn read_accuracy(entry_dir: &Path) -> Result<Vec<(String, f64)>, StageError> {
    let path = entry_dir.join("accuracy.csv");
    let mut reader = csv::Reader::from_path(&path).map_err(|e| StageError::read(&path, e))?;
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| StageError::read(&path, e))?;
        let id = record.get(0).unwrap_or_default().to_string();
        let accuracy: f64 = record
            .get(1)
            .unwrap_or_default()
            .parse()
            .map_err(|e| StageError::read(&path, format!("row {}: {e}", index + 2)))?;
        rows.push((id, accuracy));
    }
    Ok(rows)
}
