//! The report's robustness section: for each perturbation, accuracy under
//! the perturbation against each training example's PM at the checked
//! checkpoint. Writes `robustness.csv` (one row per perturbation and
//! example), `robustness_bins.csv` (box statistics per PM bin) and one box
//! plot per perturbation, and returns what the Typst source shows.

use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::robustness::{bin_by_pm, spearman, PmBin, PM_BIN_WIDTH};

use super::content::truncate;
use super::{ExampleText, ReportError};

const FONT: &str = "Libertinus Serif";

/// Rows of the most-fragile table per perturbation.
pub const FRAGILE_ROWS: usize = 8;

/// Measurements of the robustness stages, joined with PM from the analysis.
#[derive(Debug, Clone)]
pub struct RobustnessInput {
    pub run: String,
    pub checkpoint: String,
    pub perturbations: Vec<PerturbedAccuracy>,
}

/// One perturbation's per-example accuracies.
#[derive(Debug, Clone)]
pub struct PerturbedAccuracy {
    /// File-name-safe name from the experiment file.
    pub name: String,
    /// Readable description, such as `prefix: First`.
    pub label: String,
    pub examples: Vec<ExampleAccuracy>,
}

/// One training example at the checked checkpoint.
#[derive(Debug, Clone)]
pub struct ExampleAccuracy {
    pub id: String,
    pub pm: f64,
    /// Accuracy of the unperturbed samples of the sweep.
    pub accuracy: f64,
    pub perturbed: f64,
}

/// Values of the section, as written to `report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RobustnessData {
    pub run: String,
    pub checkpoint: String,
    pub perturbations: Vec<PerturbationData>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PerturbationData {
    pub name: String,
    pub label: String,
    pub figure: String,
    /// Spearman's rho between PM and perturbed accuracy, or "undefined".
    pub spearman: String,
    pub examples: usize,
    /// Id, PM, accuracy, perturbed accuracy, drop, question.
    pub fragile: Vec<Vec<String>>,
}

/// Writes the section's CSV files and figures into `out_dir`.
pub fn render(
    input: &RobustnessInput,
    texts: &[ExampleText],
    out_dir: &Path,
) -> Result<RobustnessData, ReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    let figure_error = |path: &Path, message: String| ReportError::Figure {
        path: path.to_path_buf(),
        message,
    };

    let examples_path = out_dir.join("robustness.csv");
    let mut examples_csv = String::from("perturbation,id,pm,accuracy,perturbed_accuracy,drop\n");
    let bins_path = out_dir.join("robustness_bins.csv");
    let mut bins_csv =
        String::from("perturbation,series,bin_lower,bin_upper,count,min,q1,median,q3,max,mean\n");

    let mut perturbations = Vec::new();
    for perturbation in &input.perturbations {
        for e in &perturbation.examples {
            examples_csv.push_str(&format!(
                "{},{},{},{},{},{}\n",
                perturbation.name,
                csv_field(&e.id),
                e.pm,
                e.accuracy,
                e.perturbed,
                e.accuracy - e.perturbed
            ));
        }

        let perturbed: Vec<(f64, f64)> = perturbation.examples.iter().map(|e| (e.pm, e.perturbed)).collect();
        let unperturbed: Vec<(f64, f64)> = perturbation.examples.iter().map(|e| (e.pm, e.accuracy)).collect();
        let figure = format!("robustness_{}.svg", perturbation.name);
        let figure_path = out_dir.join(&figure);
        let perturbed_bins = bin_by_pm(&perturbed).map_err(|e| figure_error(&figure_path, e.to_string()))?;
        let unperturbed_bins = bin_by_pm(&unperturbed).map_err(|e| figure_error(&figure_path, e.to_string()))?;
        for (series, bins) in [("perturbed", &perturbed_bins), ("unperturbed", &unperturbed_bins)] {
            for bin in bins.iter() {
                bins_csv.push_str(&bin_row(&perturbation.name, series, bin));
            }
        }
        box_plot(&figure_path, &perturbation.label, &perturbed_bins, &unperturbed_bins)?;

        let pm: Vec<f64> = perturbed.iter().map(|p| p.0).collect();
        let values: Vec<f64> = perturbed.iter().map(|p| p.1).collect();
        let rho = spearman(&pm, &values).map_or("undefined".to_string(), |r| format!("{r:.3}"));

        perturbations.push(PerturbationData {
            name: perturbation.name.clone(),
            label: perturbation.label.clone(),
            figure,
            spearman: rho,
            examples: perturbation.examples.len(),
            fragile: fragile_rows(perturbation, texts),
        });
    }

    std::fs::write(&examples_path, examples_csv).map_err(io(&examples_path))?;
    std::fs::write(&bins_path, bins_csv).map_err(io(&bins_path))?;
    Ok(RobustnessData {
        run: input.run.clone(),
        checkpoint: input.checkpoint.clone(),
        perturbations,
    })
}

