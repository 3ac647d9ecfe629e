//! Pre-memorization analysis of learning dynamics: per-checkpoint metrics,
//! pooled regressions of test accuracy on PM and on baselines, and a sweep
//! of the memorization threshold.

pub mod dynamics;
pub mod import;
pub mod npy;
pub mod pm;
pub mod regression;
pub mod tables;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use dynamics::Dynamics;
pub use regression::LineFit;
pub use tables::{example_rows, write_tables, ExampleRow};

use dynamics::accuracy;

/// Settings of the analysis stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnalysisOptions {
    /// Memorization threshold on target perplexity.
    pub threshold: f64,
    /// Thresholds of the sensitivity sweep.
    pub threshold_grid: Vec<f64>,
}

impl AnalysisOptions {
    /// Options with `threshold` and [`default_threshold_grid`].
    pub fn with_threshold(threshold: f64) -> AnalysisOptions {
        AnalysisOptions {
            threshold,
            threshold_grid: default_threshold_grid(),
        }
    }
}

/// Thresholds exp(exp(a)) for a = -4.0, -3.75, ..., -0.5: perplexities
/// from 1.018 to 1.834, spaced evenly in log(log(perplexity)), the scale on
/// which the published GSM8k (a = -2.3) and MATH (a = -1.7) thresholds sit.
pub fn default_threshold_grid() -> Vec<f64> {
    (0..=14).map(|i| (-4.0 + 0.25 * i as f64).exp().exp()).collect()
}

/// Everything the analysis computes, for the report and for JSON output.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Analysis {
    /// Memorization threshold on target perplexity used for `checkpoints`
    /// and `regressions`.
    pub threshold: f64,
    /// One row per (run, checkpoint), runs in input order.
    pub checkpoints: Vec<CheckpointMetrics>,
    /// Test accuracy regressed on each predictor, pooled over the
    /// checkpoints that have test records.
    pub regressions: Vec<PredictorFit>,
    /// R^2 of test accuracy on PM at each threshold of the grid.
    pub sweep: Vec<SweepPoint>,
}

/// Metrics of one run at one checkpoint. Accuracies are fractions in [0, 1].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointMetrics {
    pub run: String,
    pub checkpoint: String,
    pub epoch: f64,
    pub step: u64,
    pub learning_rate: Option<f64>,
    pub epochs: Option<f64>,
    pub data_fraction: Option<f64>,
    pub train_examples: usize,
    pub test_examples: usize,
    /// Mean over training examples of the fraction of correct samples.
    pub train_accuracy: f64,
    /// Same over test examples; `None` without test records.
    pub test_accuracy: Option<f64>,
    /// Mean over training examples of the mean target NLL per token (nats).
    pub train_nll: f64,
    /// Fraction of training examples with perplexity below the threshold.
    pub fraction_memorized: f64,
    /// Pre-memorization train accuracy.
    pub pm_accuracy: f64,
}

/// Predictor (independent variable) of test accuracy in a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Predictor {
    PmAccuracy,
    TrainAccuracy,
    TrainNll,
    FractionMemorized,
}

impl Predictor {
    pub const ALL: [Predictor; 4] = [
        Predictor::PmAccuracy,
        Predictor::TrainAccuracy,
        Predictor::TrainNll,
        Predictor::FractionMemorized,
    ];

    /// Human-readable name for tables.
    pub fn label(self) -> &'static str {
        match self {
            Predictor::PmAccuracy => "pre-memorization train accuracy",
            Predictor::TrainAccuracy => "train accuracy",
            Predictor::TrainNll => "mean train NLL",
            Predictor::FractionMemorized => "fraction memorized",
        }
    }

    /// Tells whether the predictor is itself an accuracy, so that y = x is a
    /// meaningful prediction of test accuracy. NLL is in nats, not a
    /// fraction, so its R^2 about y = x is left undefined.
    pub fn on_accuracy_scale(self) -> bool {
        !matches!(self, Predictor::TrainNll)
    }

    pub fn value(self, metrics: &CheckpointMetrics) -> f64 {
        match self {
            Predictor::PmAccuracy => metrics.pm_accuracy,
            Predictor::TrainAccuracy => metrics.train_accuracy,
            Predictor::TrainNll => metrics.train_nll,
            Predictor::FractionMemorized => metrics.fraction_memorized,
        }
    }
}

/// Test accuracy regressed on one predictor. Every R^2 is `None` where it
/// is undefined: no spread in test accuracy, or too few points.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PredictorFit {
    pub predictor: Predictor,
    /// Pooled (run, checkpoint) points with a test accuracy.
    pub points: usize,
    /// R^2 about the line y = x.
    pub r2_identity: Option<f64>,
    /// Least-squares line; `None` for fewer than 3 points or no spread in
    /// the predictor.
    pub line: Option<LineFit>,
    /// Mean absolute error of test accuracy predicted for each run by the
    /// line fitted on the other runs.
    pub leave_one_run_out_mae: Option<f64>,
}

