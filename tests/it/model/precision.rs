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

/// CPU seconds (user + system, all threads) this process has used, read
/// from /proc/self/stat; `None` off Linux. Clock ticks are assumed to be
/// 1/100 s, the Linux default.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesized command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// Target tokens per wall-clock second and per CPU second of one scoring run.
struct Speed {
    wall: f64,
    cpu: Option<f64>,
}

fn timed_scores(model: &LoadedModel, requests: &[ScoreRequest]) -> (Vec<ScoreResult>, Speed) {
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let results = score(model, requests, &ScoreOptions::default(), &mut |_| {}).unwrap();
    let wall_seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_before
        .zip(process_cpu_seconds())
        .map(|(before, after)| after - before);

    let tokens = results.iter().map(|r| r.target_tokens).sum::<usize>() as f64;
    let speed = Speed {
        wall: tokens / wall_seconds,
        cpu: cpu_seconds.map(|seconds| tokens / seconds),
    };
    (results, speed)
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
    println!(
        "target tokens per wall second: f32 {:.1}, bf16 {:.1}",
        f32_speed.wall, bf16_speed.wall
    );
    if let (Some(f32_cpu), Some(bf16_cpu)) = (f32_speed.cpu, bf16_speed.cpu) {
        println!("target tokens per CPU second: f32 {f32_cpu:.1}, bf16 {bf16_cpu:.1}");
    }
    println!("threads: {}", tch::get_num_threads());

    assert!(f32_results
        .iter()
        .zip(&bf16_results)
        .all(|(a, b)| a.target_tokens == b.target_tokens));
    assert!(mean < 1.0, "bf16 perplexities drift by {mean} on average");
}
