//! score: at one checkpoint, the perplexity of every train target given its
//! prompt (`perplexities.csv`) and the grade of every train and test sample
//! (`train.csv`, `test.csv`), plus `checkpoint.json` naming the checkpoint.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::Format;
use crate::grade::Outcome;
use crate::model::score::{self, ScoreOptions, ScoreRequest};
use crate::model::LoadedModel;

use super::finetune::read_checkpoints;
use super::pipeline::StageContext;
use super::plan::{Job, Split};
use super::prepare::read_prepared;
use super::sample::read_samples;
use super::{progress, StageError, StageKind};

/// Content of `checkpoint.json`: which run and checkpoint the tables describe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointRecord {
    pub run: String,
    pub label: String,
    pub epoch: f64,
    pub step: u64,
}

pub fn run(context: &StageContext) -> Result<(), StageError> {
    let plan = context.plan;
    let Job::Score {
        run: run_index,
        epoch,
    } = context.stage().job
    else {
        unreachable!("score stage with another job");
    };
    let training = plan
        .training()
        .expect("score is planned only for training experiments");
    let run = &training.runs[run_index];
    let format = plan.experiment.data.format;

    let prepare_dir = context.upstream_dir(StageKind::PrepareData)?;
    let mut train = read_prepared(&prepare_dir, Split::Train)?;
    train.truncate(run.train_count(train.len()));
    let test = read_prepared(&prepare_dir, Split::Test)?;

    let fine_tune_dir = context.upstream_dir(StageKind::FineTune)?;
    let model = LoadedModel::load(
        &fine_tune_dir.join(format!("epoch-{epoch}")),
        training.model.precision,
    )?;
    let requests: Vec<ScoreRequest> = train
        .iter()
        .map(|example| ScoreRequest {
            prompt: example.prompt.clone(),
            target: example.target.clone(),
        })
        .collect();
    let options = ScoreOptions {
        token_budget: plan.experiment.scoring.token_budget,
    };
    let bar = progress::bar(
        requests.len() as u64,
        &context.stage().id,
        context.show_progress,
    );
    let scores = score::score(&model, &requests, &options, &mut |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();

    let path = context.out_dir.join("perplexities.csv");
    let mut writer = csv_writer(&path)?;
    write_row(
        &mut writer,
        &path,
        &["id", "target_tokens", "nll_mean", "perplexity"],
    )?;
    for (example, result) in train.iter().zip(&scores) {
        let row = [
            example.id.clone(),
            result.target_tokens.to_string(),
            result.nll_mean.to_string(),
            result.perplexity.to_string(),
        ];
        write_row(&mut writer, &path, &row)?;
    }
    writer.flush().map_err(StageError::write(&path))?;

    for split in [Split::Train, Split::Test] {
        let examples = if split == Split::Train { &train } else { &test };
        let sample_dir = context.sample_dir(split)?;
        grade_samples(
            &sample_dir,
            examples,
            format,
            &context.out_dir.join(format!("{}.csv", split.name())),
        )?;
    }

    let checkpoint = read_checkpoints(&fine_tune_dir)?
        .into_iter()
        .find(|c| c.epoch == epoch)
        .ok_or_else(|| {
            StageError::read(
                &fine_tune_dir.join("checkpoints.json"),
                format!("no checkpoint for epoch {epoch}"),
            )
        })?;
    let record = CheckpointRecord {
        run: run.name(),
        label: format!("epoch-{epoch}"),
        epoch: epoch as f64,
        step: checkpoint.step,
    };
    let path = context.out_dir.join("checkpoint.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&record).unwrap_or_default(),
    )
    .map_err(StageError::write(&path))
}

/// Grades every sample of a sample entry and writes `id,sample,outcome` rows.
fn grade_samples(
    sample_dir: &Path,
    examples: &[super::PreparedExample],
    format: Format,
    out_path: &Path,
) -> Result<(), StageError> {
    let solutions: HashMap<&str, &str> = examples
        .iter()
        .map(|e| (e.id.as_str(), e.solution.as_str()))
        .collect();
    let mut writer = csv_writer(out_path)?;
    write_row(&mut writer, out_path, &["id", "sample", "outcome"])?;
    for record in read_samples(sample_dir)? {
        let Some(solution) = solutions.get(record.id.as_str()) else {
            return Err(StageError::read(
                &sample_dir.join("samples.jsonl"),
                format!("sample of unknown example `{}`", record.id),
            ));
        };
        let outcome = grade(format, solution, &record.text);
        write_row(
            &mut writer,
            out_path,
            &[
                record.id.clone(),
                record.sample.to_string(),
                outcome.name().to_string(),
            ],
        )?;
    }
    writer.flush().map_err(StageError::write(out_path))
}

/// Grades one sample against its reference solution.
fn grade(format: Format, reference_solution: &str, sample_text: &str) -> Outcome {
    crate::grade::grade(format, reference_solution, sample_text)
}

fn csv_writer(path: &Path) -> Result<csv::Writer<std::fs::File>, StageError> {
    csv::Writer::from_path(path).map_err(|e| StageError::write(path)(e.into()))
}

fn write_row<S: AsRef<[u8]>>(
    writer: &mut csv::Writer<std::fs::File>,
    path: &Path,
    row: &[S],
) -> Result<(), StageError> {
    writer
        .write_record(row)
        .map_err(|e| StageError::write(path)(e.into()))
}
