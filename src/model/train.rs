//! Full-parameter fine-tuning with the loss on target tokens only.
//!
//! Training runs in f32: parameters, gradients, AdamW moments and the loss.
//! An epoch visits the examples in an order shuffled by (seed + epoch),
//! grouped into right-padded batches of `batch_size`. Each optimizer step
//! accumulates gradients over `grad_accum` batches, and the loss of a step
//! is the mean cross-entropy over all target tokens of those batches.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rand::seq::SliceRandom;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Kind, Reduction, Tensor};

use super::optim::{require_f32, AdamW, AdamWConfig, LinearSchedule};
use super::resume::{load_resume, save_checkpoint, save_resume, TrainState};
use super::{LoadedModel, ModelError};

/// One training pair.
#[derive(Debug, Clone)]
pub struct TrainExample {
    pub prompt: String,
    pub target: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    pub learning_rate: f64,
    pub epochs: usize,
    /// Examples per optimizer step (before accumulation).
    pub batch_size: usize,
    pub grad_accum: usize,
    /// Fraction of all steps spent in linear warmup.
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Global gradient norm clip; 0 disables clipping.
    pub max_grad_norm: f64,
    /// Fixes the example order of every epoch.
    pub seed: u64,
    /// Also save every N optimizer steps.
    pub save_every_steps: Option<usize>,
}

impl TrainOptions {
    /// Checks the ranges that training relies on.
    pub fn validate(&self) -> Result<(), ModelError> {
        let checks = [
            (
                self.learning_rate > 0.0 && self.learning_rate.is_finite(),
                "learning_rate must be a finite number > 0",
            ),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.grad_accum >= 1, "grad_accum must be at least 1"),
            (
                (0.0..=1.0).contains(&self.warmup_ratio),
                "warmup_ratio must be in [0, 1]",
            ),
            (
                self.weight_decay >= 0.0 && self.weight_decay.is_finite(),
                "weight_decay must be a finite number >= 0",
            ),
            ((0.0..1.0).contains(&self.beta1), "beta1 must be in [0, 1)"),
            ((0.0..1.0).contains(&self.beta2), "beta2 must be in [0, 1)"),
            (
                self.eps > 0.0 && self.eps.is_finite(),
                "eps must be a finite number > 0",
            ),
            (
                self.max_grad_norm >= 0.0 && self.max_grad_norm.is_finite(),
                "max_grad_norm must be a finite number >= 0",
            ),
            (
                self.save_every_steps != Some(0),
                "save_every_steps must be at least 1 when set",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(ModelError::InvalidOptions(format!("{message} ({self:?})"))),
            None => Ok(()),
        }
    }
}

/// Progress of a running fine-tune.
#[derive(Debug, Clone, Copy)]
pub struct TrainProgress {
    pub step: u64,
    pub total_steps: u64,
    pub epoch: usize,
    pub loss: f64,
}

/// A checkpoint saved at an epoch end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointInfo {
    pub epoch: usize,
    pub step: u64,
    /// Folder loadable by [`LoadedModel::load`].
    pub dir: PathBuf,
    /// Mean training loss over the epoch.
    pub mean_loss: f64,
}

/// A tokenized pair: all token ids and the index of the first target token.
#[derive(Debug, Clone)]
pub struct TokenizedPair {
    pub ids: Vec<i64>,
    pub target_start: usize,
}

impl TokenizedPair {
    /// Target tokens that get a loss term. The first token of a sequence has
    /// no prediction, so it never counts.
    pub fn target_tokens(&self) -> usize {
        self.ids.len() - self.target_start.max(1)
    }
}

/// Tokenizes prompt + target as one text. The target starts at the first
/// token whose start offset is at or after the prompt's byte length, so a
/// token that straddles the boundary counts as prompt.
pub fn tokenize_pair(model: &LoadedModel, prompt: &str, target: &str) -> Result<TokenizedPair, String> {
    let text = format!("{prompt}{target}");
    let encoding = model
        .tokenizer
        .encode(text.as_str(), true)
        .map_err(|e| format!("tokenizer failed: {e}"))?;
    let ids: Vec<i64> = encoding.get_ids().iter().map(|&id| i64::from(id)).collect();
    let specials = encoding.get_special_tokens_mask();

    // Special tokens added by the tokenizer carry offset (0, 0): only a
    // special token after the first target token belongs to the target.
    let target_start = encoding
        .get_offsets()
        .iter()
        .zip(specials)
        .position(|(&(start, _), &special)| special == 0 && start >= prompt.len())
        .unwrap_or(ids.len());
    Ok(TokenizedPair { ids, target_start })
}

