//! `premem sample`: draws completions for a dataset's prompts and writes one
//! JSON line per sample to stdout, with a progress bar on stderr.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::cli::InvalidInput;
use crate::data::{load_jsonl, Format, Templates};
use crate::model::sample::{sample, SampleOptions, SampleRequest};
use crate::model::{LoadedModel, Precision};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model: a Hugging Face checkpoint folder or a .gguf file.
    #[arg(long)]
    pub model: PathBuf,

    /// JSONL dataset to take prompts from.
    #[arg(long)]
    pub data: PathBuf,

    /// Dataset layout: gsm8k or math.
    #[arg(long, value_parser = parse_format)]
    pub format: Format,

    /// Use only the first N examples.
    #[arg(long)]
    pub limit: Option<usize>,

    /// Samples per prompt.
    #[arg(long, default_value_t = 5)]
    pub k: usize,

    /// Softmax temperature; 0 decodes greedily.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,

    /// Nucleus mass in (0, 1]; 1 disables top-p filtering.
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f64,

    /// Maximum generated tokens per sample.
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,

    /// Seed of the per-sample random streams.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Sequences decoded together (prompts per batch = batch size / k, at least 1).
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,

    /// Numeric type of the forward pass: f32 or bf16.
    #[arg(long, value_parser = parse_precision, default_value = "f32")]
    pub precision: Precision,
}

pub fn parse_format(text: &str) -> Result<Format, String> {
    match text {
        "gsm8k" => Ok(Format::Gsm8k),
        "math" => Ok(Format::Math),
        other => Err(format!("unknown format `{other}`; expected gsm8k or math")),
    }
}

pub fn parse_precision(text: &str) -> Result<Precision, String> {
    match text {
        "f32" => Ok(Precision::F32),
        "bf16" => Ok(Precision::Bf16),
        other => Err(format!("unknown precision `{other}`; expected f32 or bf16")),
    }
}

/// One line of the output.
#[derive(serde::Serialize)]
struct SampleLine<'a> {
    index: usize,
    id: &'a str,
    sample: usize,
    text: &'a str,
    tokens: usize,
    stop_reason: crate::model::sample::StopReason,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let options = SampleOptions {
        k: args.k,
        temperature: args.temperature,
        top_p: args.top_p,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
        batch_size: args.batch_size,
        ..SampleOptions::default()
    };
    options.validate().map_err(|e| InvalidInput(e.to_string()))?;

    let mut examples = load_jsonl(&args.data, args.format)?;
    if let Some(limit) = args.limit {
        examples.truncate(limit);
    }
    let templates = Templates::default();
    let requests: Vec<SampleRequest> = examples
        .iter()
        .map(|example| SampleRequest {
            prompt: templates.prompt(example),
            example_id: example.id.clone(),
        })
        .collect();

    let model = LoadedModel::load(&args.model, args.precision)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    tracing::info!(prompts = requests.len(), k = options.k, "sampling");

    let bar = indicatif::ProgressBar::new((requests.len() * options.k) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} samples, {elapsed} elapsed, eta {eta}")
            .expect("the progress template is valid"),
    );
    let samples =
        sample(&model, &requests, &options, &mut |done| bar.set_position(done as u64)).context("sampling failed")?;
    bar.finish_and_clear();

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for sample in &samples {
        let line = SampleLine {
            index: sample.request_index,
            id: &examples[sample.request_index].id,
            sample: sample.sample_index,
            text: &sample.text,
            tokens: sample.tokens,
            stop_reason: sample.stop_reason,
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
