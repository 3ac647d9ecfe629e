//! Batched sampling with a KV cache, temperature, top-p and stop strings.

use serde::{Deserialize, Serialize};

use super::{LoadedModel, ModelError};

/// One prompt to sample from.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    pub prompt: String,
    /// Stable example id; with the seed and sample index it derives each
    /// sequence's random stream.
    pub example_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleOptions {
    /// Samples per prompt.
    pub k: usize,
    /// 0 means greedy.
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: usize,
    /// Generation stops at the first of these strings; the string is removed.
    pub stop: Vec<String>,
    pub seed: u64,
    /// Sequences decoded together.
    pub batch_size: usize,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            k: 5,
            temperature: 0.8,
            top_p: 0.95,
            max_new_tokens: 256,
            stop: vec!["\nDone.".into()],
            seed: 0,
            batch_size: 32,
        }
    }
}

/// Why generation of a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Stop,
    Eos,
    Length,
}

/// One generated completion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub request_index: usize,
    pub sample_index: usize,
    /// Completion text after the prompt, without the stop string.
    pub text: String,
    /// Generated tokens, the stop string's tokens included.
    pub tokens: usize,
    pub stop_reason: StopReason,
}

/// Draws `options.k` samples per request. Results are ordered by request,
/// then sample index. `progress` receives the number of finished sequences.
pub fn sample(
    model: &LoadedModel,
    requests: &[SampleRequest],
    options: &SampleOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Sample>, ModelError> {
    let _ = (model, requests, options, progress);
    todo!("sampling")
}
