//! `premem sample`: draws completions for a dataset's prompts and writes one
//! JSON line per sample to stdout, with a progress bar on stderr.

use std::io::Write;

use anyhow::Context;

use crate::cli::InvalidInput;
use super::dataset_args::DatasetArgs;
use crate::data::Templates;
use crate::model::sample::{sample, SampleOptions, SampleRequest};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dataset: DatasetArgs,

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

    let examples = args.dataset.load_examples()?;
    let templates = Templates::default();
    let requests: Vec<SampleRequest> = examples
        .iter()
        .map(|example| SampleRequest {
            prompt: templates.prompt(example),
            example_id: example.id.clone(),
        })
        .collect();

    let model = args.dataset.load_model()?;
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
