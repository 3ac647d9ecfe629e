//! The report's curation section: test accuracy against the number of
//! training examples, one curve per strategy with the spread over seeds,
//! and how many fewer examples `premem` needs than `random` to reach
//! random's best accuracy. Writes `curation.csv` (one row per round, line
//! and seed), `curation_curve.csv` (the plotted means) and `curation.svg`.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::curation::{data_efficiency, CurvePoint};

use super::ReportError;

const FONT: &str = "Libertinus Serif";

/// One evaluated round, a point of one seed's learning curve; the content
/// of a curation-eval entry's `eval.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundResult {
    /// Round, from 1.
    pub round: usize,
    /// None for round 1, which every strategy and seed shares.
    pub strategy: Option<String>,
    pub seed: Option<u64>,
    /// Base examples plus the candidates added before this round.
    pub train_examples: usize,
    /// Fraction of correct test samples at the round's last checkpoint.
    pub test_accuracy: f64,
    pub test_samples: usize,
}

/// Everything the section shows.
#[derive(Debug, Clone)]
pub struct CurationInput {
    /// Strategy names in the experiment's order.
    pub strategies: Vec<String>,
    pub seeds: Vec<u64>,
    /// PM threshold of the `premem` strategy.
    pub threshold: f64,
    pub base_examples: usize,
    pub results: Vec<RoundResult>,
    /// Notes of selections: too few eligible candidates, or premem choosing
    /// the same candidates as random.
    pub notes: Vec<String>,
}

/// Values of the section, as written to `report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurationData {
    pub figure: String,
    pub base_examples: usize,
    pub seeds: String,
    pub threshold: String,
    /// Strategy, round, examples, mean accuracy, standard deviation, seeds.
    pub rows: Vec<Vec<String>>,
    /// The data-efficiency sentence: the ratio, or why there is none.
    pub efficiency: String,
    pub notes: Vec<String>,
}

/// Mean curve of one strategy: round 1 (shared) and its own later rounds,
/// averaged over seeds. The standard deviation is over seeds (0 for one).
pub fn strategy_curve(results: &[RoundResult], strategy: &str) -> Vec<(usize, CurvePoint, usize)> {
    let mut by_round: BTreeMap<usize, Vec<&RoundResult>> = BTreeMap::new();
    for result in results {
        let belongs = match &result.strategy {
            None => true,
            Some(name) => name == strategy,
        };
        if belongs {
            by_round.entry(result.round).or_default().push(result);
        }
    }
    by_round
        .into_iter()
        .map(|(round, points)| {
            let n = points.len() as f64;
            let mean = points.iter().map(|p| p.test_accuracy).sum::<f64>() / n;
            let examples = points.iter().map(|p| p.train_examples as f64).sum::<f64>() / n;
            let variance = if points.len() > 1 {
                points.iter().map(|p| (p.test_accuracy - mean).powi(2)).sum::<f64>() / (n - 1.0)
            } else {
                0.0
            };
            (
                round,
                CurvePoint {
                    examples,
                    mean_accuracy: mean,
                    std: variance.sqrt(),
                },
                points.len(),
            )
        })
        .collect()
}

/// Writes the section's CSV files and figure into `out_dir`.
pub fn render(input: &CurationInput, out_dir: &Path) -> Result<CurationData, ReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };

    let results_path = out_dir.join("curation.csv");
    let mut results_csv = String::from("round,strategy,seed,train_examples,test_accuracy,test_samples\n");
    let mut sorted = input.results.clone();
    sorted.sort_by(|a, b| (a.round, &a.strategy, a.seed).cmp(&(b.round, &b.strategy, b.seed)));
    for r in &sorted {
        results_csv.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.round,
            r.strategy.as_deref().unwrap_or("shared"),
            r.seed.map_or(String::new(), |s| s.to_string()),
            r.train_examples,
            r.test_accuracy,
            r.test_samples
        ));
    }
    std::fs::write(&results_path, results_csv).map_err(io(&results_path))?;

    let curves: Vec<(String, Vec<(usize, CurvePoint, usize)>)> = input
        .strategies
        .iter()
        .map(|s| (s.clone(), strategy_curve(&input.results, s)))
        .collect();
    let curve_path = out_dir.join("curation_curve.csv");
    let mut curve_csv = String::from("strategy,round,train_examples,mean_test_accuracy,std_over_seeds,seeds\n");
    let mut rows = Vec::new();
    for (strategy, curve) in &curves {
        for (round, point, n) in curve {
            curve_csv.push_str(&format!(
                "{strategy},{round},{},{},{},{n}\n",
                point.examples, point.mean_accuracy, point.std
            ));
            rows.push(vec![
                strategy.clone(),
                round.to_string(),
                format!("{:.0}", point.examples),
                format!("{:.3}", point.mean_accuracy),
                format!("{:.3}", point.std),
                n.to_string(),
            ]);
        }
    }
    std::fs::write(&curve_path, curve_csv).map_err(io(&curve_path))?;

    let figure = "curation.svg".to_string();
    curve_plot(&out_dir.join(&figure), &curves)?;

    Ok(CurationData {
        figure,
        base_examples: input.base_examples,
        seeds: input.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        threshold: format!("{}", input.threshold),
        rows,
        efficiency: efficiency_sentence(&curves),
        notes: input.notes.clone(),
    })
}

