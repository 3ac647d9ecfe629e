//! The analysis as files: CSV tables per checkpoint, per example and per
//! threshold, and the regressions as JSON.

use std::path::Path;

use serde::Serialize;

use super::dynamics::Dynamics;
use super::{pm, Analysis};

/// One training example of one run at one checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct ExampleRow {
    pub run: String,
    pub checkpoint: String,
    pub id: String,
    /// Fraction of correct samples.
    pub accuracy: f64,
    pub perplexity: f64,
    pub memorized: bool,
    /// Pre-memorization accuracy of this example at this checkpoint.
    pub pm: f64,
}

/// Per-example rows at memorization threshold `threshold`, runs and
/// checkpoints in input order, examples in order of first appearance.
pub fn example_rows(dynamics: &Dynamics, threshold: f64) -> Vec<ExampleRow> {
    let mut rows = Vec::new();

    for run in &dynamics.runs {
        let series = pm::example_series(run);
        let pm_values: Vec<Vec<Option<f64>>> = series
            .iter()
            .map(|example| pm::pm_series(&example.accuracy, &example.perplexity, threshold))
            .collect();

        for (t, checkpoint) in run.checkpoints.iter().enumerate() {
            for (example, pm_of_example) in series.iter().zip(&pm_values) {
                let (Some(accuracy), Some(perplexity), Some(pm)) =
                    (example.accuracy[t], example.perplexity[t], pm_of_example[t])
                else {
                    continue;
                };
                rows.push(ExampleRow {
                    run: run.name.clone(),
                    checkpoint: checkpoint.label.clone(),
                    id: example.id.clone(),
                    accuracy,
                    perplexity,
                    memorized: pm::is_memorized(perplexity, threshold),
                    pm,
                });
            }
        }
    }
    rows
}

fn to_io(error: csv::Error) -> std::io::Error {
    std::io::Error::other(error)
}

fn optional(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn r2_field(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_else(|| "undefined".to_string())
}

/// Writes the analysis as CSV tables and a JSON summary into `dir`:
/// `per_checkpoint.csv`, `per_example.csv`, `threshold_sweep.csv` and
/// `regression.json`. Undefined R^2 values are written as `undefined` in
/// CSV and `null` in JSON; other missing values as empty CSV fields.
pub fn write_tables(analysis: &Analysis, dynamics: &Dynamics, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;

    let mut writer = csv::Writer::from_path(dir.join("per_checkpoint.csv")).map_err(to_io)?;
    writer
        .write_record([
            "run",
            "checkpoint",
            "epoch",
            "step",
            "learning_rate",
            "epochs",
            "data_fraction",
            "train_examples",
            "test_examples",
            "train_accuracy",
            "test_accuracy",
            "train_nll",
            "fraction_memorized",
            "pm_accuracy",
        ])
        .map_err(to_io)?;
    for row in &analysis.checkpoints {
        writer
            .write_record([
                row.run.clone(),
                row.checkpoint.clone(),
                row.epoch.to_string(),
                row.step.to_string(),
                optional(row.learning_rate),
                optional(row.epochs),
                optional(row.data_fraction),
                row.train_examples.to_string(),
                row.test_examples.to_string(),
                row.train_accuracy.to_string(),
                optional(row.test_accuracy),
                row.train_nll.to_string(),
                row.fraction_memorized.to_string(),
                row.pm_accuracy.to_string(),
            ])
            .map_err(to_io)?;
    }
    writer.flush()?;

    let mut writer = csv::Writer::from_path(dir.join("per_example.csv")).map_err(to_io)?;
    for row in example_rows(dynamics, analysis.threshold) {
        writer.serialize(row).map_err(to_io)?;
    }
    writer.flush()?;

    let mut writer = csv::Writer::from_path(dir.join("threshold_sweep.csv")).map_err(to_io)?;
    writer.write_record(["threshold", "r2_identity", "r2_line"]).map_err(to_io)?;
    for point in &analysis.sweep {
        writer
            .write_record([
                point.threshold.to_string(),
                r2_field(point.r2_identity),
                r2_field(point.r2_line),
            ])
            .map_err(to_io)?;
    }
    writer.flush()?;

    let summary = serde_json::json!({
        "threshold": analysis.threshold,
        "regressions": analysis.regressions,
    });
    let text = serde_json::to_string_pretty(&summary).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("regression.json"), text + "\n")
}
