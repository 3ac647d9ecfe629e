//! Planning: the stages an experiment needs, each with its manifest and
//! cache key, computed without running anything. Keys of later stages
//! include the keys of earlier ones, so a plan is built in pipeline order.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cache::{DigestMemo, Manifest, Value};
use crate::experiment::{
    DataSource, Experiment, RobustnessConfig, Roots, RunConfig, Source, SyntheticData, TrainingConfig,
};

use super::{StageError, StageKind};

/// Data split that a sample stage draws prompts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// Work of a planned stage. Run indices point into `TrainingConfig::runs`.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    PrepareData,
    FineTune {
        run: usize,
    },
    Sample {
        run: usize,
        epoch: usize,
        split: Split,
    },
    Score {
        run: usize,
        epoch: usize,
    },
    Import,
    /// One perturbation (index into `RobustnessConfig::perturbations`).
    Robustness {
        perturbation: usize,
    },
    Analyze,
    Report,
}

#[derive(Debug, Clone)]
pub struct PlannedStage {
    /// Readable id, unique in the plan: `sample lr1e-5_ep1_frac1_seed0 epoch-1 train`.
    pub id: String,
    pub kind: StageKind,
    pub job: Job,
    pub manifest: Manifest,
    pub key: String,
    /// Indices of the stages whose entries this one reads.
    pub upstream: Vec<usize>,
}

/// Every stage of an experiment, in an order where upstream stages come
/// first.
#[derive(Debug, Clone)]
pub struct Plan {
    pub experiment: Experiment,
    pub roots: Roots,
    pub stages: Vec<PlannedStage>,
    /// SHA-256 of each input file or folder, by role.
    pub digests: BTreeMap<String, String>,
    /// Path of each input file or folder, by role.
    pub input_paths: BTreeMap<String, PathBuf>,
}

impl Plan {
    /// Plans every stage of `experiment`, hashing its input files (through
    /// `memo`). The files must exist; `check_inputs` reports missing ones
    /// with the key that names them.
    pub fn build(
        experiment: &Experiment,
        roots: &Roots,
        memo: &mut DigestMemo,
    ) -> Result<Plan, StageError> {
        let mut digests = BTreeMap::new();
        let mut input_paths = BTreeMap::new();
        let mut hash = |role: &str, path: PathBuf| -> Result<(), StageError> {
            let digest = memo.digest(&path).map_err(|e| StageError::read(&path, e))?;
            digests.insert(role.to_string(), digest);
            input_paths.insert(role.to_string(), path);
            Ok(())
        };
        if let DataSource::Files { train, test } = &experiment.data.source {
            hash("train_data", roots.data_path(train))?;
            hash("test_data", roots.data_path(test))?;
        }
        match &experiment.source {
            Source::Training(training) => hash("model", roots.model_path(&training.model.path))?,
            Source::Import(import) => hash("import_dir", roots.data_path(&import.dir))?,
        }

        let mut plan = Plan {
            experiment: experiment.clone(),
            roots: roots.clone(),
            stages: Vec::new(),
            digests,
            input_paths,
        };
        plan.add_stages();
        Ok(plan)
    }

    pub fn training(&self) -> Option<&TrainingConfig> {
        match &self.experiment.source {
            Source::Training(training) => Some(training),
            Source::Import(_) => None,
        }
    }

    /// The stage at `index`'s upstream stage of `kind` (the first one).
    pub fn upstream_of(&self, index: usize, kind: StageKind) -> Option<&PlannedStage> {
        self.stages[index]
            .upstream
            .iter()
            .map(|&i| &self.stages[i])
            .find(|stage| stage.kind == kind)
    }

    fn push(
        &mut self,
        id: String,
        kind: StageKind,
        job: Job,
        mut manifest: Manifest,
        upstream: Vec<usize>,
    ) -> usize {
        for &index in &upstream {
            let up = &self.stages[index];
            manifest = manifest.upstream(&up.id, &up.key);
        }
        let key = manifest.key();
        self.stages.push(PlannedStage {
            id,
            kind,
            job,
            manifest,
            key,
            upstream,
        });
        self.stages.len() - 1
    }