/// Quotes a CSV field when it contains a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn bin_row(name: &str, series: &str, bin: &PmBin) -> String {
    let stats = match &bin.stats {
        Some(s) => format!("{},{},{},{},{},{},{}", s.count, s.min, s.q1, s.median, s.q3, s.max, s.mean),
        None => "0,,,,,,".to_string(),
    };
    format!("{name},{series},{},{},{stats}\n", bin.lower, bin.upper)
}

/// The examples with the largest drop from unperturbed to perturbed
/// accuracy (ties by id), only those that dropped.
fn fragile_rows(perturbation: &PerturbedAccuracy, texts: &[ExampleText]) -> Vec<Vec<String>> {
    let mut examples: Vec<&ExampleAccuracy> = perturbation
        .examples
        .iter()
        .filter(|e| e.accuracy - e.perturbed > 0.0)
        .collect();
    examples.sort_by(|a, b| {
        (b.accuracy - b.perturbed)
            .total_cmp(&(a.accuracy - a.perturbed))
            .then_with(|| a.id.cmp(&b.id))
    });
    examples
        .into_iter()
        .take(FRAGILE_ROWS)
        .map(|e| {
            let question = texts
                .iter()
                .find(|t| t.id == e.id)
                .map_or(String::new(), |t| truncate(&t.question, 140));
            vec![
                e.id.clone(),
                format!("{:.2}", e.pm),
                format!("{:.2}", e.accuracy),
                format!("{:.2}", e.perturbed),
                format!("{:.2}", e.accuracy - e.perturbed),
                question,
            ]
        })
        .collect()
}

/// Box plot of perturbed accuracy per PM bin with the bin means joined,
/// and the unperturbed bin means as a dashed grey line.
fn box_plot(path: &Path, label: &str, perturbed: &[PmBin], unperturbed: &[PmBin]) -> Result<(), ReportError> {
    let error = |e: &dyn std::fmt::Display| ReportError::Figure {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let root = SVGBackend::new(path, (620, 340)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(54)
        .build_cartesian_2d(0f64..1f64, -0.02f64..1.02f64)
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc("pre-memorization train accuracy (bins of 0.2)")
        .y_desc(format!("accuracy ({label})"))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE)
        .draw()
        .map_err(|e| error(&e))?;

    let color = RGBColor(31, 119, 180);
    let half = PM_BIN_WIDTH * 0.3;
    for bin in perturbed {
        let Some(s) = bin.stats else { continue };
        let center = (bin.lower + bin.upper) / 2.0;
        chart
            .draw_series([
                Rectangle::new([(center - half, s.q1), (center + half, s.q3)], color.mix(0.25).filled()),
                Rectangle::new([(center - half, s.q1), (center + half, s.q3)], color.stroke_width(1)),
            ])
            .map_err(|e| error(&e))?;
        chart
            .draw_series([
                PathElement::new(vec![(center - half, s.median), (center + half, s.median)], color.stroke_width(2)),
                PathElement::new(vec![(center, s.q3), (center, s.max)], color),
                PathElement::new(vec![(center, s.min), (center, s.q1)], color),
            ])
            .map_err(|e| error(&e))?;
    }

    let means = |bins: &[PmBin]| -> Vec<(f64, f64)> {
        bins.iter()
            .filter_map(|b| b.stats.map(|s| ((b.lower + b.upper) / 2.0, s.mean)))
            .collect()
    };
    let red = RGBColor(214, 39, 40);
    chart
        .draw_series(LineSeries::new(means(perturbed), red.stroke_width(2)))
        .map_err(|e| error(&e))?
        .label("mean under perturbation")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(2)));
    chart
        .draw_series(means(perturbed).into_iter().map(|p| Circle::new(p, 3, red.filled())))
        .map_err(|e| error(&e))?;
    let grey = BLACK.mix(0.5);
    chart
        .draw_series(LineSeries::new(means(unperturbed), grey.stroke_width(2)))
        .map_err(|e| error(&e))?
        .label("mean without perturbation")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey.stroke_width(2)));
    chart
        .draw_series(means(unperturbed).into_iter().map(|p| TriangleMarker::new(p, 4, grey.filled())))
        .map_err(|e| error(&e))?;

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 12))
        .draw()
        .map_err(|e| error(&e))?;
    root.present().map_err(|e| error(&e))?;
    Ok(())
}
