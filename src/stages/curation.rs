//! The curation stages (`[curation]`): the candidate pool, the evaluation
//! of every round's fine-tuned model and the selection of the next round's
//! candidates. Round fine-tuning itself is a fine-tune stage.
//!
//! - curation-pool writes `pool.jsonl` (prepared candidates, each with a
//!   `seed_id` extra field) and `ifd.csv` (the two NLLs of instruction-
//!   following difficulty of each base example under the untuned model).
//! - curation-eval samples the test split at the round's last checkpoint and
//!   writes `eval.json`. When a selection that reads statistics follows, it
//!   also samples and scores the base set at every checkpoint, so the
//!   `dynamics.json` it always writes has train records.
//! - curation-select applies one strategy and seed and writes `added.jsonl`,
//!   every candidate added so far in this line, and `selection.json`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::analysis::dynamics::{CheckpointDynamics, RunDynamics, TestRecord, TrainRecord};
use crate::curation::{self, Candidate, Strategy};
use crate::curation_stats::{seed_stats, synthetic_pool, IfdScores};
use crate::data::Example;
use crate::experiment::{CurationConfig, DataSource, PoolSource};
use crate::grade::Outcome;
use crate::model::sample::{self, SampleRequest};
use crate::model::score::{self, ScoreOptions, ScoreRequest};
use crate::model::{LoadedModel, Precision};
use crate::report::curation::RoundResult;

use super::analyze::{read_json, write_json};
use super::finetune::read_checkpoints;
use super::pipeline::StageContext;
use super::plan::{Job, Split};
use super::prepare::{read_prepared, PreparedExample};
use super::{progress, StageError, StageKind};

/// Content of a curation-select entry's `selection.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SelectionRecord {
    /// The round whose model the statistics came from; the chosen
    /// candidates join round `round + 1`.
    pub round: usize,
    pub strategy: String,
    pub seed: u64,
    /// Candidates chosen in this round, in selection order.
    pub chosen: Vec<String>,
    /// Set when a filter had too few eligible candidates, or the pool ran out.
    pub note: Option<String>,
}

fn curation_config<'a>(context: &'a StageContext<'a>) -> &'a CurationConfig {
    context
        .plan
        .experiment
        .curation
        .as_ref()
        .expect("curation stages are planned only with `[curation]`")
}

/// Builds the pool, checks it against the base and test sets and scores
/// IFD of every base example.
pub fn run_pool(context: &StageContext) -> Result<(), StageError> {
    let plan = context.plan;
    let config = curation_config(context);
    let experiment = &plan.experiment;
    let prepare_dir = context.upstream_dir(StageKind::PrepareData)?;
    let base = read_prepared(&prepare_dir, Split::Train)?;
    let test = read_prepared(&prepare_dir, Split::Test)?;
    let base_examples: Vec<Example> = base.iter().map(example_of).collect();
    let base_ids: BTreeSet<String> = base.iter().map(|e| e.id.clone()).collect();

    let mut outside_base = 0;
    let candidates = match (&config.pool, &experiment.data.source) {
        (PoolSource::Synthetic { per_seed, seed }, DataSource::Synthetic(synthetic)) => {
            synthetic_pool(&base_examples, &synthetic.generator, *per_seed, *seed)?
        }
        (PoolSource::Synthetic { .. }, DataSource::Files { .. }) => {
            unreachable!("reading the experiment rejects a synthetic pool with data files")
        }
        (PoolSource::File(path), _) => {
            // A pool may be written for the whole train file; candidates
            // seeded from examples outside the prepared subset are left out.
            let path = plan.roots.data_path(path);
            let examples = crate::data::load_jsonl(&path, experiment.data.format)?;
            let (inside, outside): (Vec<Example>, Vec<Example>) = examples
                .into_iter()
                .partition(|e| e.extra("seed_id").is_none_or(|seed| base_ids.contains(seed)));
            outside_base = outside.len();
            curation::pool_from_examples(&path, inside, &base_ids).map_err(|e| StageError::read(&path, e))?
        }
    };

    // A candidate must be new: not a base example and not a test question.
    let test_questions: BTreeSet<&str> = test.iter().map(|e| e.question.as_str()).collect();
    let mut seen = BTreeSet::new();
    let mut dropped = 0;
    let path = context.out_dir.join("pool.jsonl");
    let file = std::fs::File::create(&path).map_err(StageError::write(&path))?;
    let mut writer = BufWriter::new(file);
    for candidate in &candidates {
        if base_ids.contains(candidate.id()) || !seen.insert(candidate.id().to_string()) {
            return Err(StageError::read(
                &path,
                format!(
                    "candidate id `{}` repeats a base or candidate id; give every pool line its own id",
                    candidate.id()
                ),
            ));
        }
        if test_questions.contains(candidate.example.question.as_str()) {
            dropped += 1;
            continue;
        }
        let prepared = PreparedExample::new(&candidate.example, &experiment.templates);
        let line = serde_json::to_string(&prepared).map_err(|e| StageError::write(&path)(e.into()))?;
        writeln!(writer, "{line}").map_err(StageError::write(&path))?;
    }
    writer.flush().map_err(StageError::write(&path))?;
    write_json(
        &context.out_dir.join("summary.json"),
        &serde_json::json!({
            "candidates": candidates.len() - dropped,
            "dropped_as_test_questions": dropped,
            "dropped_seed_outside_base_set": outside_base,
        }),
    )?;

    write_ifd(context, &base)

}

