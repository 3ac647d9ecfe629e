//! Target scoring: per (prompt, target) pair, the number of target tokens,
//! their mean negative log-likelihood given the prompt, and the perplexity.

use tch::{Kind, Tensor};

use super::{LoadedModel, ModelError};

/// Target positions whose log-softmax is computed at once; bounds the f64
/// buffer of one chunk to `LOGIT_CHUNK x vocab` values.
const LOGIT_CHUNK: i64 = 256;

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

/// One request after tokenization.
#[derive(Debug)]
struct Tokenized {
    ids: Vec<i64>,
    /// Index of the first target token.
    target_start: usize,
}

/// Scores every request; results are in request order. `progress` receives
/// the number of requests finished so far.
///
/// Prompt and target are tokenized as one text. The target starts at the
/// first token whose start offset is at or after the prompt's byte length,
/// so a token that spans the boundary counts as prompt. With an empty
/// prompt the target's first token is the context and the NLL covers the
/// rest (see `tokenize_alone`), so `target_tokens` is one less than the
/// target's token count. Requests are sorted
/// by length and packed into right-padded batches of at most
/// `options.token_budget` tokens (rows x longest row). A single request
/// longer than the budget runs alone.
pub fn score(
    model: &LoadedModel,
    requests: &[ScoreRequest],
    options: &ScoreOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<ScoreResult>, ModelError> {
    let max_positions = model.llama.config.max_position_embeddings;
    let tokenized = requests
        .iter()
        .enumerate()
        .map(|(index, request)| tokenize(model, index, request, max_positions))
        .collect::<Result<Vec<_>, _>>()?;

    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tokenized[i].ids.len()));

    let mut results: Vec<Option<ScoreResult>> = vec![None; requests.len()];
    let mut done = 0;
    for batch in pack_batches(&order, &tokenized, options.token_budget) {
        let rows: Vec<&Tokenized> = batch.iter().map(|&i| &tokenized[i]).collect();
        let scored = tch::no_grad(|| score_batch(model, &rows))?;
        for (&i, result) in batch.iter().zip(scored) {
            results[i] = Some(result);
        }
        done += batch.len();
        progress(done);
    }

    Ok(results
        .into_iter()
        .map(|r| r.expect("every request is in exactly one batch"))
        .collect())
}

fn tokenize(
    model: &LoadedModel,
    index: usize,
    request: &ScoreRequest,
    max_positions: usize,
) -> Result<Tokenized, ModelError> {
    let invalid = |message: String| ModelError::InvalidInput { index, message };
    let text = format!("{}{}", request.prompt, request.target);
    // Special tokens (a BOS from the tokenizer's post-processor) are added as
    // in fine-tuning and sampling, so the scored context is the trained one.
    let encoding = model
        .tokenizer
        .encode(text.as_str(), true)
        .map_err(|e| ModelError::Tokenizer(format!("input {index}: {e}")))?;

    let boundary = request.prompt.len();
    let offsets = encoding.get_offsets();
    let ids: Vec<i64> = encoding.get_ids().iter().map(|&id| id as i64).collect();
    if request.prompt.is_empty() {
        return tokenize_alone(index, request, ids, max_positions);
    }
    let target_start = offsets.iter().position(|&(start, _)| start >= boundary).unwrap_or(offsets.len());

    if target_start == ids.len() {
        return Err(invalid(format!(
            "the target {:?} has no tokens of its own after joint tokenization with the prompt",
            request.target
        )));
    }
    if ids.len() > max_positions {
        return Err(invalid(format!(
            "prompt and target are {} tokens, more than the model's max_position_embeddings {max_positions}",
            ids.len()
        )));
    }
    Ok(Tokenized { ids, target_start })
}

