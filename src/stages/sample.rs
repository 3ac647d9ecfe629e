//! sample: draws k completions per prompt of one split from one checkpoint
//! and writes them to `samples.jsonl`.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::sample::{self, SampleRequest, StopReason};
use crate::model::LoadedModel;

use super::pipeline::StageContext;
use super::plan::{Job, Split};
use super::prepare::read_prepared;
use super::{progress, StageError, StageKind};

/// One line of `samples.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleRecord {
    pub id: String,
    /// Index of the sample among the example's k samples.
    pub sample: usize,
    pub text: String,
    pub tokens: usize,
    pub stop_reason: StopReason,
}

pub fn run(context: &StageContext) -> Result<(), StageError> {
    let plan = context.plan;
    let Job::Sample {
        run: run_index,
        epoch,
        split,
    } = context.stage().job
    else {
        unreachable!("sample stage with another job");
    };
    let training = plan
        .training()
        .expect("sample is planned only for training experiments");
    let run = &training.runs[run_index];

    let mut prepared = read_prepared(&context.upstream_dir(StageKind::PrepareData)?, split)?;
    if split == Split::Train {
        prepared.truncate(run.train_count(prepared.len()));
    }
    let requests: Vec<SampleRequest> = prepared
        .iter()
        .map(|example| SampleRequest {
            prompt: example.prompt.clone(),
            example_id: example.id.clone(),
        })
        .collect();

    let sampling = &training.sampling;
    let options = sampling.options(match split {
        Split::Train => sampling.k_train,
        Split::Test => sampling.k_test,
    });

    let checkpoint = context
        .upstream_dir(StageKind::FineTune)?
        .join(format!("epoch-{epoch}"));
    let model = LoadedModel::load(&checkpoint, training.model.precision)?;

    let total = (requests.len() * options.k) as u64;
    let bar = progress::bar(total, &context.stage().id, context.show_progress);
    let samples = sample::sample(&model, &requests, &options, &mut |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();

    let path = context.out_dir.join("samples.jsonl");
    let file = std::fs::File::create(&path).map_err(StageError::write(&path))?;
    let mut writer = BufWriter::new(file);
    for sample in samples {
        let record = SampleRecord {
            id: requests[sample.request_index].example_id.clone(),
            sample: sample.sample_index,
            text: sample.text,
            tokens: sample.tokens,
            stop_reason: sample.stop_reason,
        };
        let line =
            serde_json::to_string(&record).map_err(|e| StageError::write(&path)(e.into()))?;
        writeln!(writer, "{line}").map_err(StageError::write(&path))?;
    }
    writer.flush().map_err(StageError::write(&path))
}

/// Reads `samples.jsonl` of a sample entry.
pub fn read_samples(entry_dir: &Path) -> Result<Vec<SampleRecord>, StageError> {
    let path = entry_dir.join("samples.jsonl");
    let file = std::fs::File::open(&path).map_err(|e| StageError::read(&path, e))?;
    let mut records = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| StageError::read(&path, e))?;
        records.push(
            serde_json::from_str(&line)
                .map_err(|e| StageError::read(&path, format!("line {}: {e}", index + 1)))?,
        );
    }
    Ok(records)
}