    fn add_stages(&mut self) {
        let experiment = self.experiment.clone();
        let data = &experiment.data;

        let manifest = Manifest::new(
            StageKind::PrepareData.name(),
            StageKind::PrepareData.version(),
        )
        .param("format", data.format.name())
        .param("train_subset", data.train_subset)
        .param("test_subset", data.test_subset)
        .param("subset_seed", data.subset_seed)
        .param("prompt_template", experiment.templates.prompt.as_str())
        .param("target_template", experiment.templates.target.as_str());
        let manifest = match &data.source {
            DataSource::Files { .. } => manifest
                .input("train_data", &self.digests["train_data"])
                .input("test_data", &self.digests["test_data"]),
            DataSource::Synthetic(synthetic) => synthetic_params(manifest, synthetic),
        };
        let prepare = self.push(
            StageKind::PrepareData.name().to_string(),
            StageKind::PrepareData,
            Job::PrepareData,
            manifest,
            vec![],
        );

        let mut fine_tunes = Vec::new();
        let analyze_inputs = match &experiment.source {
            Source::Training(training) => {
                self.add_training_stages(training, prepare, &mut fine_tunes)
            }
            Source::Import(_) => {
                let import = self.push(
                    StageKind::Import.name().to_string(),
                    StageKind::Import,
                    Job::Import,
                    Manifest::new(StageKind::Import.name(), StageKind::Import.version())
                        .param("format", data.format.name())
                        .input("import_dir", &self.digests["import_dir"])
                        .input("train_data", &self.digests["train_data"])
                        .input("test_data", &self.digests["test_data"]),
                    vec![],
                );
                vec![import]
            }
        };

        let grid: Vec<Value> = experiment
            .analysis
            .threshold_grid
            .iter()
            .map(|&x| Value::float(x))
            .collect();
        let analyze = self.push(
            StageKind::Analyze.name().to_string(),
            StageKind::Analyze,
            Job::Analyze,
            Manifest::new(StageKind::Analyze.name(), StageKind::Analyze.version())
                .param("threshold", experiment.scoring.threshold)
                .param("threshold_grid", Value::List(grid)),
            analyze_inputs,
        );

        // Robustness stages sit after analyze in the plan but only read the
        // fine-tune entry; the report reads both.
        let mut report_inputs = vec![analyze, prepare];
        if let (Some(robustness), Source::Training(training)) =
            (&experiment.robustness, &experiment.source)
        {
            report_inputs.extend(self.add_robustness_stages(
                training,
                robustness,
                prepare,
                fine_tunes[robustness.run],
            ));
        }

        self.push(
            StageKind::Report.name().to_string(),
            StageKind::Report,
            Job::Report,
            Manifest::new(StageKind::Report.name(), StageKind::Report.version())
                .param("name", experiment.name.as_str())
                .param("title", experiment.title.as_str())
                .param("examples", experiment.report.examples),
            report_inputs,
        );
    }

    /// Adds one robustness stage per perturbation, each reading the chosen
    /// checkpoint of the run's fine-tune entry; returns their indices.
    fn add_robustness_stages(
        &mut self,
        training: &TrainingConfig,
        robustness: &RobustnessConfig,
        prepare: usize,
        fine_tune: usize,
    ) -> Vec<usize> {
        let run_name = training.runs[robustness.run].name();
        let label = format!("epoch-{}", robustness.epoch);
        let sampling = &training.sampling;
        let stop: Vec<Value> = sampling
            .stop
            .iter()
            .map(|s| Value::str(s.clone()))
            .collect();
        let mut stages = Vec::new();
        for (index, named) in robustness.perturbations.iter().enumerate() {
            let perturbation = serde_json::to_string(&named.perturbation).unwrap_or_default();
            stages.push(
                self.push(
                    format!("robustness {run_name} {label} {}", named.name),
                    StageKind::Robustness,
                    Job::Robustness {
                        perturbation: index,
                    },
                    Manifest::new(
                        StageKind::Robustness.name(),
                        StageKind::Robustness.version(),
                    )
                    .param("checkpoint", label.as_str())
                    .param("perturbation", perturbation.as_str())
                    .param("perturbation_seed", named.seed)
                    .param("precision", precision_name(training))
                    .param("prompt_template", self.experiment.templates.prompt.as_str())
                    .param("k", robustness.k)
                    .param("temperature", sampling.temperature)
                    .param("top_p", sampling.top_p)
                    .param("max_new_tokens", sampling.max_new_tokens)
                    .param("stop", Value::List(stop.clone()))
                    .param("seed", sampling.seed)
                    .param("batch_size", sampling.batch_size)
                    .param("grader", self.experiment.data.format.name()),
                    vec![prepare, fine_tune],
                ),
            );
        }
        stages
    }