/// A target scored without a prompt, as the denominator of IFD (NLL of
/// the solution alone). The first token (a BOS token where the tokenizer
/// adds one, else the target's first token) has no context, so it serves
/// as context and the mean NLL covers the tokens from the second on. A
/// causal language-model loss on the text alone does the same.
fn tokenize_alone(
    index: usize,
    request: &ScoreRequest,
    ids: Vec<i64>,
    max_positions: usize,
) -> Result<Tokenized, ModelError> {
    let invalid = |message: String| ModelError::InvalidInput { index, message };
    if ids.len() < 2 {
        return Err(invalid(format!(
            "the prompt is empty and the target {:?} has {} token(s); scoring a target alone needs at least two, because its first token has no context",
            request.target,
            ids.len()
        )));
    }
    if ids.len() > max_positions {
        return Err(invalid(format!(
            "the target is {} tokens, more than the model's max_position_embeddings {max_positions}",
            ids.len()
        )));
    }
    Ok(Tokenized { ids, target_start: 1 })
}

/// Splits `order` (sorted by decreasing length) into batches whose padded
/// size, rows x longest row, stays within `token_budget`.
fn pack_batches(order: &[usize], tokenized: &[Tokenized], token_budget: usize) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut longest = 0;
    for &i in order {
        let len = tokenized[i].ids.len();
        let padded = (current.len() + 1) * longest.max(len);
        if !current.is_empty() && padded > token_budget {
            batches.push(std::mem::take(&mut current));
            longest = 0;
        }
        longest = longest.max(len);
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Runs one right-padded batch and returns each row's target NLL.
fn score_batch(model: &LoadedModel, rows: &[&Tokenized]) -> Result<Vec<ScoreResult>, ModelError> {
    let batch = rows.len() as i64;
    let width = rows.iter().map(|r| r.ids.len()).max().unwrap_or(0) as i64;
    let device = model.vs.device();

    let mut ids = vec![0i64; (batch * width) as usize];
    let mut mask = vec![false; (batch * width) as usize];
    // Flat positions whose hidden state predicts a target token, and those tokens.
    let mut predict_at = Vec::new();
    let mut targets = Vec::new();
    for (row, tokenized) in rows.iter().enumerate() {
        let base = row * width as usize;
        ids[base..base + tokenized.ids.len()].copy_from_slice(&tokenized.ids);
        mask[base..base + tokenized.ids.len()].fill(true);
        for t in tokenized.target_start..tokenized.ids.len() {
            predict_at.push((base + t - 1) as i64);
            targets.push(tokenized.ids[t]);
        }
    }

    let input_ids = Tensor::from_slice(&ids)
        .view([batch, width])
        .to_device(device);
    let key_mask = Tensor::from_slice(&mask)
        .view([batch, width])
        .to_device(device);
    let positions = Tensor::arange(width, (Kind::Int64, device))
        .unsqueeze(0)
        .expand([batch, width], true);
    let hidden = model
        .llama
        .hidden_states(&input_ids, &positions, &key_mask, None);
    let hidden = hidden.view([batch * width, -1]);

    // Project and normalize only the positions that predict target tokens,
    // a chunk at a time, in f64.
    let predict_at = Tensor::from_slice(&predict_at).to_device(device);
    let targets = Tensor::from_slice(&targets).to_device(device);
    let total = targets.size()[0];
    let mut nll: Vec<f64> = Vec::with_capacity(total as usize);
    let mut start = 0;
    while start < total {
        let len = LOGIT_CHUNK.min(total - start);
        let selected = hidden.index_select(0, &predict_at.narrow(0, start, len));
        let logits = model
            .llama
            .logits(&selected)
            .to_kind(Kind::Float)
            .to_kind(Kind::Double);
        let log_probs = logits.log_softmax(-1, Kind::Double);
        let picked = log_probs.gather(1, &targets.narrow(0, start, len).unsqueeze(1), false);
        nll.extend(Vec::<f64>::try_from(picked.neg().view([-1]))?);
        start += len;
    }

    let mut results = Vec::with_capacity(rows.len());
    let mut offset = 0;
    for tokenized in rows {
        let count = tokenized.ids.len() - tokenized.target_start;
        let nll_mean = nll[offset..offset + count].iter().sum::<f64>() / count as f64;
        offset += count;
        results.push(ScoreResult {
            target_tokens: count,
            nll_mean,
            perplexity: nll_mean.exp(),
        });
    }
    Ok(results)
}
