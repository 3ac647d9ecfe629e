//! `premem score`: target perplexities of a dataset under one model, as CSV
//! on stdout (`index,id,target_tokens,nll_mean,perplexity`).

use std::io::{IsTerminal, Write};

use anyhow::Context;

use super::InvalidInput;
use super::dataset_args::DatasetArgs;
use crate::data::Templates;
use crate::model::score::{self, ScoreOptions, ScoreRequest};
use crate::model::{LoadedModel, ModelError};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dataset: DatasetArgs,

    /// Maximum padded tokens (rows x longest row) per forward batch.
    #[arg(long, default_value_t = ScoreOptions::default().token_budget)]
    pub token_budget: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let examples = args.dataset.load_examples()?;
    if args.token_budget == 0 {
        return Err(InvalidInput("--token-budget must be at least 1".into()).into());
    }

    let model = LoadedModel::load(&args.dataset.model, args.dataset.precision)
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
