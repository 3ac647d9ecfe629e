//! bf16 against f32 scoring on real GSM8k targets under SmolLM2. Ignored by
//! default because it took 7 minutes on a shared 2-core CPU. Run it with
//!
//!     cargo test --release --test it bf16_perplexity -- --ignored --nocapture

use std::time::Instant;

use premem::data::{load_jsonl, Format, Templates};
use premem::model::score::{score, ScoreOptions, ScoreRequest, ScoreResult};
use premem::model::{LoadedModel, Precision};

use super::smollm2_path;
use crate::helpers::shared_dir;

/// Memorization threshold for GSM8k: exp(exp(-2.3)).
const GSM8K_THRESHOLD: f64 = 1.1055;

const EXAMPLES: usize = 64;

fn timed_scores(model: &LoadedModel, requests: &[ScoreRequest]) -> (Vec<ScoreResult>, f64) {
    let started = Instant::now();
    let results = score(model, requests, &ScoreOptions::default(), &mut |_| {}).unwrap();
    let tokens: usize = results.iter().map(|r| r.target_tokens).sum();
    (results, tokens as f64 / started.elapsed().as_secs_f64())
}

#[test]
#[ignore = "slow: scores 64 GSM8k targets twice under SmolLM2"]
fn bf16_perplexity_against_f32() {
    let (Some(path), Some(shared)) = (smollm2_path(), shared_dir()) else {
        eprintln!("skipped: needs the SmolLM2 GGUF and the shared GSM8k data");
        return;
    };
    let examples = load_jsonl(&shared.join("data/gsm8k/train.jsonl"), Format::Gsm8k).unwrap();
    let templates = Templates::default();
    let requests: Vec<ScoreRequest> = examples[..EXAMPLES]
        .iter()
        .map(|ex| ScoreRequest {
            prompt: templates.prompt(ex),
            target: templates.target(ex),
        })
        .collect();

    let f32_model = LoadedModel::load(&path, Precision::F32).unwrap();
    let (f32_results, f32_speed) = timed_scores(&f32_model, &requests);
    drop(f32_model);
    let bf16_model = LoadedModel::load(&path, Precision::Bf16).unwrap();
    let (bf16_results, bf16_speed) = timed_scores(&bf16_model, &requests);

    let diffs: Vec<f64> = f32_results
        .iter()
        .zip(&bf16_results)
        .map(|(a, b)| (a.perplexity - b.perplexity).abs())
        .collect();
    let max = diffs.iter().cloned().fold(0.0, f64::max);
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let flips = f32_results
        .iter()
        .zip(&bf16_results)
        .filter(|(a, b)| (a.perplexity < GSM8K_THRESHOLD) != (b.perplexity < GSM8K_THRESHOLD))
        .count();
    let memorized = f32_results
        .iter()
        .filter(|r| r.perplexity < GSM8K_THRESHOLD)
        .count();

    println!("examples: {EXAMPLES}");
    println!("perplexity |bf16 - f32|: max {max:.6}, mean {mean:.6}");
    println!("memorized at {GSM8K_THRESHOLD} in f32: {memorized}; flags flipped by bf16: {flips}");
    println!("target tokens/s: f32 {f32_speed:.1}, bf16 {bf16_speed:.1}");

    assert!(f32_results
        .iter()
        .zip(&bf16_results)
        .all(|(a, b)| a.target_tokens == b.target_tokens));
    assert!(mean < 1.0, "bf16 perplexities drift by {mean} on average");
}
