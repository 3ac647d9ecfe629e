//! fine-tune: trains one sweep configuration and stores a checkpoint folder
//! per epoch (`epoch-{E}/`) plus `checkpoints.json`.
//!
//! Training writes into the cache's stable work folder for this key, which
//! survives a kill. A rerun passes the same folder to `finetune`, so it
//! resumes from its `resume/` state.

use std::path::Path;

use crate::model::train::{self, CheckpointInfo, TrainExample, TrainOptions};
use crate::model::{LoadedModel, ModelError, Precision};

use super::pipeline::StageContext;
use super::plan::{Job, Split};
use super::prepare::read_prepared;
use super::{progress, StageError, StageKind};

pub fn run(context: &StageContext) -> Result<(), StageError> {
    let plan = context.plan;
    let training = plan
        .training()
        .expect("fine-tune is planned only for training experiments");

    // A sweep run trains on a prefix of the train split; a curation round
    // on the base set plus the candidates added so far.
    let (run, prepared) = match context.stage().job {
        Job::FineTune { run: run_index } => {
            let run = training.runs[run_index].clone();
            let mut prepared =
                read_prepared(&context.upstream_dir(StageKind::PrepareData)?, Split::Train)?;
            prepared.truncate(run.train_count(prepared.len()));
            (run, prepared)
        }
        Job::CurationFineTune { .. } => {
            let curation = plan
                .experiment
                .curation
                .as_ref()
                .expect("curation fine-tunes are planned only with `[curation]`");
            (curation.run(), super::curation::round_examples(context)?)
        }
        _ => unreachable!("fine-tune stage with another job"),
    };
    let examples: Vec<TrainExample> = prepared
        .iter()
        .map(|example| TrainExample {
            prompt: example.prompt.clone(),
            target: example.target.clone(),
        })
        .collect();

    let optimizer = &training.optimizer;
    let options = TrainOptions {
        learning_rate: run.learning_rate,
        epochs: run.epochs,
        batch_size: optimizer.batch_size,
        grad_accum: optimizer.grad_accum,
        warmup_ratio: optimizer.warmup_ratio,
        weight_decay: optimizer.weight_decay,
        beta1: optimizer.beta1,
        beta2: optimizer.beta2,
        eps: optimizer.eps,
        max_grad_norm: optimizer.max_grad_norm,
        seed: run.seed,
        save_every_steps: None,
    };

    // Parameters stay f32 for training whatever the inference precision.
    let model_path = plan.roots.model_path(&training.model.path);
    let mut model = LoadedModel::load(&model_path, Precision::F32)?;

    let work_dir = context
        .cache
        .work_dir(StageKind::FineTune.name(), &context.stage().key);
    std::fs::create_dir_all(&work_dir).map_err(StageError::write(&work_dir))?;

    let bar = progress::bar(
        0,
        &context.stage().id,
        context.show_progress,
    );
    let mut on_progress = |p: train::TrainProgress| {
        bar.set_length(p.total_steps);
        bar.set_position(p.step);
    };
    let result = train::finetune(
        &mut model,
        &examples,
        &options,
        &work_dir,
        &mut on_progress,
        context.stop,
    );
    bar.finish_and_clear();
    let checkpoints = match result {
        Err(ModelError::Interrupted(_)) => return Err(StageError::Interrupted),
        other => other?,
    };

    move_checkpoints(&checkpoints, &work_dir, context.out_dir)
}

/// Moves each `epoch-{E}` folder from the work folder into the entry and
/// writes `checkpoints.json` with folder names relative to the entry.
fn move_checkpoints(
    checkpoints: &[CheckpointInfo],
    work_dir: &Path,
    out_dir: &Path,
) -> Result<(), StageError> {
    let mut moved = Vec::new();
    for checkpoint in checkpoints {
        let name = format!("epoch-{}", checkpoint.epoch);
        let target = out_dir.join(&name);
        // `finetune` writes `out_dir/epoch-{E}/` by contract, whatever form
        // of path it reports in `dir`.
        let source = work_dir.join(&name);
        std::fs::rename(&source, &target).map_err(StageError::write(&target))?;
        moved.push(CheckpointInfo {
            dir: name.into(),
            ..checkpoint.clone()
        });
    }

    let path = out_dir.join("checkpoints.json");
    let text = serde_json::to_string_pretty(&moved).unwrap_or_default();
    std::fs::write(&path, text).map_err(StageError::write(&path))
}

/// Reads `checkpoints.json` of a fine-tune entry.
pub fn read_checkpoints(entry_dir: &Path) -> Result<Vec<CheckpointInfo>, StageError> {
    let path = entry_dir.join("checkpoints.json");
    let text = std::fs::read_to_string(&path).map_err(|e| StageError::read(&path, e))?;
    serde_json::from_str(&text).map_err(|e| StageError::read(&path, e))
}
