//! Planning: the stages an experiment needs, each with its manifest and
//! cache key, computed without running anything. Keys of later stages
//! include the keys of earlier ones, so a plan is built in pipeline order.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cache::{DigestMemo, Manifest, Value};
use crate::curation::Strategy;
use crate::experiment::{
    CurationConfig, DataSource, Experiment, PoolSource, RobustnessConfig, Roots, RunConfig, SamplingConfig,
    Source, SyntheticData, TrainingConfig,
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
    /// Builds the curation candidate pool and scores IFD.
    CurationPool,
    /// Fine-tunes one curation round; `line` indexes the (strategy, seed)
    /// pairs of [`Plan::curation_line`] and is None for round 1, which
    /// every line shares.
    CurationFineTune {
        round: usize,
        line: Option<usize>,
    },
    /// Measures a curation round's test accuracy and, when a selection
    /// follows, its dynamics on the base set.
    CurationEval {
        round: usize,
        line: Option<usize>,
    },
    /// Chooses the candidates added after round `round` for one line.
    CurationSelect {
        round: usize,
        line: usize,
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
        if let Some(CurationConfig {
            pool: PoolSource::File(path),
            ..
        }) = &experiment.curation
        {
            hash("curation_pool", roots.data_path(path))?;
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

    /// Strategy and seed of curation line `line`: lines run over the
    /// strategies, and within each strategy over the seeds.
    pub fn curation_line(&self, line: usize) -> (&Strategy, u64) {
        let curation = self
            .experiment
            .curation
            .as_ref()
            .expect("curation lines exist only with `[curation]`");
        let seeds = curation.seeds.len();
        (&curation.strategies[line / seeds], curation.seeds[line % seeds])
    }

    /// Whether the evaluation of `round` in `line` must record the base
    /// set's dynamics: true when a selection that reads statistics follows
    /// it (every strategy but `random`).
    pub fn curation_needs_dynamics(&self, round: usize, line: Option<usize>) -> bool {
        let Some(curation) = &self.experiment.curation else {
            return false;
        };
        if round >= curation.rounds() {
            return false;
        }
        let reads_stats = |strategy: &Strategy| !matches!(strategy, Strategy::Random);
        match line {
            Some(line) => reads_stats(self.curation_line(line).0),
            None => curation.strategies.iter().any(reads_stats),
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

        if let (Some(curation), Source::Training(training)) =
            (&experiment.curation, &experiment.source)
        {
            report_inputs.extend(self.add_curation_stages(training, curation, prepare));
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

    /// Adds the curation stages: the pool, round 1 (shared), then for each
    /// (strategy, seed) line a selection, fine-tune and evaluation per
    /// later round. Returns the evaluation and selection stages, which the
    /// report reads.
    fn add_curation_stages(
        &mut self,
        training: &TrainingConfig,
        curation: &CurationConfig,
        prepare: usize,
    ) -> Vec<usize> {
        let pool_name = match &curation.pool {
            PoolSource::Synthetic { per_seed, seed } => {
                format!("synthetic per_seed={per_seed} seed={seed}")
            }
            PoolSource::File(_) => "file".to_string(),
        };
        let mut manifest = Manifest::new(
            StageKind::CurationPool.name(),
            StageKind::CurationPool.version(),
        )
        .param("pool", pool_name.as_str())
        .param("token_budget", self.experiment.scoring.token_budget)
        .input("model", &self.digests["model"]);
        if let Some(digest) = self.digests.get("curation_pool") {
            manifest = manifest.input("curation_pool", digest);
        }
        let pool = self.push(
            StageKind::CurationPool.name().to_string(),
            StageKind::CurationPool,
            Job::CurationPool,
            manifest,
            vec![prepare],
        );

        // Round 1 trains on the base set alone. When a sweep run has the
        // same settings its fine-tune stage is the same stage.
        let run = curation.run();
        let round_one = fine_tune_manifest(training, &run).input("model", &self.digests["model"]);
        let round_one_key = round_one
            .clone()
            .upstream(&self.stages[prepare].id, &self.stages[prepare].key)
            .key();
        let fine_tune = match self.stages.iter().position(|s| s.key == round_one_key) {
            Some(existing) => existing,
            None => self.push(
                "fine-tune curation round-1".to_string(),
                StageKind::FineTune,
                Job::CurationFineTune {
                    round: 1,
                    line: None,
                },
                round_one,
                vec![prepare],
            ),
        };
        let first_eval = self.push(
            "curation-eval round-1".to_string(),
            StageKind::CurationEval,
            Job::CurationEval {
                round: 1,
                line: None,
            },
            self.eval_manifest(training, self.curation_needs_dynamics(1, None)),
            vec![prepare, fine_tune],
        );

        let mut report_inputs = vec![first_eval];
        let lines = curation.strategies.len() * curation.seeds.len();
        for line in 0..lines {
            let (strategy, seed) = self.curation_line(line);
            let strategy = strategy.clone();
            let name = format!("{} seed{seed}", strategy.label());
            let mut previous_eval = first_eval;
            let mut previous_select = None;
            for round in 1..curation.rounds() {
                let next = round + 1;
                let mut upstream = vec![prepare, pool, previous_eval];
                upstream.extend(previous_select);
                let select = self.push(
                    format!("curation-select {name} round-{round}"),
                    StageKind::CurationSelect,
                    Job::CurationSelect { round, line },
                    Manifest::new(
                        StageKind::CurationSelect.name(),
                        StageKind::CurationSelect.version(),
                    )
                    .param("strategy", serde_json::to_string(&strategy).unwrap_or_default().as_str())
                    .param("seed", seed)
                    .param("round", round)
                    .param("add", curation.add[round - 1])
                    .param("memorization_threshold", self.experiment.scoring.threshold),
                    upstream,
                );
                let fine_tune = self.push(
                    format!("fine-tune curation {name} round-{next}"),
                    StageKind::FineTune,
                    Job::CurationFineTune {
                        round: next,
                        line: Some(line),
                    },
                    fine_tune_manifest(training, &run)
                        .param("curation_round", next)
                        .input("model", &self.digests["model"]),
                    vec![prepare, select],
                );
                let eval = self.push(
                    format!("curation-eval {name} round-{next}"),
                    StageKind::CurationEval,
                    Job::CurationEval {
                        round: next,
                        line: Some(line),
                    },
                    self.eval_manifest(training, self.curation_needs_dynamics(next, Some(line))),
                    vec![prepare, fine_tune, select],
                );
                report_inputs.extend([select, eval]);
                previous_eval = eval;
                previous_select = Some(select);
            }
        }
        report_inputs
    }

    fn eval_manifest(&self, training: &TrainingConfig, base_dynamics: bool) -> Manifest {
        let sampling = &training.sampling;
        sampling_params(Manifest::new(
            StageKind::CurationEval.name(),
            StageKind::CurationEval.version(),
        ), sampling)
        .param("base_dynamics", base_dynamics)
        .param("precision", precision_name(training))
        .param("k_train", sampling.k_train)
        .param("k_test", sampling.k_test)
        .param("token_budget", self.experiment.scoring.token_budget)
        .param("grader", self.experiment.data.format.name())
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
                    sampling_params(
                        Manifest::new(
                            StageKind::Robustness.name(),
                            StageKind::Robustness.version(),
                        ),
                        sampling,
                    )
                    .param("checkpoint", label.as_str())
                    .param("perturbation", perturbation.as_str())
                    .param("perturbation_seed", named.seed)
                    .param("precision", precision_name(training))
                    .param("prompt_template", self.experiment.templates.prompt.as_str())
                    .param("k", robustness.k)
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
                    samples.push(
                        self.push(
                            format!("sample {run_name} {label} {}", split.name()),
                            StageKind::Sample,
                            Job::Sample {
                                run: run_index,
                                epoch,
                                split,
                            },
                            sampling_params(
                                Manifest::new(StageKind::Sample.name(), StageKind::Sample.version()),
                                sampling,
                            )
                            .param("split", split.name())
                            .param("checkpoint", label.as_str())
                            .param("precision", precision_name(training))
                            .param("k", k),
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

/// Adds the `[sampling]` values that every sampling stage's output depends
/// on, except the sample counts, which differ by stage.
fn sampling_params(manifest: Manifest, sampling: &SamplingConfig) -> Manifest {
    let stop: Vec<Value> = sampling
        .stop
        .iter()
        .map(|s| Value::str(s.clone()))
        .collect();
    manifest
        .param("temperature", sampling.temperature)
        .param("top_p", sampling.top_p)
        .param("max_new_tokens", sampling.max_new_tokens)
        .param("stop", Value::List(stop))
        .param("seed", sampling.seed)
        .param("batch_size", sampling.batch_size)
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
