//! `premem analyze-dynamics`: the pre-memorization analysis of recorded
//! learning dynamics, printed as a per-run table and pooled R^2 values.

use std::path::PathBuf;

use anyhow::Context;

use crate::analysis::{self, format_r2, import, Analysis, AnalysisOptions, Predictor};
use crate::cli::InvalidInput;
use crate::data::{load_jsonl, Format};
use crate::report::{self, ExampleText, ReportInput};

/// PDF creation time of reports on recorded dynamics: the Unix epoch,
/// because the recorded files carry no date that survives copying.
const REPORT_TIMESTAMP: i64 = 0;

fn report_input(args: &Args, dynamics: analysis::Dynamics, analysis: Analysis) -> anyhow::Result<ReportInput> {
    let examples = match &args.train_data {
        Some(path) => load_jsonl(path, Format::Gsm8k)?
            .into_iter()
            .enumerate()
            .map(|(row, example)| ExampleText {
                id: row.to_string(),
                question: example.question,
                solution: example.solution,
            })
            .collect(),
        None => Vec::new(),
    };
    let name = args
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recorded".to_string());
    let config = vec![
        ("recorded dynamics".to_string(), name.clone()),
        ("runs".to_string(), dynamics.runs.len().to_string()),
        ("memorization threshold (perplexity)".to_string(), format!("{}", args.threshold)),
        (
            "sample files, in order of preference".to_string(),
            import::SAMPLE_FILE_PREFERENCE.join(", "),
        ),
    ];
    let provenance = vec![
        ("premem".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("command".to_string(), "premem analyze-dynamics".to_string()),
    ];
    Ok(ReportInput {
        title: format!("Pre-memorization analysis of {name}"),
        name,
        config,
        dynamics,
        analysis,
        examples,
        provenance,
        creation_timestamp: REPORT_TIMESTAMP,
        robustness: None,
        curation: None,
    })
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of recorded runs, named gsm8k_orig_{EPOCHS}epochs_{full|half|quarter}_lr{LR}_bs{BATCH}.
    pub dir: PathBuf,

    /// Memorization threshold on target perplexity; default exp(exp(-2.3)), the GSM8k value.
    #[arg(long, default_value_t = (-2.3f64).exp().exp())]
    pub threshold: f64,

    /// Print the whole analysis as JSON instead of tables.
    #[arg(long)]
    pub json: bool,

    /// Also render the PDF report, figures and CSV tables into this folder.
    #[arg(long, value_name = "OUT_DIR")]
    pub report: Option<PathBuf>,

    /// GSM8k train file (JSONL) whose rows the recorded ids index; its
    /// questions appear in the report's example table.
    #[arg(long, value_name = "FILE")]
    pub train_data: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !(args.threshold.is_finite() && args.threshold > 0.0) {
        return Err(InvalidInput(format!(
            "invalid --threshold {}: expected a positive perplexity such as 1.10546",
            args.threshold
        ))
        .into());
    }

    let dynamics = import::read_recorded(&args.dir)
        .map_err(|error| InvalidInput(error.to_string()))
        .with_context(|| format!("reading recorded dynamics from {}", args.dir.display()))?;
    let analysis = analysis::analyze(&dynamics, &AnalysisOptions::with_threshold(args.threshold));

    if let Some(out_dir) = &args.report {
        let input = report_input(&args, dynamics.clone(), analysis.clone())?;
        let pdf = report::render(&input, out_dir).context("rendering the report")?;
        eprintln!("wrote {}", pdf.display());
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&analysis)?);
    } else {
        print!("{}", format_tables(&analysis));
    }
    Ok(())
}

fn format_optional(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".to_string())
}

/// Formats the per-checkpoint table and the pooled regressions as plain text.
pub fn format_tables(analysis: &Analysis) -> String {
    let mut out = String::new();
    out.push_str(&format!("memorization threshold: perplexity < {:.5}\n\n", analysis.threshold));
    out.push_str(&format!(
        "{:<24} {:<16} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
        "run", "checkpoint", "epoch", "train", "test", "PM", "memo", "NLL"
    ));
    for row in &analysis.checkpoints {
        out.push_str(&format!(
            "{:<24} {:<16} {:>6.2} {:>8.4} {:>8} {:>8.4} {:>8.4} {:>8.4}\n",
            row.run,
            row.checkpoint,
            row.epoch,
            row.train_accuracy,
            format_optional(row.test_accuracy),
            row.pm_accuracy,
            row.fraction_memorized,
            row.train_nll,
        ));
    }

    out.push_str("\ntest accuracy regressed on each predictor, pooled over (run, checkpoint) points\n");
    out.push_str(&format!(
        "{:<32} {:>6} {:>12} {:>10} {:>10} {:>10} {:>10}\n",
        "predictor", "points", "R2 (y = x)", "slope", "intercept", "R2 (line)", "LORO MAE"
    ));
    for fit in &analysis.regressions {
        let (slope, intercept, r2_line) = match fit.line {
            Some(line) => (format!("{:.4}", line.slope), format!("{:.4}", line.intercept), line.r2),
            None => ("-".to_string(), "-".to_string(), None),
        };
        let identity = if fit.predictor.on_accuracy_scale() {
            format_r2(fit.r2_identity)
        } else {
            "n/a".to_string()
        };
        out.push_str(&format!(
            "{:<32} {:>6} {:>12} {:>10} {:>10} {:>10} {:>10}\n",
            fit.predictor.label(),
            fit.points,
            identity,
            slope,
            intercept,
            format_r2(r2_line),
            format_optional(fit.leave_one_run_out_mae),
        ));
    }
    if let Some(fit) = analysis.fit(Predictor::PmAccuracy) {
        if fit.r2_identity.is_none() {
            out.push_str("\nR2 is undefined: too few points, or test accuracy has no spread.\n");
        }
    }
    out
}
