//! Conversion of the score stages' files into [`Dynamics`], the form every
//! analysis reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::analysis::dynamics::{
    CheckpointDynamics, Dynamics, RunDynamics, TestRecord, TrainRecord,
};
use crate::experiment::RunConfig;
use crate::grade::Outcome;

use super::score::CheckpointRecord;
use super::StageError;

/// One run and the score entries of its checkpoints, in training order.
#[derive(Debug, Clone)]
pub struct ScoredRun {
    pub run: RunConfig,
    pub score_dirs: Vec<PathBuf>,
}

/// Builds the dynamics of every run from its score entries: train records
/// in the order of `perplexities.csv` (the run's training examples), each
/// with the outcomes of `train.csv` in sample order; test records from
/// `test.csv` in first-seen order.
pub fn collect_dynamics(runs: &[ScoredRun]) -> Result<Dynamics, StageError> {
    let mut dynamics = Dynamics::default();
    for scored in runs {
        let mut checkpoints = Vec::new();
        for dir in &scored.score_dirs {
            checkpoints.push(read_checkpoint(dir)?);
        }

        let mut params = BTreeMap::new();
        params.insert("seed".to_string(), scored.run.seed.to_string());
        dynamics.runs.push(RunDynamics {
            name: scored.run.name(),
            learning_rate: Some(scored.run.learning_rate),
            epochs: Some(scored.run.epochs as f64),
            data_fraction: Some(scored.run.data_fraction),
            params,
            checkpoints,
        });
    }
    Ok(dynamics)
}

fn read_checkpoint(dir: &Path) -> Result<CheckpointDynamics, StageError> {
    let record_path = dir.join("checkpoint.json");
    let text =
        std::fs::read_to_string(&record_path).map_err(|e| StageError::read(&record_path, e))?;
    let record: CheckpointRecord =
        serde_json::from_str(&text).map_err(|e| StageError::read(&record_path, e))?;

    let mut train: Vec<TrainRecord> = Vec::new();
    let mut train_index = BTreeMap::new();
    let path = dir.join("perplexities.csv");
    for row in read_rows(&path, &["id", "target_tokens", "nll_mean", "perplexity"])? {
        let (line, fields) = row;
        let parse_error =
            |field: &str| StageError::read(&path, format!("line {line}: invalid `{field}`"));
        let perplexity: f64 = fields[3].parse().map_err(|_| parse_error("perplexity"))?;
        train_index.insert(fields[0].clone(), train.len());
        train.push(TrainRecord {
            id: fields[0].clone(),
            outcomes: Vec::new(),
            perplexity,
            nll_mean: Some(fields[2].parse().map_err(|_| parse_error("nll_mean"))?),
            target_tokens: Some(
                fields[1]
                    .parse()
                    .map_err(|_| parse_error("target_tokens"))?,
            ),
        });
    }

    let path = dir.join("train.csv");
    for (id, outcomes) in read_outcomes(&path)? {
        let Some(&index) = train_index.get(&id) else {
            return Err(StageError::read(
                &path,
                format!("example `{id}` has no row in perplexities.csv"),
            ));
        };
        train[index].outcomes = outcomes;
    }

    let test = read_outcomes(&dir.join("test.csv"))?
        .into_iter()
        .map(|(id, outcomes)| TestRecord { id, outcomes })
        .collect();

    Ok(CheckpointDynamics {
        label: record.label,
        epoch: record.epoch,
        step: record.step,
        train,
        test,
    })
}

/// Reads `id,sample,outcome` rows grouped by id, ids in first-seen order
/// and each id's outcomes ordered by sample index.
fn read_outcomes(path: &Path) -> Result<Vec<(String, Vec<Outcome>)>, StageError> {
    let mut groups: Vec<(String, Vec<(usize, Outcome)>)> = Vec::new();
    let mut group_of_id: BTreeMap<String, usize> = BTreeMap::new();
    for (line, fields) in read_rows(path, &["id", "sample", "outcome"])? {
        let sample: usize = fields[1].parse().map_err(|_| {
            StageError::read(
                path,
                format!("line {line}: invalid `sample` {:?}", fields[1]),
            )
        })?;
        let outcome = match fields[2].as_str() {
            "correct" => Outcome::Correct,
            "wrong" => Outcome::Wrong,
            "no_answer" => Outcome::NoAnswer,
            other => {
                return Err(StageError::read(
                    path,
                    format!("line {line}: invalid `outcome` {other:?}, expected correct, wrong or no_answer"),
                ))
            }
        };
        let index = *group_of_id.entry(fields[0].clone()).or_insert_with(|| {
            groups.push((fields[0].clone(), Vec::new()));
            groups.len() - 1
        });
        groups[index].1.push((sample, outcome));
    }

    Ok(groups
        .into_iter()
        .map(|(id, mut samples)| {
            samples.sort_by_key(|(sample, _)| *sample);
            (
                id,
                samples.into_iter().map(|(_, outcome)| outcome).collect(),
            )
        })
        .collect())
}

/// Reads a CSV file with exactly the `expected` header; returns each row
/// with its 1-based line number.
fn read_rows(path: &Path, expected: &[&str]) -> Result<Vec<(usize, Vec<String>)>, StageError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| StageError::read(path, e))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| StageError::read(path, e))?
        .iter()
        .map(str::to_string)
        .collect();
    if header != expected {
        return Err(StageError::read(
            path,
            format!("header {header:?}, expected {expected:?}"),
        ));
    }

    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| StageError::read(path, e))?;
        rows.push((index + 2, record.iter().map(str::to_string).collect()));
    }
    Ok(rows)
}