/// Scores each base target under the untuned model twice, after its prompt
/// and alone, and writes `ifd.csv`.
fn write_ifd(context: &StageContext, base: &[PreparedExample]) -> Result<(), StageError> {
    let plan = context.plan;
    let training = plan.training().expect("curation needs a training source");
    let model = LoadedModel::load(&plan.roots.model_path(&training.model.path), Precision::F32)?;
    let options = ScoreOptions {
        token_budget: plan.experiment.scoring.token_budget,
    };
    let mut requests: Vec<ScoreRequest> = base
        .iter()
        .map(|e| ScoreRequest {
            prompt: e.prompt.clone(),
            target: e.target.clone(),
        })
        .collect();
    requests.extend(base.iter().map(|e| ScoreRequest {
        prompt: String::new(),
        target: e.target.clone(),
    }));
    let bar = progress::bar(requests.len() as u64, &context.stage().id, context.show_progress);
    let scores = score::score(&model, &requests, &options, &mut |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();

    let path = context.out_dir.join("ifd.csv");
    let write_error = |e: csv::Error| StageError::write(&path)(e.into());
    let mut writer = csv::Writer::from_path(&path).map_err(write_error)?;
    writer
        .write_record(["id", "nll_given_question", "nll_alone"])
        .map_err(write_error)?;
    for (index, example) in base.iter().enumerate() {
        let given = scores[index].nll_mean.to_string();
        let alone = scores[base.len() + index].nll_mean.to_string();
        writer
            .write_record([example.id.as_str(), &given, &alone])
            .map_err(write_error)?;
    }
    writer.flush().map_err(StageError::write(&path))
}

/// Reads `ifd.csv` of a pool entry.
fn read_ifd(pool_dir: &Path) -> Result<BTreeMap<String, IfdScores>, StageError> {
    let path = pool_dir.join("ifd.csv");
    let mut reader = csv::Reader::from_path(&path).map_err(|e| StageError::read(&path, e))?;
    let mut scores = BTreeMap::new();
    for (index, row) in reader.records().enumerate() {
        let row = row.map_err(|e| StageError::read(&path, e))?;
        let field = |i: usize| -> Result<f64, StageError> {
            row.get(i)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| StageError::read(&path, format!("line {}: column {} is not a number", index + 2, i + 1)))
        };
        scores.insert(
            row.get(0).unwrap_or_default().to_string(),
            IfdScores {
                nll_given_question: field(1)?,
                nll_alone: field(2)?,
            },
        );
    }
    Ok(scores)
}

