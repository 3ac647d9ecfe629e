//! The report's text and tables, as the JSON document its Typst source reads:
//! the summary sentences and every table, with numbers already formatted.

use serde::Serialize;

use super::ReportInput;
use crate::analysis::{example_rows, format_r2, Analysis, ExampleRow, Predictor};

/// Examples listed in the "memorized but not learned" table.
pub const MAX_GAP_EXAMPLES: usize = 10;

/// Characters of question text shown per example.
pub const QUESTION_CHARS: usize = 200;

/// Test accuracy spread below which R^2 carries little information:
/// about one question in 50.
const MIN_INFORMATIVE_SPREAD: f64 = 0.02;

#[derive(Debug, Serialize)]
pub struct ReportData {
    pub title: String,
    pub name: String,
    pub threshold: String,
    pub summary: String,
    pub regressions: Vec<Vec<String>>,
    pub config: Vec<(String, String)>,
    pub scatter_note: String,
    pub runs: Vec<Vec<String>>,
    pub heatmap: HeatmapData,
    pub gaps_note: String,
    pub gaps: Vec<Vec<String>>,
    pub provenance: Vec<(String, String)>,
    /// The robustness section; `null` in `report.json` hides it.
    pub robustness: Option<super::robustness::RobustnessData>,
    /// The curation section; `null` in `report.json` hides it.
    pub curation: Option<super::curation::CurationData>,
}

#[derive(Debug, Serialize)]
pub struct HeatmapData {
    pub run: String,
    pub note: String,
}

fn fraction(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.3}")
    } else {
        "–".to_string()
    }
}

fn optional(value: Option<f64>) -> String {
    value.map(|v| format!("{v}")).unwrap_or_else(|| "–".to_string())
}

/// Writes the headline paragraph, with an explicit sentence when R^2 is undefined
/// or test accuracy varies too little for R^2 to mean much.
pub fn summary(analysis: &Analysis) -> String {
    let runs = {
        let mut names: Vec<&str> = analysis.checkpoints.iter().map(|c| c.run.as_str()).collect();
        names.dedup();
        names.len()
    };
    let pm = analysis.fit(Predictor::PmAccuracy);
    let train = analysis.fit(Predictor::TrainAccuracy);
    let points = pm.map(|fit| fit.points).unwrap_or(0);

    let mut text = format!(
        "This report pools {points} (run, checkpoint) points with a test accuracy, from {runs} runs. \
         An example counts as memorized when the perplexity of its reference solution is below {:.5}. ",
        analysis.threshold
    );

    let pm_identity = pm.and_then(|fit| fit.r2_identity);
    let pm_line = pm.and_then(|fit| fit.line);
    let train_line = train.and_then(|fit| fit.line).and_then(|line| line.r2);
    match (pm_identity, pm_line) {
        (Some(identity), Some(line)) => text.push_str(&format!(
            "Pre-memorization train accuracy predicts test accuracy with R² = {} about the line y = x and R² = {} \
             for a least-squares line (slope {:.3}, intercept {:.3}); plain train accuracy gives R² = {} for a \
             least-squares line. ",
            format_r2(Some(identity)),
            format_r2(line.r2),
            line.slope,
            line.intercept,
            format_r2(train_line),
        )),
        _ => text.push_str(
            "R² of test accuracy on pre-memorization train accuracy is undefined for these points: test accuracy \
             does not vary, or there are too few points, so this report cannot say how well PM predicts test \
             accuracy. ",
        ),
    }

    let tests: Vec<f64> = analysis.checkpoints.iter().filter_map(|c| c.test_accuracy).collect();
    let spread = tests.iter().cloned().fold(f64::NEG_INFINITY, f64::max) - tests.iter().cloned().fold(f64::INFINITY, f64::min);
    if tests.len() >= 2 && spread < MIN_INFORMATIVE_SPREAD {
        text.push_str(&format!(
            "Test accuracy spans only {spread:.3} across the points, so sampling noise dominates and no R² here \
             should be read as evidence either way."
        ));
    }
    text.trim_end().to_string()
}

