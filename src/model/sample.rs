//! Batched sampling with a KV cache, temperature, top-p and stop strings.
//!
//! Prompts of a batch are left-padded so that every row's next token sits in
//! the last column. Each prompt is prefilled once and its cache is repeated
//! for its k samples. Decoding then runs one token per step for the live
//! rows only, because finished rows are dropped from the batch and its cache.
//!
//! Reproducibility: each sequence draws from its own stream, derived from
//! (seed, example id, sample index), and token selection runs on the CPU in
//! f64. So reordering the requests or changing `batch_size` does not change
//! which random numbers a sequence uses. The logits themselves can still
//! differ in the last bits between batch shapes, because libtorch picks
//! matmul kernels and reduction orders by shape. A draw or an argmax that
//! falls within such a difference of a boundary could then flip. The tests
//! check, on a tiny random model in f32 on the CPU, that greedy outputs for
//! batch sizes 1 and 8 are identical and that sampled outputs are identical
//! under reordering of the requests. That is evidence, not a proof for every
//! model.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::sampler::{argmax, sample_top_p, sequence_rng};
use super::{KvCache, LoadedModel, ModelError};

/// One prompt to sample from.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    pub prompt: String,
    /// Stable example id. With the seed and sample index it derives each
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

impl SampleOptions {
    /// Checks the ranges that sampling relies on.
    pub fn validate(&self) -> Result<(), ModelError> {
        let invalid = |message: String| Err(ModelError::InvalidOptions(message));
        if self.k == 0 {
            return invalid("k must be at least 1".into());
        }
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return invalid(format!(
                "temperature must be a finite number >= 0, got {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return invalid(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if self.batch_size == 0 {
            return invalid("batch_size must be at least 1".into());
        }
        if self.stop.iter().any(|s| s.is_empty()) {
            return invalid("stop strings must not be empty".into());
        }
        Ok(())
    }
}

/// Reason generation of a sequence ended.
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
    /// Ids of the generated tokens, an EOS token included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_ids: Vec<u32>,
}

/// Draws `options.k` samples per request. Results are ordered by request,
/// then sample index. `progress` receives the number of finished sequences.
pub fn sample(
    model: &LoadedModel,
    requests: &[SampleRequest],
    options: &SampleOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Sample>, ModelError> {
    options.validate()?;

    let mut prompts = Vec::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        let encoding = model
            .tokenizer
            .encode(request.prompt.as_str(), true)
            .map_err(|e| ModelError::Tokenizer(format!("request {index}: {e}")))?;
        let ids: Vec<i64> = encoding.get_ids().iter().map(|&id| i64::from(id)).collect();
        prompts.push(PromptTokens {
            ids,
            example_id: request.example_id.clone(),
        });
    }

    generate(model, &prompts, options, progress)
}

/// A tokenized prompt and the id that seeds its samples.
#[derive(Debug, Clone)]
pub struct PromptTokens {
    pub ids: Vec<i64>,
    pub example_id: String,
}

