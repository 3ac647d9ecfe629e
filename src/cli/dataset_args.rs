//! Options shared by the commands that run one model over one dataset
//! (`premem score`, `premem sample`), and the parsers behind them.

use std::path::PathBuf;

use anyhow::Context;

use crate::data::{load_jsonl, Example, Format};
use crate::model::{LoadedModel, Precision};

#[derive(Debug, clap::Args)]
pub struct DatasetArgs {
    /// Model: a Hugging Face checkpoint folder or a .gguf file.
    #[arg(long)]
    pub model: PathBuf,

    /// JSONL dataset.
    #[arg(long)]
    pub data: PathBuf,

    /// Dataset layout: gsm8k or math.
    #[arg(long, value_parser = parse_format)]
    pub format: Format,

    /// Use only the first N examples.
    #[arg(long)]
    pub limit: Option<usize>,

    /// Numeric type of the forward pass: f32 or bf16.
    #[arg(long, value_parser = parse_precision, default_value = "f32")]
    pub precision: Precision,
}

impl DatasetArgs {
    /// Reads the dataset and keeps the first `--limit` examples.
    pub fn load_examples(&self) -> anyhow::Result<Vec<Example>> {
        let mut examples = load_jsonl(&self.data, self.format)?;
        if let Some(limit) = self.limit {
            examples.truncate(limit);
        }
        Ok(examples)
    }

    pub fn load_model(&self) -> anyhow::Result<LoadedModel> {
        LoadedModel::load(&self.model, self.precision)
            .with_context(|| format!("loading model {}", self.model.display()))
    }
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