/// Fine-tunes `model` in place and saves `out_dir/epoch-{E}/` at every epoch
/// end, E counting from 1. If `out_dir` contains resume state from an
/// interrupted run, training continues from it. Returns when done, or with
/// `ModelError::Interrupted` at the next step boundary after `stop` becomes
/// true, after saving resume state.
pub fn finetune(
    model: &mut LoadedModel,
    examples: &[TrainExample],
    options: &TrainOptions,
    out_dir: &Path,
    progress: &mut dyn FnMut(TrainProgress),
    stop: &AtomicBool,
) -> Result<Vec<CheckpointInfo>, ModelError> {
    options.validate()?;
    require_f32(&model.vs)?;
    let pairs = tokenize_examples(model, examples)?;

    let batches_per_epoch = pairs.len().div_ceil(options.batch_size);
    let steps_per_epoch = batches_per_epoch.div_ceil(options.grad_accum) as u64;
    let total_steps = steps_per_epoch * options.epochs as u64;
    let schedule = LinearSchedule::new(options.learning_rate, options.warmup_ratio, total_steps);

    let adamw = AdamWConfig {
        beta1: options.beta1,
        beta2: options.beta2,
        eps: options.eps,
        weight_decay: options.weight_decay,
    };
    let mut optimizer = AdamW::new(&model.vs, adamw);
    let fresh = TrainState::new(options, examples_sha256(examples));
    std::fs::create_dir_all(out_dir).map_err(|source| ModelError::Io {
        path: out_dir.into(),
        source,
    })?;
    let mut state = match load_resume(out_dir, model, &mut optimizer, &fresh)? {
        Some(state) => {
            tracing::info!(step = state.step, epochs_done = state.epochs_done, "resuming fine-tune");
            state
        }
        None => fresh,
    };

    for epoch in state.epochs_done..options.epochs {
        let order = epoch_order(pairs.len(), options.seed, epoch);
        let batches: Vec<&[usize]> = order.chunks(options.batch_size).collect();
        let first_step = epoch as u64 * steps_per_epoch;

        for (index, group) in batches.chunks(options.grad_accum).enumerate() {
            let step = first_step + index as u64;
            if step < state.step {
                continue;
            }
            if stop.load(Ordering::SeqCst) {
                save_resume(out_dir, model, &optimizer, &state)?;
                return Err(ModelError::Interrupted(format!(
                    "fine-tuning stopped at step {step} of {total_steps}; resume state saved in {}",
                    out_dir.join("resume").display()
                )));
            }

            let loss = optimizer_step(
                model,
                &mut optimizer,
                &pairs,
                group,
                schedule.learning_rate(step),
                options.max_grad_norm,
            )?;
            state.step = step + 1;
            state.losses.push(loss);
            progress(TrainProgress {
                step: state.step,
                total_steps,
                epoch: epoch + 1,
                loss,
            });
            if options.save_every_steps.is_some_and(|n| state.step % n as u64 == 0) {
                save_resume(out_dir, model, &optimizer, &state)?;
            }
        }

        let epoch_losses = &state.losses[first_step as usize..];
        let mean_loss = epoch_losses.iter().sum::<f64>() / epoch_losses.len() as f64;
        let dir = save_checkpoint(out_dir, model, epoch + 1)?;
        state.checkpoints.push(CheckpointInfo {
            epoch: epoch + 1,
            step: state.step,
            dir,
            mean_loss,
        });
        state.epochs_done = epoch + 1;
        save_resume(out_dir, model, &optimizer, &state)?;
        tracing::info!(epoch = epoch + 1, mean_loss, "epoch finished");
    }
    Ok(state.checkpoints)
}