    /// Adds fine-tune, sample and score stages; returns the score stages.
    /// Pushes each run's fine-tune stage index onto `fine_tunes`.
    fn add_training_stages(
        &mut self,
        training: &TrainingConfig,
        prepare: usize,
        fine_tunes: &mut Vec<usize>,
    ) -> Vec<usize> {
        let mut scores = Vec::new();
        for (run_index, run) in training.runs.iter().enumerate() {
            let run_name = run.name();
            let fine_tune = self.push(
                format!("fine-tune {run_name}"),
                StageKind::FineTune,
                Job::FineTune { run: run_index },
                fine_tune_manifest(training, run).input("model", &self.digests["model"]),
                vec![prepare],
            );
            fine_tunes.push(fine_tune);

            for epoch in 1..=run.epochs {
                let label = format!("epoch-{epoch}");
                let mut samples = Vec::new();
                for split in [Split::Train, Split::Test] {
                    let sampling = &training.sampling;
                    let k = match split {
                        Split::Train => sampling.k_train,
                        Split::Test => sampling.k_test,
                    };
                    let stop: Vec<Value> = sampling
                        .stop
                        .iter()
                        .map(|s| Value::str(s.clone()))
                        .collect();
                    samples.push(
                        self.push(
                            format!("sample {run_name} {label} {}", split.name()),
                            StageKind::Sample,
                            Job::Sample {
                                run: run_index,
                                epoch,
                                split,
                            },
                            Manifest::new(StageKind::Sample.name(), StageKind::Sample.version())
                                .param("split", split.name())
                                .param("checkpoint", label.as_str())
                                .param("precision", precision_name(training))
                                .param("k", k)
                                .param("temperature", sampling.temperature)
                                .param("top_p", sampling.top_p)
                                .param("max_new_tokens", sampling.max_new_tokens)
                                .param("stop", Value::List(stop))
                                .param("seed", sampling.seed)
                                .param("batch_size", sampling.batch_size),
                            vec![prepare, fine_tune],
                        ),
                    );
                }

                let mut upstream = vec![prepare, fine_tune];
                upstream.extend(samples);
                scores.push(
                    self.push(
                        format!("score {run_name} {label}"),
                        StageKind::Score,
                        Job::Score {
                            run: run_index,
                            epoch,
                        },
                        Manifest::new(StageKind::Score.name(), StageKind::Score.version())
                            .param("checkpoint", label.as_str())
                            .param("precision", precision_name(training))
                            .param("token_budget", self.experiment.scoring.token_budget)
                            .param("grader", self.experiment.data.format.name()),
                        upstream,
                    ),
                );
            }
        }
        scores
    }
}

fn precision_name(training: &TrainingConfig) -> &'static str {
    match training.model.precision {
        crate::model::Precision::F32 => "f32",
        crate::model::Precision::Bf16 => "bf16",
    }
}

fn fine_tune_manifest(training: &TrainingConfig, run: &RunConfig) -> Manifest {
    let optimizer = &training.optimizer;
    Manifest::new(StageKind::FineTune.name(), StageKind::FineTune.version())
        .param("learning_rate", run.learning_rate)
        .param("epochs", run.epochs)
        .param("data_fraction", run.data_fraction)
        .param("seed", run.seed)
        .param("batch_size", optimizer.batch_size)
        .param("grad_accum", optimizer.grad_accum)
        .param("warmup_ratio", optimizer.warmup_ratio)
        .param("weight_decay", optimizer.weight_decay)
        .param("beta1", optimizer.beta1)
        .param("beta2", optimizer.beta2)
        .param("eps", optimizer.eps)
        .param("max_grad_norm", optimizer.max_grad_norm)
}

/// The resolved generator settings and split sizes: the whole input of a
/// synthetic prepare-data stage, since it reads no files.
fn synthetic_params(manifest: Manifest, synthetic: &SyntheticData) -> Manifest {
    let generator = &synthetic.generator;
    let operations: Vec<Value> = generator
        .operations
        .iter()
        .map(|operation| Value::str(operation.name()))
        .collect();
    manifest
        .param("source", "synthetic")
        .param("synth_train_count", synthetic.train_count)
        .param("synth_test_count", synthetic.test_count)
        .param("synth_seed", generator.seed)
        .param("synth_min_steps", generator.min_steps)
        .param("synth_max_steps", generator.max_steps)
        .param("synth_operations", Value::List(operations))
        .param("synth_min_value", generator.min_value)
        .param("synth_max_value", generator.max_value)
        .param("synth_max_factor", generator.max_factor)
        .param("synth_max_result", generator.max_result)
        .param("synth_allow_negative", generator.allow_negative)
        .param("synth_surface_forms", generator.surface_forms)
}
