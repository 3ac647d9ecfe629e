//! Hyperparameters of a Llama-family model, as premem uses them internally.
//!
//! Both loaders produce this struct: the Hugging Face loader from
//! `config.json` and the GGUF loader from the `llama.*` metadata keys.

use serde::{Deserialize, Serialize};

/// Llama 3 style RoPE frequency scaling (`rope_type = "llama3"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Llama3RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

/// Resolved hyperparameters of a Llama-family decoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// `model_type` of config.json: llama, mistral or qwen2.
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3RopeScaling>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Biases on the q, k and v projections (Qwen2).
    pub attention_bias: bool,
    pub bos_token_id: Option<i64>,
    /// Tokens that end generation.
    pub eos_token_ids: Vec<i64>,
}