/// R^2 of test accuracy on PM at one memorization threshold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepPoint {
    pub threshold: f64,
    pub r2_identity: Option<f64>,
    pub r2_line: Option<f64>,
}

impl Analysis {
    /// Looks up the fit for one predictor.
    pub fn fit(&self, predictor: Predictor) -> Option<&PredictorFit> {
        self.regressions.iter().find(|fit| fit.predictor == predictor)
    }
}

/// Formats an R^2 with 3 decimals, or "undefined".
pub fn format_r2(value: Option<f64>) -> String {
    match value {
        Some(v) => format!("{v:.3}"),
        None => "undefined".to_string(),
    }
}

/// Computes per-checkpoint metrics, the pooled regressions and the
/// threshold sweep.
pub fn analyze(dynamics: &Dynamics, options: &AnalysisOptions) -> Analysis {
    let checkpoints = checkpoint_metrics(dynamics, options.threshold);
    let regressions = Predictor::ALL
        .iter()
        .map(|predictor| fit_predictor(&checkpoints, *predictor))
        .collect();

    let sweep = options
        .threshold_grid
        .iter()
        .map(|threshold| {
            let metrics = checkpoint_metrics(dynamics, *threshold);
            let fit = fit_predictor(&metrics, Predictor::PmAccuracy);
            SweepPoint {
                threshold: *threshold,
                r2_identity: fit.r2_identity,
                r2_line: fit.line.and_then(|line| line.r2),
            }
        })
        .collect();

    Analysis {
        threshold: options.threshold,
        checkpoints,
        regressions,
        sweep,
    }
}

/// Computes one row per (run, checkpoint) at memorization threshold `threshold`.
fn checkpoint_metrics(dynamics: &Dynamics, threshold: f64) -> Vec<CheckpointMetrics> {
    let mut rows = Vec::new();

    for run in &dynamics.runs {
        let series = pm::example_series(run);
        let means = pm::run_means(&series, run.checkpoints.len(), threshold);

        for (t, checkpoint) in run.checkpoints.iter().enumerate() {
            let train_n = checkpoint.train.len();
            let train_accuracy = mean_or_nan(checkpoint.train.iter().map(|r| accuracy(&r.outcomes)), train_n);
            let train_nll = mean_or_nan(
                checkpoint.train.iter().map(|r| r.nll_mean.unwrap_or_else(|| r.perplexity.ln())),
                train_n,
            );
            let test_n = checkpoint.test.len();
            let test_accuracy = (test_n > 0)
                .then(|| mean_or_nan(checkpoint.test.iter().map(|r| accuracy(&r.outcomes)), test_n));
            let (pm_accuracy, fraction_memorized) = means[t];

            rows.push(CheckpointMetrics {
                run: run.name.clone(),
                checkpoint: checkpoint.label.clone(),
                epoch: checkpoint.epoch,
                step: checkpoint.step,
                learning_rate: run.learning_rate,
                epochs: run.epochs,
                data_fraction: run.data_fraction,
                train_examples: train_n,
                test_examples: test_n,
                train_accuracy,
                test_accuracy,
                train_nll,
                fraction_memorized,
                pm_accuracy,
            });
        }
    }
    rows
}

fn mean_or_nan(values: impl Iterator<Item = f64>, count: usize) -> f64 {
    values.sum::<f64>() / count as f64
}

/// Regresses test accuracy on `predictor` over the rows with a test
/// accuracy and a finite predictor value.
fn fit_predictor(rows: &[CheckpointMetrics], predictor: Predictor) -> PredictorFit {
    let mut run_names: Vec<&str> = Vec::new();
    let (mut groups, mut x, mut y) = (Vec::new(), Vec::new(), Vec::new());

    for row in rows {
        let (Some(test), value) = (row.test_accuracy, predictor.value(row)) else {
            continue;
        };
        if !value.is_finite() || !test.is_finite() {
            continue;
        }
        let group = match run_names.iter().position(|name| *name == row.run) {
            Some(i) => i,
            None => {
                run_names.push(&row.run);
                run_names.len() - 1
            }
        };
        groups.push(group);
        x.push(value);
        y.push(test);
    }

    let r2_identity = if predictor.on_accuracy_scale() {
        regression::r2_identity(&x, &y)
    } else {
        None
    };
    PredictorFit {
        predictor,
        points: x.len(),
        r2_identity,
        line: regression::least_squares(&x, &y),
        leave_one_run_out_mae: regression::leave_one_group_out_mae(&groups, &x, &y),
    }
}

/// Reads recorded dynamics from `dir` (see [`import::read_recorded`]) and
/// analyzes them; a convenience for the CLI and tests.
pub fn analyze_recorded(dir: &Path, options: &AnalysisOptions) -> Result<(Dynamics, Analysis), import::ImportError> {
    let dynamics = import::read_recorded(dir)?;
    let analysis = analyze(&dynamics, options);
    Ok((dynamics, analysis))
}
