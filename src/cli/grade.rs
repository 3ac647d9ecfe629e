//! `premem grade`: grades one sample, or every line of a JSONL file,
//! against a reference solution, to check the grader by hand.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value};

use crate::cli::InvalidInput;
use crate::data::Format;
use crate::grade::{explain, Explanation};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Answer format, which selects the extraction rules: gsm8k or math.
    #[arg(long)]
    format: Format,

    /// Full reference solution text (GSM8k: ends in `#### N`; MATH: holds
    /// a `\boxed{}` answer).
    #[arg(long, required_unless_present = "file", conflicts_with = "file")]
    reference: Option<String>,

    /// Generated completion text to grade.
    #[arg(long, required_unless_present = "file", conflicts_with = "file")]
    sample: Option<String>,

    /// JSONL file whose lines hold string fields `reference` and `sample`;
    /// each line is written to stdout with an added `outcome` field.
    #[arg(long)]
    file: Option<PathBuf>,

    /// Also print the extracted and normalized reference and sample answers.
    #[arg(long)]
    explain: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match (&args.file, &args.reference, &args.sample) {
        (Some(path), _, _) => grade_file(args.format, path, args.explain),
        (None, Some(reference), Some(sample)) => {
            let explanation = explain(args.format, reference, sample);
            print_one(&explanation, args.explain);
            Ok(())
        }
        _ => Err(InvalidInput("give --reference and --sample, or --file".into()).into()),
    }
}

/// Prints the outcome name and, when asked, the normalized answers (`-`
/// when none was found).
fn print_one(explanation: &Explanation, show_answers: bool) {
    println!("{}", explanation.outcome.name());
    if show_answers {
        let display = |answer: &Option<String>| answer.clone().unwrap_or_else(|| "-".into());
        println!("reference: {}", display(&explanation.reference_normalized));
        println!("sample: {}", display(&explanation.sample_normalized));
    }
}

/// Grades each non-blank line of a JSONL file and writes it back with the
/// outcome (and, when asked, the answers) added.
fn grade_file(format: Format, path: &Path, show_answers: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InvalidInput(format!("cannot read {}: {e}", path.display())))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());

    for (index, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let location = format!("{}:{}", path.display(), index + 1);
        let mut record =
            parse_record(raw).map_err(|message| InvalidInput(format!("{location}: {message}")))?;

        let reference = record["reference"].as_str().unwrap_or_default().to_string();
        let sample = record["sample"].as_str().unwrap_or_default().to_string();
        let explanation = explain(format, &reference, &sample);

        record.insert("outcome".into(), Value::from(explanation.outcome.name()));
        if show_answers {
            record.insert(
                "reference_answer".into(),
                Value::from(explanation.reference_normalized),
            );
            record.insert(
                "sample_answer".into(),
                Value::from(explanation.sample_normalized),
            );
        }
        let line = serde_json::to_string(&record).context("failed to encode an output line")?;
        writeln!(out, "{line}").context("failed to write to stdout")?;
    }
    out.flush().context("failed to write to stdout")?;
    Ok(())
}

/// Parses one line into a JSON object with string fields `reference` and
/// `sample`, or returns a message that names the problem.
fn parse_record(raw: &str) -> Result<Map<String, Value>, String> {
    let value: Value = serde_json::from_str(raw).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(record) = value else {
        return Err("expected a JSON object with fields `reference` and `sample`".into());
    };
    for field in ["reference", "sample"] {
        if !record.get(field).is_some_and(Value::is_string) {
            return Err(format!("missing string field `{field}`"));
        }
    }
    Ok(record)
}