pub fn tokenize_examples(model: &LoadedModel, examples: &[TrainExample]) -> Result<Vec<TokenizedPair>, ModelError> {
    if examples.is_empty() {
        return Err(ModelError::InvalidOptions("no training examples".into()));
    }
    let max_positions = model.llama.config.max_position_embeddings;
    let mut pairs = Vec::with_capacity(examples.len());
    for (index, example) in examples.iter().enumerate() {
        let invalid = |message: String| ModelError::InvalidInput { index, message };
        let pair = tokenize_pair(model, &example.prompt, &example.target).map_err(invalid)?;
        if pair.target_start >= pair.ids.len() || pair.target_tokens() == 0 {
            return Err(invalid("the target has no tokens".into()));
        }
        if pair.ids.len() > max_positions {
            return Err(invalid(format!(
                "{} tokens exceed the model's {max_positions} positions",
                pair.ids.len()
            )));
        }
        pairs.push(pair);
    }
    Ok(pairs)
}

/// SHA-256 over the length-prefixed prompts and targets.
fn examples_sha256(examples: &[TrainExample]) -> String {
    let mut hasher = Sha256::new();
    for example in examples {
        for text in [&example.prompt, &example.target] {
            hasher.update((text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
        }
    }
    hex::encode(hasher.finalize())
}

/// Example indices in the order of `epoch` (0-based), shuffled by a ChaCha
/// stream seeded with `seed + epoch`.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(seed.wrapping_add(epoch as u64));
    order.shuffle(&mut rng);
    order
}

/// Runs one optimizer step over the batches of `group` (indices into
/// `pairs`) and returns the mean loss over their target tokens, in nats.
pub fn optimizer_step(
    model: &mut LoadedModel,
    optimizer: &mut AdamW,
    pairs: &[TokenizedPair],
    group: &[&[usize]],
    learning_rate: f64,
    max_grad_norm: f64,
) -> Result<f64, ModelError> {
    let step_tokens: usize = group
        .iter()
        .flat_map(|batch| batch.iter())
        .map(|&i| pairs[i].target_tokens())
        .sum();

    optimizer.zero_grad();
    let mut loss_sum = 0.0;
    for batch in group {
        let batch: Vec<&TokenizedPair> = batch.iter().map(|&i| &pairs[i]).collect();
        let summed = batch_loss_sum(model, &batch)?;
        loss_sum += summed.double_value(&[]);

        // Dividing by the step's token count makes the accumulated gradient
        // that of the mean over all target tokens of the step.
        (summed / step_tokens as f64).f_backward()?;
    }

    if max_grad_norm > 0.0 {
        optimizer.clip_grad_norm(max_grad_norm);
    }
    optimizer.step(learning_rate);
    Ok(loss_sum / step_tokens as f64)
}

/// Summed cross-entropy of the target tokens of right-padded `batch`.
/// Logits are computed only at the positions that predict a target token,
/// which saves the vocabulary projection of prompt positions.
fn batch_loss_sum(model: &LoadedModel, batch: &[&TokenizedPair]) -> Result<Tensor, ModelError> {
    let device = model.vs.device();
    let width = batch.iter().map(|p| p.ids.len()).max().unwrap_or(0);
    let rows = batch.len();

    let mut ids = vec![0i64; rows * width];
    let mut mask = vec![false; rows * width];
    let mut predicting = Vec::new();
    let mut labels = Vec::new();
    for (row, pair) in batch.iter().enumerate() {
        let base = row * width;
        ids[base..base + pair.ids.len()].copy_from_slice(&pair.ids);
        mask[base..base + pair.ids.len()].fill(true);
        for j in pair.target_start.max(1)..pair.ids.len() {
            predicting.push((base + j - 1) as i64);
            labels.push(pair.ids[j]);
        }
    }

    let shape = [rows as i64, width as i64];
    let input_ids = Tensor::from_slice(&ids).view(shape).to_device(device);
    let key_mask = Tensor::from_slice(&mask).view(shape).to_device(device);
    let positions = Tensor::arange(width as i64, (Kind::Int64, device))
        .view([1, width as i64])
        .expand(shape, false);

    let hidden = model.llama.hidden_states(&input_ids, &positions, &key_mask, None);
    let hidden_size = hidden.size()[2];
    let selected = hidden
        .view([-1, hidden_size])
        .index_select(0, &Tensor::from_slice(&predicting).to_device(device));
    let logits = model.llama.logits(&selected).to_kind(Kind::Float);
    let labels = Tensor::from_slice(&labels).to_device(device);
    Ok(logits.f_cross_entropy_loss::<Tensor>(&labels, None, Reduction::Sum, -100, 0.0)?)
}
