//! The PDF report: Typst source and plotters figures, compiled with the
//! `typst` CLI.
//!
//! `render` writes into its output folder: the SVG figures, the tables as
//! CSV (via [`crate::analysis::write_tables`]), `report.json` with every
//! value the report shows, the fixed source `report.typ`, and
//! `report.pdf`. The same input gives a byte-identical PDF.

pub mod content;
pub mod curation;
pub mod figures;
pub mod robustness;
pub mod typst;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analysis::{write_tables, Analysis, Dynamics, Predictor};

/// Text of one training example, for the report's example tables.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExampleText {
    pub id: String,
    pub question: String,
    pub solution: String,
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct ReportInput {
    /// Experiment name; also the folder name under `reports/`.
    pub name: String,
    pub title: String,
    /// The experiment's configuration as (key, value) rows.
    pub config: Vec<(String, String)>,
    pub dynamics: Dynamics,
    pub analysis: Analysis,
    pub examples: Vec<ExampleText>,
    /// Provenance rows: premem version, git revision, stage keys, seeds,
    /// libtorch and typst versions, data and model digests.
    pub provenance: Vec<(String, String)>,
    /// Unix seconds written into the PDF, derived from the inputs so that
    /// the same inputs give the same PDF.
    pub creation_timestamp: i64,
    /// Accuracy under prompt perturbations, when the experiment has
    /// `[robustness]`.
    pub robustness: Option<robustness::RobustnessInput>,
    /// Learning curves of the curation strategies, when the experiment has
    /// `[curation]`.
    pub curation: Option<curation::CurationInput>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("typst CLI not found: install it with `cargo install typst-cli --locked` (or run scripts/setup.sh)")]
    TypstMissing,
    #[error("typst failed to compile {path}: {stderr}")]
    TypstFailed { path: PathBuf, stderr: String },
    #[error("figure {path}: {message}")]
    Figure { path: PathBuf, message: String },
}

/// Writes figures, CSV tables and Typst source into `out_dir` and compiles
/// `out_dir/report.pdf`, whose path is returned.
pub fn render(input: &ReportInput, out_dir: &Path) -> Result<PathBuf, ReportError> {
    let typst_binary = typst::find_typst().ok_or(ReportError::TypstMissing)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let analysis = &input.analysis;

    write_tables(analysis, &input.dynamics, out_dir).map_err(io(out_dir))?;

    figures::scatter(
        &out_dir.join("scatter_pm.svg"),
        analysis,
        Predictor::PmAccuracy,
        "pre-memorization train accuracy (fraction)",
    )?;
    figures::scatter(
        &out_dir.join("scatter_train.svg"),
        analysis,
        Predictor::TrainAccuracy,
        "train accuracy (fraction correct)",
    )?;
    figures::sweep(&out_dir.join("threshold_sweep.svg"), analysis)?;

    // The run with the most checkpoints shows the most dynamics; the first
    // such run keeps the choice deterministic.
    let heatmap_run = (0..input.dynamics.runs.len())
        .rev()
        .max_by_key(|i| input.dynamics.runs[*i].checkpoints.len());
    let (heatmap_name, heatmap_note) = match heatmap_run {
        Some(index) => {
            let extent = figures::heatmap(
                &out_dir.join("heatmap.svg"),
                &input.dynamics,
                index,
                analysis.threshold,
                HEATMAP_MAX_EXAMPLES,
            )?;
            let note = if extent.shown < extent.total {
                format!(
                    "Only the first {} of the run's {} training examples are shown, sorted by mean accuracy.",
                    extent.shown, extent.total
                )
            } else {
                format!("All {} training examples of the run are shown, sorted by mean accuracy.", extent.total)
            };
            (input.dynamics.runs[index].name.clone(), note)
        }
        None => {
            figures::empty(&out_dir.join("heatmap.svg"))?;
            ("(none)".to_string(), "The experiment has no runs, so the figure is empty.".to_string())
        }
    };

    let gaps = content::gap_rows(input);
    let mut provenance = input.provenance.clone();
    if !provenance.iter().any(|(key, _)| key == "typst") {
        if let Some(version) = typst::typst_version(&typst_binary) {
            provenance.push(("typst".to_string(), version));
        }
    }
    let scatter_note = match analysis.fit(Predictor::PmAccuracy).and_then(|fit| fit.line) {
        Some(_) => String::new(),
        None => "No least-squares line is drawn at the top because it is undefined for these points.".to_string(),
    };
    let robustness = match &input.robustness {
        Some(robustness) => Some(robustness::render(robustness, &input.examples, out_dir)?),
        None => None,
    };
    let curation = match &input.curation {
        Some(curation) => Some(curation::render(curation, out_dir)?),
        None => None,
    };
    let data = content::ReportData {
        title: input.title.clone(),
        name: input.name.clone(),
        threshold: format!("{:.5}", analysis.threshold),
        summary: content::summary(analysis),
        regressions: content::regression_rows(analysis),
        config: input.config.clone(),
        scatter_note,
        runs: content::run_rows(input),
        heatmap: content::HeatmapData {
            run: heatmap_name,
            note: heatmap_note,
        },
        gaps_note: content::gaps_note(gaps.len()),
        gaps,
        provenance,
        robustness,
        curation,
    };

    let json = serde_json::to_string_pretty(&data).map_err(|error| ReportError::Io {
        path: out_dir.join(typst::DATA_FILE),
        source: std::io::Error::other(error),
    })?;
    let data_path = out_dir.join(typst::DATA_FILE);
    std::fs::write(&data_path, json + "\n").map_err(io(&data_path))?;
    let source_path = out_dir.join("report.typ");
    std::fs::write(&source_path, typst::SOURCE).map_err(io(&source_path))?;

    typst::compile(&typst_binary, out_dir, input.creation_timestamp)
}

/// Training examples shown in the heatmap, so that rows stay readable.
pub const HEATMAP_MAX_EXAMPLES: usize = 60;
