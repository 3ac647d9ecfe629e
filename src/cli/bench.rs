//! `premem bench`: times the three workloads of an experiment on one model
//! and prints tokens per second as JSON, for comparison with
//! `bench/transformers_baseline.py`, which does the same work.
//!
//! Workloads, all on the first examples of a GSM8k file:
//! - train: one optimizer step (forward, backward, AdamW) on a batch of 8
//!   pairs, timed after one untimed step; tokens = prompt + target tokens.
//! - score: target perplexity of 64 pairs; tokens = prompt + target tokens.
//! - sample: 8 prompts x k=4 at temperature 0.8, top-p 0.95, up to 64 new
//!   tokens with no stop string; tokens = generated tokens.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::cli::dataset_args::parse_precision;
use crate::data::{load_jsonl, Format, Templates};
use crate::model::optim::{AdamW, AdamWConfig};
use crate::model::sample::{sample, SampleOptions, SampleRequest};
use crate::model::score::{score, ScoreOptions, ScoreRequest};
use crate::model::train::{optimizer_step, tokenize_examples, tokenize_pair, TrainExample};
use crate::model::{LoadedModel, Precision};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model: a Hugging Face checkpoint folder or a .gguf file.
    #[arg(long)]
    pub model: PathBuf,

    /// GSM8k JSONL file whose first examples make the workloads.
    #[arg(long)]
    pub data: PathBuf,

    /// Numeric type of the scoring and sampling forward passes: f32 or bf16.
    /// Training always runs in f32.
    #[arg(long, value_parser = parse_precision, default_value = "f32")]
    pub precision: Precision,
}

/// Tokens per second of each workload.
#[derive(Debug, serde::Serialize)]
struct Throughput {
    implementation: &'static str,
    threads: i32,
    train_tokens_per_s: f64,
    score_tokens_per_s: f64,
    sample_tokens_per_s: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let examples = load_jsonl(&args.data, Format::Gsm8k)?;
    if examples.len() < 64 {
        return Err(crate::cli::InvalidInput(format!(
            "{} has {} examples; the benchmark needs 64",
            args.data.display(),
            examples.len()
        ))
        .into());
    }
    let templates = Templates::default();
    let pairs: Vec<TrainExample> = examples
        .iter()
        .take(64)
        .map(|example| TrainExample {
            prompt: templates.prompt(example),
            target: templates.target(example),
        })
        .collect();

    let train_tokens_per_s = bench_train(&args, &pairs[..8])?;
    let inference = LoadedModel::load(&args.model, args.precision)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    let score_tokens_per_s = bench_score(&inference, &pairs)?;
    let sample_tokens_per_s = bench_sample(&inference, &pairs[..8])?;

    let result = Throughput {
        implementation: "premem",
        threads: tch::get_num_threads(),
        train_tokens_per_s,
        score_tokens_per_s,
        sample_tokens_per_s,
    };
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

/// Runs two optimizer steps on the same 8 pairs and times the second.
fn bench_train(args: &Args, batch: &[TrainExample]) -> anyhow::Result<f64> {
    let mut model = LoadedModel::load(&args.model, Precision::F32)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    let pairs = tokenize_examples(&model, batch)?;
    let tokens: usize = pairs.iter().map(|pair| pair.ids.len()).sum();

    let config = AdamWConfig {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let mut optimizer = AdamW::new(&model.vs, config);
    let indices: Vec<usize> = (0..pairs.len()).collect();
    let group = [indices.as_slice()];

    optimizer_step(&mut model, &mut optimizer, &pairs, &group, 1e-5, 1.0).context("benchmark training step failed")?;
    let start = Instant::now();
    optimizer_step(&mut model, &mut optimizer, &pairs, &group, 1e-5, 1.0).context("benchmark training step failed")?;
    let seconds = start.elapsed().as_secs_f64();
    eprintln!("train: {tokens} tokens in {seconds:.2} s");
    Ok(tokens as f64 / seconds)
}

/// Scores 64 pairs, after scoring 8 untimed ones.
fn bench_score(model: &LoadedModel, pairs: &[TrainExample]) -> anyhow::Result<f64> {
    let requests: Vec<ScoreRequest> = pairs
        .iter()
        .map(|pair| ScoreRequest {
            prompt: pair.prompt.clone(),
            target: pair.target.clone(),
        })
        .collect();
    let mut tokens = 0;
    for pair in pairs {
        tokens += tokenize_pair(model, &pair.prompt, &pair.target)
            .map_err(anyhow::Error::msg)?
            .ids
            .len();
    }

    score(model, &requests[..8], &ScoreOptions::default(), &mut |_| {}).context("benchmark scoring failed")?;
    let start = Instant::now();
    score(model, &requests, &ScoreOptions::default(), &mut |_| {}).context("benchmark scoring failed")?;
    let seconds = start.elapsed().as_secs_f64();
    eprintln!("score: {tokens} tokens in {seconds:.2} s");
    Ok(tokens as f64 / seconds)
}

/// Draws 4 samples of up to 64 tokens for each of 8 prompts.
fn bench_sample(model: &LoadedModel, pairs: &[TrainExample]) -> anyhow::Result<f64> {
    let requests: Vec<SampleRequest> = pairs
        .iter()
        .enumerate()
        .map(|(index, pair)| SampleRequest {
            prompt: pair.prompt.clone(),
            example_id: index.to_string(),
        })
        .collect();
    let options = SampleOptions {
        k: 4,
        temperature: 0.8,
        top_p: 0.95,
        max_new_tokens: 64,
        stop: vec![],
        seed: 0,
        batch_size: 32,
    };

    let start = Instant::now();
    let samples = sample(model, &requests, &options, &mut |_| {}).context("benchmark sampling failed")?;
    let seconds = start.elapsed().as_secs_f64();
    let tokens: usize = samples.iter().map(|s| s.tokens).sum();
    eprintln!("sample: {tokens} generated tokens in {seconds:.2} s");
    Ok(tokens as f64 / seconds)
}
