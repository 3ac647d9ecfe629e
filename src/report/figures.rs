//! The report's figures as SVG files drawn with plotters.
//!
//! Text uses "Libertinus Serif", a family that Typst embeds, because Typst
//! renders SVG text with its own fonts and resolves real family names only.

use std::path::Path;

use plotters::prelude::*;

use super::ReportError;
use crate::analysis::pm::{example_series, is_memorized};
use crate::analysis::{Analysis, CheckpointMetrics, Dynamics, Predictor, SweepPoint};

const FONT: &str = "Libertinus Serif";

/// Colours of learning rates, in ascending order of learning rate.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Marker shapes of epoch counts, in ascending order of epochs.
#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

const MARKERS: [Marker; 4] = [Marker::Circle, Marker::Triangle, Marker::Square, Marker::Cross];

fn figure_error<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> ReportError + '_ {
    move |error| ReportError::Figure {
        path: path.to_path_buf(),
        message: error.to_string(),
    }
}

/// Sorted distinct values, with `None` last.
fn distinct(values: impl Iterator<Item = Option<f64>>) -> Vec<Option<f64>> {
    let mut out: Vec<Option<f64>> = Vec::new();
    for value in values {
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out.sort_by(|a, b| match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    out
}

/// Learning rates in scientific notation, e.g. `2e-5`.
fn format_rate(value: Option<f64>) -> String {
    value.map(|v| format!("{v:e}")).unwrap_or_else(|| "unknown".to_string())
}

fn format_epochs(value: Option<f64>) -> String {
    value.map(|v| format!("{v}")).unwrap_or_else(|| "unknown".to_string())
}

/// Test accuracy against `predictor` (an accuracy-scale predictor), one
/// point per (run, checkpoint): colour = learning rate, marker = epochs,
/// with the line y = x and the least-squares line.
pub fn scatter(path: &Path, analysis: &Analysis, predictor: Predictor, x_label: &str) -> Result<(), ReportError> {
    let error = figure_error(path);
    let points: Vec<&CheckpointMetrics> = analysis
        .checkpoints
        .iter()
        .filter(|row| row.test_accuracy.is_some() && predictor.value(row).is_finite())
        .collect();
    let rates = distinct(points.iter().map(|row| row.learning_rate));
    let epochs = distinct(points.iter().map(|row| row.epochs));

    let root = SVGBackend::new(path, (520, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(&error)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(54)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(&error)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("test accuracy (fraction correct)")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE)
        .draw()
        .map_err(&error)?;

    let identity = BLACK.mix(0.45);
    chart
        .draw_series(LineSeries::new(vec![(0.0, 0.0), (1.0, 1.0)], identity.stroke_width(1)))
        .map_err(&error)?
        .label("y = x")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], identity));

    if let Some(line) = analysis.fit(predictor).and_then(|fit| fit.line) {
        let fitted = RGBColor(90, 90, 90).stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, line.predict(0.0)), (1.0, line.predict(1.0))],
                fitted,
            ))
            .map_err(&error)?
            .label("least-squares line")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], fitted));
    }

    for (rate_index, rate) in rates.iter().enumerate() {
        let color = PALETTE[rate_index % PALETTE.len()];
        for (epoch_index, epoch) in epochs.iter().enumerate() {
            let marker = MARKERS[epoch_index % MARKERS.len()];
            let coords: Vec<(f64, f64)> = points
                .iter()
                .filter(|row| row.learning_rate == *rate && row.epochs == *epoch)
                .map(|row| (predictor.value(row), row.test_accuracy.unwrap_or_default()))
                .collect();
            draw_markers(&mut chart, &coords, marker, color.filled()).map_err(&error)?;
        }
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(&error)?
            .label(format!("lr {}", format_rate(*rate)))
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, color.filled()));
    }
    for (epoch_index, epoch) in epochs.iter().enumerate() {
        let marker = MARKERS[epoch_index % MARKERS.len()];
        let gray = BLACK.mix(0.7).filled();
        let series = chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(&error)?
            .label(format!("{} epochs", format_epochs(*epoch)));
        match marker {
            Marker::Circle => series.legend(move |(x, y)| Circle::new((x + 9, y), 4, gray)),
            Marker::Triangle => series.legend(move |(x, y)| TriangleMarker::new((x + 9, y), 5, gray)),
            Marker::Square => series.legend(move |(x, y)| Rectangle::new([(x + 5, y - 4), (x + 13, y + 4)], gray)),
            Marker::Cross => series.legend(move |(x, y)| Cross::new((x + 9, y), 4, gray.stroke_width(2))),
        };
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 12))
        .draw()
        .map_err(&error)?;
    root.present().map_err(&error)?;
    Ok(())
}

type Chart<'a> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>;

fn draw_markers(
    chart: &mut Chart<'_>,
    coords: &[(f64, f64)],
    marker: Marker,
    style: ShapeStyle,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let points = coords.iter().copied();
    match marker {
        Marker::Circle => chart.draw_series(points.map(|p| Circle::new(p, 4, style))).map(|_| ()),
        Marker::Triangle => chart.draw_series(points.map(|p| TriangleMarker::new(p, 5, style))).map(|_| ()),
        Marker::Square => chart
            .draw_series(points.map(|p| EmptyElement::at(p) + Rectangle::new([(-4, -4), (4, 4)], style)))
            .map(|_| ()),
        Marker::Cross => chart.draw_series(points.map(|p| Cross::new(p, 4, style.stroke_width(2)))).map(|_| ()),
    }
}