/// Evaluates one round's fine-tuned model; see the module docs.
pub fn run_eval(context: &StageContext) -> Result<(), StageError> {
    let plan = context.plan;
    let Job::CurationEval { round, line } = context.stage().job else {
        unreachable!("curation-eval stage with another job");
    };
    let training = plan.training().expect("curation needs a training source");
    let needs_dynamics = plan.curation_needs_dynamics(round, line);

    let prepare_dir = context.upstream_dir(StageKind::PrepareData)?;
    let base = read_prepared(&prepare_dir, Split::Train)?;
    let test = read_prepared(&prepare_dir, Split::Test)?;
    let added = match plan.upstream_of(context.index, StageKind::CurationSelect) {
        Some(_) => read_prepared_file(&context.upstream_dir(StageKind::CurationSelect)?.join("added.jsonl"))?.len(),
        None => 0,
    };

    let fine_tune_dir = context.upstream_dir(StageKind::FineTune)?;
    let mut checkpoints = read_checkpoints(&fine_tune_dir)?;
    checkpoints.sort_by_key(|c| c.epoch);
    let last_epoch = checkpoints.last().map(|c| c.epoch).ok_or_else(|| {
        StageError::read(&fine_tune_dir.join("checkpoints.json"), "the fine-tune entry lists no checkpoints")
    })?;

    let sampling = &training.sampling;
    let mut dynamics = Vec::new();
    let mut test_outcomes = Vec::new();
    for checkpoint in &checkpoints {
        let is_last = checkpoint.epoch == last_epoch;
        if !needs_dynamics && !is_last {
            continue;
        }
        let model = LoadedModel::load(&fine_tune_dir.join(&checkpoint.dir), training.model.precision)?;
        let label = format!("epoch-{}", checkpoint.epoch);

        let mut train = Vec::new();
        if needs_dynamics {
            let outcomes = sample_and_grade(context, &model, &base, sampling.k_train, &format!("{label} base"))?;
            let requests: Vec<ScoreRequest> = base
                .iter()
                .map(|e| ScoreRequest {
                    prompt: e.prompt.clone(),
                    target: e.target.clone(),
                })
                .collect();
            let options = ScoreOptions {
                token_budget: plan.experiment.scoring.token_budget,
            };
            let scores = score::score(&model, &requests, &options, &mut |_| {})?;
            for ((example, outcomes), result) in base.iter().zip(outcomes).zip(scores) {
                train.push(TrainRecord {
                    id: example.id.clone(),
                    outcomes,
                    perplexity: result.perplexity,
                    nll_mean: Some(result.nll_mean),
                    target_tokens: Some(result.target_tokens),
                });
            }
        }

        let mut test_records = Vec::new();
        if is_last {
            test_outcomes = sample_and_grade(context, &model, &test, sampling.k_test, &format!("{label} test"))?;
            test_records = test
                .iter()
                .zip(&test_outcomes)
                .map(|(example, outcomes)| TestRecord {
                    id: example.id.clone(),
                    outcomes: outcomes.clone(),
                })
                .collect();
        }
        dynamics.push(CheckpointDynamics {
            label,
            epoch: checkpoint.epoch as f64,
            step: checkpoint.step,
            train,
            test: test_records,
        });
    }

    let (strategy, seed) = match line {
        Some(line) => {
            let (strategy, seed) = plan.curation_line(line);
            (Some(strategy.label().to_string()), Some(seed))
        }
        None => (None, None),
    };
    let run = RunDynamics {
        name: context.stage().id.clone(),
        learning_rate: Some(curation_config(context).learning_rate),
        epochs: Some(curation_config(context).epochs as f64),
        data_fraction: Some(1.0),
        params: BTreeMap::new(),
        checkpoints: dynamics,
    };
    write_json(&context.out_dir.join("dynamics.json"), &run)?;

    let samples: usize = test_outcomes.iter().map(Vec::len).sum();
    let correct = test_outcomes.iter().flatten().filter(|o| **o == Outcome::Correct).count();
    let record = RoundResult {
        round,
        strategy,
        seed,
        train_examples: base.len() + added,
        test_accuracy: if samples == 0 { 0.0 } else { correct as f64 / samples as f64 },
        test_samples: samples,
    };
    write_json(&context.out_dir.join("eval.json"), &record)
}