/// States the data efficiency of premem over random, or why it is missing.
fn efficiency_sentence(curves: &[(String, Vec<(usize, CurvePoint, usize)>)]) -> String {
    let points = |name: &str| -> Option<Vec<CurvePoint>> {
        curves
            .iter()
            .find(|(s, _)| s == name)
            .map(|(_, curve)| curve.iter().map(|(_, p, _)| *p).collect())
    };
    let (Some(premem), Some(random)) = (points("premem"), points("random")) else {
        return "The experiment does not compare `premem` with `random`, so no data-efficiency ratio is computed.".to_string();
    };
    // A curve that never rises above zero has no level to reach.
    if random.iter().all(|p| p.mean_accuracy <= 0.0) {
        return "No data-efficiency ratio of premem over random: random's test accuracy is 0 at every round.".to_string();
    }
    match data_efficiency(&premem, &random) {
        Ok(e) => format!(
            "Data efficiency of premem over random: {:.2}x. Random's best mean test accuracy, {:.3}, needs {:.0} training examples; premem reaches it with {:.1} (linear interpolation between its rounds). A ratio above 1 means premem needs fewer examples; the published claim is 1.5 to 2x. With few seeds and small test sets, compare the ratio with the error bars before trusting it.",
            e.ratio, e.target_accuracy, e.random_examples, e.premem_examples
        ),
        Err(reason) => format!("No data-efficiency ratio of premem over random: {reason}."),
    }
}

/// Mean test accuracy against training examples, one line per strategy,
/// with error bars of one standard deviation over seeds.
fn curve_plot(path: &Path, curves: &[(String, Vec<(usize, CurvePoint, usize)>)]) -> Result<(), ReportError> {
    let error = |e: &dyn std::fmt::Display| ReportError::Figure {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let all: Vec<CurvePoint> = curves.iter().flat_map(|(_, c)| c.iter().map(|(_, p, _)| *p)).collect();
    let x_max = all.iter().map(|p| p.examples).fold(1.0, f64::max) * 1.05;
    let x_min = all.iter().map(|p| p.examples).fold(x_max, f64::min) * 0.9;
    let y_max = all
        .iter()
        .map(|p| p.mean_accuracy + p.std)
        .fold(0.05, f64::max)
        .min(1.0)
        * 1.1;

    let root = SVGBackend::new(path, (620, 360)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(54)
        .build_cartesian_2d(x_min..x_max, 0f64..y_max)
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc("training examples (base + added)")
        .y_desc("test accuracy (fraction correct)")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE)
        .draw()
        .map_err(|e| error(&e))?;

    let palette = [
        RGBColor(214, 39, 40),
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
    ];
    for (index, (strategy, curve)) in curves.iter().enumerate() {
        let color = palette[index % palette.len()];
        // Offsets keep overlapping error bars apart.
        let shift = (index as f64 - (curves.len() as f64 - 1.0) / 2.0) * (x_max - x_min) * 0.006;
        let points: Vec<(f64, f64)> = curve.iter().map(|(_, p, _)| (p.examples + shift, p.mean_accuracy)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| error(&e))?
            .label(strategy.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| error(&e))?;
        chart
            .draw_series(curve.iter().filter(|(_, p, _)| p.std > 0.0).map(|(_, p, _)| {
                let x = p.examples + shift;
                PathElement::new(
                    vec![(x, (p.mean_accuracy - p.std).max(0.0)), (x, p.mean_accuracy + p.std)],
                    color.stroke_width(1),
                )
            }))
            .map_err(|e| error(&e))?;
    }
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