/// R^2 of test accuracy on PM against the memorization threshold; values
/// below -1 are drawn at -1 so that the useful range stays readable.
pub fn sweep(path: &Path, analysis: &Analysis) -> Result<(), ReportError> {
    let error = figure_error(path);
    let thresholds: Vec<f64> = analysis.sweep.iter().map(|p| p.threshold).collect();
    let (mut low, mut high) = (analysis.threshold, analysis.threshold);
    for t in &thresholds {
        low = low.min(*t);
        high = high.max(*t);
    }
    let pad = ((high - low) * 0.05).max(0.005);

    let root = SVGBackend::new(path, (620, 340)).into_drawing_area();
    root.fill(&WHITE).map_err(&error)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(54)
        .build_cartesian_2d((low - pad)..(high + pad), -1f64..1f64)
        .map_err(&error)?;
    chart
        .configure_mesh()
        .x_desc("memorization threshold (target perplexity)")
        .y_desc("R² of test accuracy on PM")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE)
        .draw()
        .map_err(&error)?;

    let chosen = BLACK.mix(0.4);
    chart
        .draw_series(LineSeries::new(
            vec![(analysis.threshold, -1.0), (analysis.threshold, 1.0)],
            chosen,
        ))
        .map_err(&error)?
        .label(format!("threshold used ({:.4})", analysis.threshold))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], chosen));

    type R2Of = fn(&SweepPoint) -> Option<f64>;
    let kinds: [(&str, RGBColor, R2Of); 2] = [
        ("R² about y = x", PALETTE[0], |p| p.r2_identity),
        ("R² of least-squares line", PALETTE[1], |p| p.r2_line),
    ];
    for (label, color, value) in kinds {
        let coords: Vec<(f64, f64)> = analysis
            .sweep
            .iter()
            .filter_map(|p| value(p).map(|r2| (p.threshold, r2.max(-1.0))))
            .collect();
        chart
            .draw_series(LineSeries::new(coords.clone(), color.stroke_width(2)))
            .map_err(&error)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart
            .draw_series(coords.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(&error)?;
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 12))
        .draw()
        .map_err(&error)?;
    root.present().map_err(&error)?;
    Ok(())
}

/// Rows shown in the heatmap and how many the run has.
pub struct HeatmapExtent {
    pub shown: usize,
    pub total: usize,
}

/// Examples x checkpoints of run `run_index`: accuracy as brightness
/// (white = 0, black = 1), memorized cells marked with a red dot. Shows the
/// first `max_rows` examples of the run, sorted by mean accuracy.
pub fn heatmap(
    path: &Path,
    dynamics: &Dynamics,
    run_index: usize,
    threshold: f64,
    max_rows: usize,
) -> Result<HeatmapExtent, ReportError> {
    let error = figure_error(path);
    let run = &dynamics.runs[run_index];
    let series = example_series(run);
    let columns = run.checkpoints.len();

    let mut shown: Vec<_> = series.iter().take(max_rows).collect();
    let mean_accuracy = |s: &&crate::analysis::pm::ExampleSeries| -> f64 {
        let known: Vec<f64> = s.accuracy.iter().flatten().copied().collect();
        known.iter().sum::<f64>() / known.len().max(1) as f64
    };
    shown.sort_by(|a, b| mean_accuracy(a).total_cmp(&mean_accuracy(b)));
    let rows = shown.len();

    let height = (120 + rows * 9).clamp(240, 720) as u32;
    let root = SVGBackend::new(path, (560, height)).into_drawing_area();
    root.fill(&WHITE).map_err(&error)?;
    let labels: Vec<String> = run.checkpoints.iter().map(|c| format!("{}", c.epoch)).collect();

    // Cells are centred on integer coordinates so that the axis labels,
    // which plotters puts on round numbers, fall under the cell centres.
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(54)
        .build_cartesian_2d(-0.5f64..(columns.max(1) as f64 - 0.5), -0.5f64..(rows.max(1) as f64 - 0.5))
        .map_err(&error)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("checkpoint (epochs trained)")
        .y_desc("training example (sorted by mean accuracy)")
        .x_labels(columns.max(1))
        .x_label_formatter(&|x| {
            let index = x.round();
            if (x - index).abs() > 1e-6 || index < 0.0 {
                return String::new();
            }
            labels.get(index as usize).cloned().unwrap_or_default()
        })
        .y_labels(5)
        .y_label_formatter(&|y| format!("{}", y.round() as i64 + 1))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(&error)?;

    let outline = RGBColor(200, 200, 200);
    for (row, example) in shown.iter().enumerate() {
        for t in 0..columns {
            let (x, y) = (t as f64, row as f64);
            let cell = [(x - 0.48, y - 0.45), (x + 0.48, y + 0.45)];
            let Some(accuracy) = example.accuracy[t] else {
                continue;
            };
            let level = (255.0 * (1.0 - accuracy)).round() as u8;
            chart
                .draw_series([
                    Rectangle::new(cell, RGBColor(level, level, level).filled()),
                    Rectangle::new(cell, outline.stroke_width(1)),
                ])
                .map_err(&error)?;
            let memorized = example.perplexity[t].is_some_and(|p| is_memorized(p, threshold));
            if memorized {
                chart
                    .draw_series(std::iter::once(Circle::new((x, y), 3, RGBColor(220, 30, 30).filled())))
                    .map_err(&error)?;
            }
        }
    }
    root.present().map_err(&error)?;
    Ok(HeatmapExtent {
        shown: rows,
        total: series.len(),
    })
}

/// Draws a blank figure, for a report without runs.
pub fn empty(path: &Path) -> Result<(), ReportError> {
    let error = figure_error(path);
    let root = SVGBackend::new(path, (560, 240)).into_drawing_area();
    root.fill(&WHITE).map_err(&error)?;
    root.present().map_err(&error)?;
    Ok(())
}
