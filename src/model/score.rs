//! Target scoring: per (prompt, target) pair, the number of target tokens,
//! their mean negative log-likelihood given the prompt, and the perplexity.

use super::{LoadedModel, ModelError};

/// One pair to score.
#[derive(Debug, Clone)]
pub struct ScoreRequest {
    pub prompt: String,
    pub target: String,
}

/// Scores of one pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreResult {
    pub target_tokens: usize,
    /// Mean NLL over the target tokens, in nats.
    pub nll_mean: f64,
    /// exp(nll_mean).
    pub perplexity: f64,
}

#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Maximum padded tokens (rows x longest row) in one forward batch.
    pub token_budget: usize,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions { token_budget: 8192 }
    }
}

/// Scores every request; results are in request order. `progress` receives
/// the number of requests finished so far.
pub fn score(
    model: &LoadedModel,
    requests: &[ScoreRequest],
    options: &ScoreOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<ScoreResult>, ModelError> {
    let _ = (model, requests, options, progress);
    todo!("scoring")
}
