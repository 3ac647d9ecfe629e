//! The language-model runtime every stage runs on: loading Llama-family
//! checkpoints (Hugging Face folders and GGUF files), scoring targets,
//! sampling completions and fine-tuning, all on tch (libtorch).

pub mod config;
pub mod error;
pub mod llama;
pub mod optim;
pub mod resume;
pub mod sample;
pub mod sampler;
pub mod score;
pub mod train;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use config::LlamaConfig;
pub use error::ModelError;
pub use llama::{KvCache, Llama};

/// Numeric type of the forward pass. Parameters stay f32 for training;
/// inference in bf16 converts a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
}

/// A model ready to run: parameters, the decoder built over them, and its
/// tokenizer.
pub struct LoadedModel {
    pub vs: tch::nn::VarStore,
    pub llama: Llama,
    pub tokenizer: tokenizers::Tokenizer,
    /// File or folder it was loaded from.
    pub source: PathBuf,
    pub precision: Precision,
}

impl LoadedModel {
    /// Loads a Hugging Face checkpoint folder or a `.gguf` file on the CPU.
    /// Never reaches the network.
    pub fn load(path: &Path, precision: Precision) -> Result<Self, ModelError> {
        let _ = (path, precision);
        todo!("model loading")
    }

    /// Writes a checkpoint folder that [`LoadedModel::load`] reads back:
    /// `config.json`, `model.safetensors` (f32) and `tokenizer.json`.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), ModelError> {
        let _ = dir;
        todo!("checkpoint saving")
    }
}