/// Generates from already tokenized prompts, with the contract of
/// [`sample`], which tokenizes and calls this.
pub fn generate(
    model: &LoadedModel,
    prompts: &[PromptTokens],
    options: &SampleOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Sample>, ModelError> {
    options.validate()?;
    let max_positions = model.llama.config.max_position_embeddings;
    for (index, prompt) in prompts.iter().enumerate() {
        if prompt.ids.is_empty() {
            return Err(ModelError::InvalidInput {
                index,
                message: "the prompt has no tokens".into(),
            });
        }
        if prompt.ids.len() + options.max_new_tokens > max_positions {
            return Err(ModelError::InvalidInput {
                index,
                message: format!(
                    "prompt of {} tokens plus max_new_tokens {} exceeds the model's {} positions",
                    prompt.ids.len(),
                    options.max_new_tokens,
                    max_positions
                ),
            });
        }
    }

    // Whole prompts per batch, so that the k samples of a prompt share its prefill.
    let prompts_per_batch = (options.batch_size / options.k).max(1);
    let mut samples = Vec::with_capacity(prompts.len() * options.k);
    let mut finished = 0;
    for (chunk_index, chunk) in prompts.chunks(prompts_per_batch).enumerate() {
        let first_request = chunk_index * prompts_per_batch;
        let mut batch = generate_batch(model, chunk, first_request, options, &mut |n| progress(finished + n))?;
        finished += batch.len();
        samples.append(&mut batch);
    }
    Ok(samples)
}

/// A sequence being decoded.
struct Row {
    request_index: usize,
    sample_index: usize,
    rng: rand_chacha::ChaCha20Rng,
    generated: Vec<u32>,
    /// Position id of the next token.
    next_position: i64,
}

/// Runs prefill and decoding for one batch of prompts and returns its
/// samples ordered by request, then sample index.
fn generate_batch(
    model: &LoadedModel,
    prompts: &[PromptTokens],
    first_request: usize,
    options: &SampleOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Sample>, ModelError> {
    let _guard = tch::no_grad_guard();
    let device = model.vs.device();
    let k = options.k;

    let mut rows: Vec<Row> = Vec::with_capacity(prompts.len() * k);
    for (offset, prompt) in prompts.iter().enumerate() {
        for sample_index in 0..k {
            rows.push(Row {
                request_index: first_request + offset,
                sample_index,
                rng: sequence_rng(options.seed, &prompt.example_id, sample_index),
                generated: Vec::new(),
                next_position: prompt.ids.len() as i64,
            });
        }
    }
    let mut done: Vec<Sample> = Vec::with_capacity(rows.len());
    if options.max_new_tokens == 0 {
        for row in rows {
            done.push(finish(row, String::new(), StopReason::Length));
        }
        progress(done.len());
        return Ok(done);
    }

    // Prefill the left-padded prompts once, then give each prompt k rows.
    let (input_ids, positions, mut key_mask) = left_padded(prompts, device);
    let mut cache = KvCache::new(model.llama.config.num_hidden_layers);
    let logits = model.llama.forward(&input_ids, &positions, &key_mask, Some(&mut cache));
    let mut next_logits = last_logits(&logits)?.repeat_interleave_self_int(k as i64, Some(0), None);
    cache.repeat_interleave(k as i64);
    key_mask = key_mask.repeat_interleave_self_int(k as i64, Some(0), None);

    loop {
        // Choose each live row's next token on the CPU.
        let logits_cpu = next_logits.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
        let vocab = logits_cpu.size()[1] as usize;
        let flat: Vec<f32> = Vec::<f32>::try_from(logits_cpu.view([-1]))?;
        let mut keep = Vec::with_capacity(rows.len());
        let mut next_tokens = Vec::with_capacity(rows.len());
        let mut still_live = Vec::with_capacity(rows.len());
        for (index, mut row) in rows.into_iter().enumerate() {
            let row_logits = &flat[index * vocab..(index + 1) * vocab];
            let token = select_token(row_logits, options, &mut row.rng).ok_or_else(|| ModelError::InvalidInput {
                index: row.request_index,
                message: "the model produced NaN or infinite logits".into(),
            })?;
            row.generated.push(token as u32);
            row.next_position += 1;

            match stop_check(model, &row, options)? {
                Some((text, reason)) => done.push(finish(row, text, reason)),
                None => {
                    keep.push(index as i64);
                    next_tokens.push(token as i64);
                    still_live.push(row);
                }
            }
        }
        rows = still_live;
        progress(done.len());
        if rows.is_empty() {
            break;
        }

        // Drop finished rows, then decode one token for every live row.
        if keep.len() < key_mask.size()[0] as usize {
            let keep = Tensor::from_slice(&keep).to_device(device);
            cache.select_rows(&keep);
            key_mask = key_mask.index_select(0, &keep);
        }
        let live = rows.len() as i64;
        let input_ids = Tensor::from_slice(&next_tokens).to_device(device).view([live, 1]);
        let positions: Vec<i64> = rows.iter().map(|row| row.next_position - 1).collect();
        let positions = Tensor::from_slice(&positions).to_device(device).view([live, 1]);
        key_mask = Tensor::cat(&[key_mask, Tensor::ones([live, 1], (Kind::Bool, device))], 1);
        let logits = model.llama.forward(&input_ids, &positions, &key_mask, Some(&mut cache));
        next_logits = last_logits(&logits)?;
    }

    done.sort_by_key(|s| (s.request_index, s.sample_index));
    Ok(done)
}

/// Greedy when the temperature is 0, else top-p sampling.
fn select_token(logits: &[f32], options: &SampleOptions, rng: &mut rand_chacha::ChaCha20Rng) -> Option<usize> {
    if options.temperature == 0.0 {
        argmax(logits)
    } else {
        sample_top_p(logits, options.temperature, options.top_p, rng)
    }
}

/// Builds input ids, position ids and key mask of left-padded prompts.
/// Positions count from each row's first real token. Padding gets position
/// 0, token 0 and a false key mask.
fn left_padded(prompts: &[PromptTokens], device: Device) -> (Tensor, Tensor, Tensor) {
    let width = prompts.iter().map(|p| p.ids.len()).max().unwrap_or(0);
    let rows = prompts.len() as i64;
    let mut ids = Vec::with_capacity(prompts.len() * width);
    let mut positions = Vec::with_capacity(prompts.len() * width);
    let mut mask = Vec::with_capacity(prompts.len() * width);
    for prompt in prompts {
        let pad = width - prompt.ids.len();
        ids.extend(std::iter::repeat(0).take(pad));
        positions.extend(std::iter::repeat(0).take(pad));
        mask.extend(std::iter::repeat(false).take(pad));
        ids.extend_from_slice(&prompt.ids);
        positions.extend(0..prompt.ids.len() as i64);
        mask.extend(std::iter::repeat(true).take(prompt.ids.len()));
    }
    let shape = [rows, width as i64];
    (
        Tensor::from_slice(&ids).view(shape).to_device(device),
        Tensor::from_slice(&positions).view(shape).to_device(device),
        Tensor::from_slice(&mask).view(shape).to_device(device),
    )
}

/// Logits of the last column, `[batch, vocab]`.
fn last_logits(logits: &Tensor) -> Result<Tensor, ModelError> {
    let seq = logits.size()[1];
    Ok(logits.f_select(1, seq - 1)?)
}

/// Returns the completion text and the stop reason when `row` has finished.
/// Stop strings are searched in the decoded completion, so a stop string
/// split across tokens is found too.
fn stop_check(
    model: &LoadedModel,
    row: &Row,
    options: &SampleOptions,
) -> Result<Option<(String, StopReason)>, ModelError> {
    let last = *row.generated.last().expect("a token was just pushed");
    let is_eos = model.llama.config.eos_token_ids.contains(&i64::from(last));
    let content = if is_eos {
        &row.generated[..row.generated.len() - 1]
    } else {
        &row.generated[..]
    };
    let text = decode(model, content)?;

    let first_stop = options.stop.iter().filter_map(|stop| text.find(stop.as_str())).min();
    if let Some(cut) = first_stop {
        return Ok(Some((text[..cut].to_string(), StopReason::Stop)));
    }
    if is_eos {
        return Ok(Some((text, StopReason::Eos)));
    }
    if row.generated.len() >= options.max_new_tokens {
        return Ok(Some((text, StopReason::Length)));
    }
    Ok(None)
}

fn decode(model: &LoadedModel, ids: &[u32]) -> Result<String, ModelError> {
    model
        .tokenizer
        .decode(ids, true)
        .map_err(|e| ModelError::Tokenizer(format!("decoding generated tokens: {e}")))
}

fn finish(row: Row, text: String, stop_reason: StopReason) -> Sample {
    Sample {
        request_index: row.request_index,
        sample_index: row.sample_index,
        text,
        tokens: row.generated.len(),
        stop_reason,
        token_ids: row.generated,
    }
}
