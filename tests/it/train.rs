//! Fine-tuning on a tiny random model: the loss falls, gradient accumulation
//! matches a larger batch, and an interrupted run resumes exactly.

use std::sync::atomic::{AtomicBool, Ordering};

use premem::model::train::{finetune, tokenize_pair, CheckpointInfo, TrainExample, TrainOptions};
use premem::model::{LoadedModel, ModelError, Precision};
use tch::Tensor;

use crate::tiny_model::tiny_model;

/// Eight short pairs with a learnable pattern: the target repeats the digit.
fn examples() -> Vec<TrainExample> {
    (0..8)
        .map(|i| TrainExample {
            prompt: format!("Q: repeat {i}\nAnswer:"),
            target: format!(" {i}{i}{i}\nDone."),
        })
        .collect()
}

fn options(epochs: usize, batch_size: usize, grad_accum: usize) -> TrainOptions {
    TrainOptions {
        learning_rate: 1e-2,
        epochs,
        batch_size,
        grad_accum,
        warmup_ratio: 0.1,
        weight_decay: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        max_grad_norm: 1.0,
        seed: 3,
        save_every_steps: None,
    }
}

/// Runs a fine-tune; returns the per-step losses it reported and the result.
fn train(
    model: &mut LoadedModel,
    options: &TrainOptions,
    out_dir: &std::path::Path,
    stop_after_step: Option<u64>,
) -> (Vec<f64>, Result<Vec<CheckpointInfo>, ModelError>) {
    let stop = AtomicBool::new(false);
    let mut losses = Vec::new();
    let result = finetune(
        model,
        &examples(),
        options,
        out_dir,
        &mut |p| {
            losses.push(p.loss);
            if Some(p.step) == stop_after_step {
                stop.store(true, Ordering::SeqCst);
            }
        },
        &stop,
    );
    (losses, result)
}

fn parameters(model: &LoadedModel) -> Vec<(String, Tensor)> {
    let mut variables: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    variables
}

#[test]
fn loss_falls_on_small_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = tiny_model(21, 0.1);
    let (losses, result) = train(&mut model, &options(6, 4, 1), dir.path(), None);
    let checkpoints = result.unwrap();

    assert_eq!(losses.len(), 12);
    assert_eq!(checkpoints.len(), 6);
    let first = checkpoints[0].mean_loss;
    let last = checkpoints[5].mean_loss;
    assert!(last < 0.7 * first, "mean loss went from {first} to {last}");
}

#[test]
fn checkpoints_written_per_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = tiny_model(22, 0.1);
    let checkpoints = train(&mut model, &options(2, 4, 1), dir.path(), None).1.unwrap();

    for (index, checkpoint) in checkpoints.iter().enumerate() {
        assert_eq!(checkpoint.epoch, index + 1);
        assert_eq!(checkpoint.step, 2 * (index as u64 + 1));
        assert_eq!(checkpoint.dir, dir.path().join(format!("epoch-{}", index + 1)));
        for file in ["config.json", "model.safetensors", "tokenizer.json"] {
            assert!(
                checkpoint.dir.join(file).is_file(),
                "{file} in {}",
                checkpoint.dir.display()
            );
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["epoch-1", "epoch-2", "resume"], "no temporary folders are left");

    let reloaded = LoadedModel::load(&checkpoints[1].dir, Precision::F32).unwrap();
    for ((name, a), (_, b)) in parameters(&model).iter().zip(parameters(&reloaded)) {
        assert!(a.equal(&b), "parameter {name} differs after reloading");
    }
}

/// Stopping mid-epoch and resuming gives bitwise the same losses and
/// weights: the run restores f32 weights and moments exactly, the example
/// order is recomputed from (seed, epoch), and libtorch's CPU kernels are
/// deterministic for equal shapes and thread counts.
#[test]
fn resume_reproduces_straight_run() {
    let options = options(2, 2, 1);

    let straight_dir = tempfile::tempdir().unwrap();
    let mut straight = tiny_model(23, 0.1);
    let (straight_losses, result) = train(&mut straight, &options, straight_dir.path(), None);
    result.unwrap();

    let resumed_dir = tempfile::tempdir().unwrap();
    let mut first_half = tiny_model(23, 0.1);
    let (mut resumed_losses, result) = train(&mut first_half, &options, resumed_dir.path(), Some(3));
    assert!(matches!(result, Err(ModelError::Interrupted(_))), "{result:?}");
    assert_eq!(resumed_losses.len(), 3);

    // A fresh model with other weights: the resume state must replace them.
    let mut second_half = tiny_model(99, 0.1);
    let (rest, result) = train(&mut second_half, &options, resumed_dir.path(), None);
    let checkpoints = result.unwrap();
    resumed_losses.extend(rest);

    assert_eq!(straight_losses.len(), 8);
    assert_eq!(resumed_losses, straight_losses);
    assert_eq!(checkpoints.len(), 2);
    for ((name, a), (_, b)) in parameters(&straight).iter().zip(parameters(&second_half)) {
        assert!(a.equal(&b), "parameter {name} differs");
    }
}

