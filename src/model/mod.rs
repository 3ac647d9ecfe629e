//! The language-model runtime every stage runs on: loading Llama-family
//! checkpoints (Hugging Face folders and GGUF files), scoring targets,
//! sampling completions and fine-tuning, all on tch (libtorch).

pub mod config;
pub mod llama;

pub use config::LlamaConfig;
pub use llama::{KvCache, Llama};
