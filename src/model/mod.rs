//! The language-model runtime every stage runs on: loading Llama-family
//! checkpoints (Hugging Face folders and GGUF files), scoring targets,
//! sampling completions and fine-tuning, all on tch (libtorch).

pub mod config;
pub mod error;
pub mod gguf;
pub mod gguf_llama;
pub mod hf;
pub mod llama;
pub mod optim;
pub mod quant;
pub mod resume;
pub mod sample;
pub mod sampler;
pub mod score;
pub mod tokenizer;
pub mod train;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::{nn::VarStore, Device, Kind, Tensor};

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
    /// Never reaches the network. With [`Precision::Bf16`] the parameters are
    /// converted to bf16 after loading.
    pub fn load(path: &Path, precision: Precision) -> Result<Self, ModelError> {
        if !path.exists() {
            return Err(ModelError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            });
        }

        let (config, weights, tokenizer, weights_path) = if path.is_dir() {
            let config = hf::read_config(path)?;
            let weights = hf::read_weights(path)?;
            let tokenizer = tokenizer::from_json_file(&path.join("tokenizer.json"))?;
            (config, weights, tokenizer, hf::weights_file(path))
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
            let file = gguf::GgufFile::open(path)?;
            let config = gguf_llama::read_config(&file)?;
            let weights = gguf_llama::read_weights(&file, &config)?;
            let tokenizer = tokenizer::from_gguf(&file)?;
            (config, weights, tokenizer, path.to_path_buf())
        } else {
            return Err(ModelError::Unsupported {
                path: path.to_path_buf(),
                what: "model path".into(),
                value: path.display().to_string(),
                supported: "a Hugging Face checkpoint folder or a .gguf file".into(),
            });
        };

        let mut vs = VarStore::new(Device::Cpu);
        let llama = Llama::new(&vs.root(), &config);
        copy_weights(&vs, &weights, &weights_path)?;
        if precision == Precision::Bf16 {
            vs.bfloat16();
        }

        Ok(LoadedModel {
            vs,
            llama,
            tokenizer,
            source: path.to_path_buf(),
            precision,
        })
    }

    /// Writes a checkpoint folder that [`LoadedModel::load`] and transformers
    /// read back: `config.json`, `model.safetensors` (f32, Hugging Face
    /// names) and `tokenizer.json`. Creates `dir` when missing.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), ModelError> {
        let io_error = |path: PathBuf| move |source| ModelError::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io_error(dir.to_path_buf()))?;

        let config_path = dir.join("config.json");
        let config = hf::config_json(&self.llama.config);
        let text = serde_json::to_string_pretty(&config).expect("a JSON value always serializes");
        std::fs::write(&config_path, text + "\n").map_err(io_error(config_path))?;

        let mut tensors: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(name, tensor)| (name, tensor.to_kind(Kind::Float).contiguous()))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Tensor::write_safetensors(&tensors, dir.join("model.safetensors"))?;

        let tokenizer_path = dir.join("tokenizer.json");
        self.tokenizer
            .save(&tokenizer_path, false)
            .map_err(|e| ModelError::Tokenizer(format!("cannot write {}: {e}", tokenizer_path.display())))?;
        Ok(())
    }
}

/// Copies checkpoint tensors into the VarStore variables of the same name,
/// checking every shape. Tensors the decoder does not use are ignored.
fn copy_weights(vs: &VarStore, weights: &HashMap<String, Tensor>, source: &Path) -> Result<(), ModelError> {
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));

    tch::no_grad(|| {
        for (name, mut variable) in variables {
            let Some(tensor) = weights.get(&name) else {
                return Err(ModelError::MissingTensor {
                    path: source.to_path_buf(),
                    tensor: name,
                });
            };
            if tensor.size() != variable.size() {
                return Err(ModelError::ShapeMismatch {
                    path: source.to_path_buf(),
                    tensor: name,
                    expected: variable.size(),
                    found: tensor.size(),
                });
            }
            variable.copy_(tensor);
        }
        Ok(())
    })
}