/// Builds the rows of the regression table, one per predictor.
pub fn regression_rows(analysis: &Analysis) -> Vec<Vec<String>> {
    analysis
        .regressions
        .iter()
        .map(|fit| {
            let identity = if fit.predictor.on_accuracy_scale() {
                format_r2(fit.r2_identity)
            } else {
                "n/a".to_string()
            };
            let (slope, intercept, line_r2) = match fit.line {
                Some(line) => (format!("{:.3}", line.slope), format!("{:.3}", line.intercept), format_r2(line.r2)),
                None => ("–".to_string(), "–".to_string(), "undefined".to_string()),
            };
            let mae = fit.leave_one_run_out_mae.map(|v| format!("{v:.3}")).unwrap_or_else(|| "undefined".into());
            vec![fit.predictor.label().to_string(), fit.points.to_string(), identity, slope, intercept, line_r2, mae]
        })
        .collect()
}

/// Builds one row per run, with the metrics of its last checkpoint.
pub fn run_rows(input: &ReportInput) -> Vec<Vec<String>> {
    let analysis = &input.analysis;
    input
        .dynamics
        .runs
        .iter()
        .filter_map(|run| {
            let last = analysis.checkpoints.iter().rev().find(|c| c.run == run.name)?;
            Some(vec![
                run.name.clone(),
                optional(run.learning_rate),
                optional(run.epochs),
                optional(run.data_fraction),
                run.checkpoints.len().to_string(),
                fraction(last.train_accuracy),
                last.test_accuracy.map(fraction).unwrap_or_else(|| "–".into()),
                fraction(last.pm_accuracy),
                fraction(last.fraction_memorized),
            ])
        })
        .collect()
}

/// Cuts `text` to at most `max` characters at a character boundary, with
/// an ellipsis when cut, and folds line breaks into spaces.
pub fn truncate(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

/// Lists the training examples with the largest gap between train accuracy and
/// PM at their run's last checkpoint: answered correctly now, but only
/// since they were memorized.
pub fn gap_rows(input: &ReportInput) -> Vec<Vec<String>> {
    let last_labels: Vec<(&str, &str)> = input
        .dynamics
        .runs
        .iter()
        .filter_map(|run| Some((run.name.as_str(), run.checkpoints.last()?.label.as_str())))
        .collect();
    let mut rows: Vec<ExampleRow> = example_rows(&input.dynamics, input.analysis.threshold)
        .into_iter()
        .filter(|row| last_labels.contains(&(row.run.as_str(), row.checkpoint.as_str())))
        .filter(|row| row.accuracy - row.pm > 0.0)
        .collect();

    // Stable sort: ties keep run and example order, so the table is
    // deterministic.
    rows.sort_by(|a, b| (b.accuracy - b.pm).total_cmp(&(a.accuracy - a.pm)));
    rows.truncate(MAX_GAP_EXAMPLES);

    rows.into_iter()
        .map(|row| {
            let question = input
                .examples
                .iter()
                .find(|example| example.id == row.id)
                .map(|example| truncate(&example.question, QUESTION_CHARS))
                .unwrap_or_else(|| "(question text not available)".to_string());
            vec![row.run, row.checkpoint, row.id, fraction(row.accuracy), fraction(row.pm), question]
        })
        .collect()
}

pub fn gaps_note(shown: usize) -> String {
    if shown == 0 {
        return "No training example has a higher train accuracy than pre-memorization accuracy at its run's last \
                checkpoint: nothing was answered correctly only after being memorized."
            .to_string();
    }
    format!(
        "The {shown} training examples with the largest gap between train accuracy and pre-memorization accuracy \
         at their run's last checkpoint, across all runs: the model answers them correctly now, but did not before \
         it memorized their solutions. Questions are cut to {QUESTION_CHARS} characters."
    )
}