/// Draws k samples per example and grades them; outcomes in example order,
/// each in sample order.
fn sample_and_grade(
    context: &StageContext,
    model: &LoadedModel,
    examples: &[PreparedExample],
    k: usize,
    what: &str,
) -> Result<Vec<Vec<Outcome>>, StageError> {
    let plan = context.plan;
    let training = plan.training().expect("curation needs a training source");
    let requests: Vec<SampleRequest> = examples
        .iter()
        .map(|e| SampleRequest {
            prompt: e.prompt.clone(),
            example_id: e.id.clone(),
        })
        .collect();
    let options = training.sampling.options(k);
    let bar = progress::bar(
        (requests.len() * k) as u64,
        &format!("{} {what}", context.stage().id),
        context.show_progress,
    );
    let samples = sample::sample(model, &requests, &options, &mut |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();

    let mut outcomes = vec![vec![Outcome::NoAnswer; k]; examples.len()];
    for sample in samples {
        let example = &examples[sample.request_index];
        outcomes[sample.request_index][sample.sample_index] =
            crate::grade::grade(plan.experiment.data.format, &example.solution, &sample.text);
    }
    Ok(outcomes)
}

/// Chooses the next round's candidates for one strategy and seed.
pub fn run_select(context: &StageContext) -> Result<(), StageError> {
    let plan = context.plan;
    let Job::CurationSelect { round, line } = context.stage().job else {
        unreachable!("curation-select stage with another job");
    };
    let config = curation_config(context);
    let (strategy, seed) = plan.curation_line(line);

    let pool_dir = context.upstream_dir(StageKind::CurationPool)?;
    let pool = read_prepared_file(&pool_dir.join("pool.jsonl"))?;
    let candidates: Vec<Candidate> = pool
        .iter()
        .map(|prepared| {
            let example = example_of(prepared);
            let seed_id = example.extra("seed_id").unwrap_or_default().to_string();
            Candidate { example, seed_id }
        })
        .collect();

    // Candidates of earlier rounds in this line stay in and are excluded.
    let mut added = match plan.upstream_of(context.index, StageKind::CurationSelect) {
        Some(_) => read_prepared_file(&context.upstream_dir(StageKind::CurationSelect)?.join("added.jsonl"))?,
        None => Vec::new(),
    };
    let excluded: BTreeSet<String> = added.iter().map(|e| e.id.clone()).collect();

    let eval_dir = context.upstream_dir(StageKind::CurationEval)?;
    let stats = if matches!(strategy, Strategy::Random) {
        BTreeMap::new()
    } else {
        let run: RunDynamics = read_json(&eval_dir.join("dynamics.json"))?;
        let ifd = read_ifd(&pool_dir)?;
        seed_stats(&run, plan.experiment.scoring.threshold, &ifd)
            .map_err(|e| StageError::read(&eval_dir.join("dynamics.json"), e))?
    };

    // One selection stream per (seed, round), so rounds draw independently.
    let selection_seed = seed.wrapping_mul(1_000_003).wrapping_add(round as u64);
    let n = config.add[round - 1];
    let selection = curation::select(strategy, &candidates, &stats, &excluded, n, selection_seed)
        .map_err(|e| StageError::read(&eval_dir, e))?;

    let by_id: HashMap<&str, &PreparedExample> = pool.iter().map(|e| (e.id.as_str(), e)).collect();
    for id in &selection.ids {
        added.push((*by_id[id.as_str()]).clone());
    }
    let path = context.out_dir.join("added.jsonl");
    let mut text = String::new();
    for example in &added {
        text.push_str(&serde_json::to_string(example).map_err(|e| StageError::write(&path)(e.into()))?);
        text.push('\n');
    }
    std::fs::write(&path, text).map_err(StageError::write(&path))?;

    write_json(
        &context.out_dir.join("selection.json"),
        &SelectionRecord {
            round,
            strategy: strategy.label().to_string(),
            seed,
            chosen: selection.ids,
            note: selection.note,
        },
    )
}

/// Training examples of a curation fine-tune: the base set, then every
/// candidate added in this line so far.
pub fn round_examples(context: &StageContext) -> Result<Vec<PreparedExample>, StageError> {
    let mut examples = read_prepared(&context.upstream_dir(StageKind::PrepareData)?, Split::Train)?;
    if context.plan.upstream_of(context.index, StageKind::CurationSelect).is_some() {
        let dir = context.upstream_dir(StageKind::CurationSelect)?;
        examples.extend(read_prepared_file(&dir.join("added.jsonl"))?);
    }
    Ok(examples)
}

/// Reads the `selection.json` of a curation-select entry.
pub fn read_selection(entry_dir: &Path) -> Result<SelectionRecord, StageError> {
    read_json(&entry_dir.join("selection.json"))
}

/// Reads the `eval.json` of a curation-eval entry.
pub fn read_eval(entry_dir: &Path) -> Result<RoundResult, StageError> {
    read_json(&entry_dir.join("eval.json"))
}

fn read_prepared_file(path: &Path) -> Result<Vec<PreparedExample>, StageError> {
    let text = std::fs::read_to_string(path).map_err(|e| StageError::read(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|e| StageError::read(path, format!("line {}: {e}", index + 1)))
        })
        .collect()
}

fn example_of(prepared: &PreparedExample) -> Example {
    Example {
        id: prepared.id.clone(),
        line: prepared.line,
        question: prepared.question.clone(),
        solution: prepared.solution.clone(),
        extra: prepared.extra.clone(),
    }
}