#[test]
fn resume_rejects_changed_options() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = tiny_model(24, 0.1);
    let (_, result) = train(&mut model, &options(2, 2, 1), dir.path(), Some(1));
    assert!(matches!(result, Err(ModelError::Interrupted(_))));

    let mut changed = options(2, 2, 1);
    changed.learning_rate = 5e-3;
    let (_, result) = train(&mut model, &changed, dir.path(), None);
    assert!(matches!(result, Err(ModelError::Format { .. })), "{result:?}");
}

/// Two accumulated batches of 2 give the step of one batch of 4, because
/// the loss is a mean over the step's target tokens either way.
#[test]
fn accumulation_matches_larger_batch() {
    let mut one_batch = tiny_model(25, 0.1);
    let mut accumulated = tiny_model(25, 0.1);
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();

    let (losses_a, result_a) = train(&mut one_batch, &options(1, 4, 1), dir_a.path(), None);
    let (losses_b, result_b) = train(&mut accumulated, &options(1, 2, 2), dir_b.path(), None);
    result_a.unwrap();
    result_b.unwrap();

    assert_eq!(losses_a.len(), 2);
    assert_eq!(losses_b.len(), 2);
    for (a, b) in losses_a.iter().zip(&losses_b) {
        assert!((a - b).abs() < 1e-5, "losses {a} vs {b}");
    }
    for ((name, a), (_, b)) in parameters(&one_batch).iter().zip(parameters(&accumulated)) {
        let difference = (a - b).abs().max().double_value(&[]);
        assert!(difference < 1e-4, "parameter {name} differs by {difference}");
    }
}

#[test]
fn target_boundary_from_offsets() {
    let model = tiny_model(26, 0.1);
    // (prompt, target, expected target start); the byte tokenizer has one
    // token per byte, so the start is the prompt's byte length.
    let cases = [("Q: 1\nAnswer:", " 2\nDone.", 12), ("é?", " x", 3), ("", "abc", 0)];
    for (prompt, target, expected) in cases {
        let pair = tokenize_pair(&model, prompt, target).unwrap();
        assert_eq!(pair.target_start, expected, "prompt {prompt:?}");
        assert_eq!(pair.ids.len(), prompt.len() + target.len(), "prompt {prompt:?}");
    }
}

#[test]
fn invalid_train_options_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let base = options(1, 2, 1);
    let cases = [
        (
            "zero learning rate",
            TrainOptions {
                learning_rate: 0.0,
                ..base.clone()
            },
        ),
        (
            "zero epochs",
            TrainOptions {
                epochs: 0,
                ..base.clone()
            },
        ),
        (
            "zero batch",
            TrainOptions {
                batch_size: 0,
                ..base.clone()
            },
        ),
        (
            "zero accumulation",
            TrainOptions {
                grad_accum: 0,
                ..base.clone()
            },
        ),
        (
            "warmup above 1",
            TrainOptions {
                warmup_ratio: 1.5,
                ..base.clone()
            },
        ),
        (
            "beta1 of 1",
            TrainOptions {
                beta1: 1.0,
                ..base.clone()
            },
        ),
        (
            "negative clip",
            TrainOptions {
                max_grad_norm: -1.0,
                ..base.clone()
            },
        ),
        (
            "save every 0",
            TrainOptions {
                save_every_steps: Some(0),
                ..base.clone()
            },
        ),
    ];
    for (name, options) in cases {
        let mut model = tiny_model(27, 0.1);
        let (_, result) = train(&mut model, &options, dir.path(), None);
        assert!(
            matches!(result, Err(ModelError::InvalidOptions(_))),
            "{name}: {result:?}"
        );
    }
}

/// With `save_every_steps`, resume state is written between epoch ends too.
#[test]
fn resume_saved_every_n_steps() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = tiny_model(28, 0.1);
    let options = TrainOptions {
        save_every_steps: Some(2),
        ..options(1, 2, 1)
    };
    let state_path = dir.path().join("resume").join("state.json");
    let mut saved_steps = Vec::new();

    finetune(
        &mut model,
        &examples(),
        &options,
        dir.path(),
        &mut |p| {
            // The callback runs before the save of its own step.
            let text = std::fs::read_to_string(&state_path).unwrap_or_default();
            let state: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
            saved_steps.push((p.step, state["step"].as_u64()));
        },
        &AtomicBool::new(false),
    )
    .unwrap();

    assert_eq!(saved_steps, [(1, None), (2, None), (3, Some(2)), (4, Some(2))]);
}
