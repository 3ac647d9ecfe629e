//! `premem score`: target perplexities of a dataset under one model, as CSV
//! on stdout (`index,id,target_tokens,nll_mean,perplexity`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;

use super::InvalidInput;
use crate::data::{self, Format, Templates};
use crate::model::score::{self, ScoreOptions, ScoreRequest};
use crate::model::{LoadedModel, ModelError, Precision};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PrecisionArg {
    F32,
    Bf16,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model: a Hugging Face checkpoint folder or a .gguf file.
    #[arg(long)]
    pub model: PathBuf,

    /// JSONL dataset to score.
    #[arg(long)]
    pub data: PathBuf,

    /// Dataset layout.
    #[arg(long)]
    pub format: Format,

    /// Score only the first N examples.
    #[arg(long)]
    pub limit: Option<usize>,

    /// Numeric type of the forward pass.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: PrecisionArg,

    /// Maximum padded tokens (rows x longest row) per forward batch.
    #[arg(long, default_value_t = ScoreOptions::default().token_budget)]
    pub token_budget: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut examples = data::load_jsonl(&args.data, args.format)?;
    if let Some(limit) = args.limit {
        examples.truncate(limit);
    }
    if args.token_budget == 0 {
        return Err(InvalidInput("--token-budget must be at least 1".into()).into());
    }

    let precision = match args.precision {
        PrecisionArg::F32 => Precision::F32,
        PrecisionArg::Bf16 => Precision::Bf16,
    };
    let model = LoadedModel::load(&args.model, precision)
        .map_err(|e| InvalidInput(format!("cannot load model: {e}")))?;

    let templates = Templates::default();
    let requests: Vec<ScoreRequest> = examples
        .iter()
        .map(|example| ScoreRequest {
            prompt: templates.prompt(example),
            target: templates.target(example),
        })
        .collect();

    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(requests.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let options = ScoreOptions {
        token_budget: args.token_budget,
    };
    let started = std::time::Instant::now();
    let results = score::score(&model, &requests, &options, &mut |done| {
        bar.set_position(done as u64)
    })
    .map_err(|e| match e {
        ModelError::InvalidInput { index, message } => {
            let id = examples.get(index).map(|ex| ex.id.as_str()).unwrap_or("?");
            anyhow::Error::new(InvalidInput(format!(
                "example {index} (id {id}): {message}"
            )))
        }
        other => anyhow::Error::new(other),
    })
    .context("scoring failed")?;
    bar.finish_and_clear();

    let tokens: usize = results.iter().map(|r| r.target_tokens).sum();
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        examples = results.len(),
        target_tokens = tokens,
        seconds = format!("{seconds:.2}"),
        "scored {:.1} target tokens/s",
        tokens as f64 / seconds.max(1e-9)
    );

    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    out.write_record(["index", "id", "target_tokens", "nll_mean", "perplexity"])?;
    for (index, (example, result)) in examples.iter().zip(&results).enumerate() {
        out.write_record([
            index.to_string(),
            example.id.clone(),
            result.target_tokens.to_string(),
            format!("{:.9}", result.nll_mean),
            format!("{:.9}", result.perplexity),
        ])?;
    }
    out.flush()?;
    std::io::stdout().flush()?;
    Ok(())
}
