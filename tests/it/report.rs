//! The PDF report: rendering from synthetic dynamics, text escaping,
//! determinism and the reference reproduction report.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use premem::analysis::dynamics::{CheckpointDynamics, Dynamics, RunDynamics, TestRecord, TrainRecord};
use premem::analysis::{analyze, format_r2, import, AnalysisOptions, Predictor};
use premem::grade::Outcome;
use premem::report::{render, typst, ExampleText, ReportInput};

use crate::helpers;

/// Text with every character that means something in Typst markup.
const NASTY: &str = r"Cost #1: $5 * 2_x @ref <lbl> \ [a] {b} `c` = ~d // e";

/// Checks that typst and pdftotext are installed, and prints why a test
/// skips when one is missing.
fn tools_present() -> bool {
    if typst::find_typst().is_none() {
        eprintln!("skipped: typst CLI not found");
        return false;
    }
    if Command::new("pdftotext").arg("-v").output().is_err() {
        eprintln!("skipped: pdftotext not found (poppler-utils)");
        return false;
    }
    true
}

fn pdf_text(pdf: &Path) -> String {
    let output = Command::new("pdftotext").arg("-layout").arg(pdf).arg("-").output().unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn page_count(pdf: &Path) -> usize {
    // pdftotext separates pages with form feeds.
    pdf_text(pdf).matches('\u{c}').count()
}

/// Builds three runs of 3 checkpoints, 20 training and 10 test examples,
/// where test accuracy rises with checkpoint and run. With `flat_test`, every
/// checkpoint has the same test accuracy.
fn synthetic(flat_test: bool) -> Dynamics {
    let runs = [(1e-5, 3.0, 0), (5e-5, 3.0, 1), (1e-4, 6.0, 2)];
    let runs = runs
        .iter()
        .map(|(lr, epochs, r)| {
            let checkpoints = (0..3)
                .map(|t| {
                    let train = (0..20)
                        .map(|i| {
                            let correct = ((i + t * (r + 1)) % 6).min(5);
                            let perplexity = if (i + t) % 4 == 0 { 1.05 } else { 1.3 + 0.01 * i as f64 };
                            TrainRecord {
                                id: format!("q{i}"),
                                outcomes: (0..5)
                                    .map(|k| if k < correct { Outcome::Correct } else { Outcome::Wrong })
                                    .collect(),
                                perplexity,
                                nll_mean: None,
                                target_tokens: None,
                            }
                        })
                        .collect();
                    let test_correct = if flat_test { 5 } else { 2 + t + r };
                    let test = (0..10)
                        .map(|i| TestRecord {
                            id: format!("t{i}"),
                            outcomes: vec![if i < test_correct { Outcome::Correct } else { Outcome::Wrong }],
                        })
                        .collect();
                    CheckpointDynamics {
                        label: format!("epoch-{}", t + 1),
                        epoch: (t + 1) as f64,
                        step: (t as u64 + 1) * 7,
                        train,
                        test,
                    }
                })
                .collect();
            RunDynamics {
                name: format!("run{r}"),
                learning_rate: Some(*lr),
                epochs: Some(*epochs),
                data_fraction: Some(1.0),
                params: BTreeMap::new(),
                checkpoints,
            }
        })
        .collect();
    Dynamics { runs }
}

fn input(dynamics: Dynamics) -> ReportInput {
    let options = AnalysisOptions {
        threshold: 1.1,
        threshold_grid: vec![1.02, 1.06, 1.1, 1.2, 1.4],
    };
    let analysis = analyze(&dynamics, &options);
    ReportInput {
        name: "synthetic".to_string(),
        title: format!("Synthetic {NASTY}"),
        config: vec![("note".to_string(), NASTY.to_string()), ("seed".to_string(), "7".to_string())],
        examples: (0..20)
            .map(|i| ExampleText {
                id: format!("q{i}"),
                question: format!("Question {i}: {NASTY}"),
                solution: "42".to_string(),
            })
            .collect(),
        provenance: vec![("premem".to_string(), "test".to_string())],
        dynamics,
        analysis,
        creation_timestamp: 1_700_000_000,
        robustness: None,
        curation: None,
    }
}

#[test]
fn synthetic_report_pages_and_values() {
    if !tools_present() {
        return;
    }
    let input = input(synthetic(false));
    let dir = tempfile::tempdir().unwrap();
    let pdf = render(&input, dir.path()).unwrap();

    assert!(pdf.is_file());
    assert_eq!(page_count(&pdf), 6);
    for file in ["scatter_pm.svg", "scatter_train.svg", "threshold_sweep.svg", "heatmap.svg", "per_example.csv"] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }

    let text = pdf_text(&pdf);
    let fit = input.analysis.fit(Predictor::PmAccuracy).unwrap();
    let identity = format_r2(fit.r2_identity);
    let line = format_r2(fit.line.unwrap().r2);
    assert!(fit.r2_identity.is_some());
    assert!(text.contains(&format!("R² = {identity}")), "{identity} not in PDF text");
    assert!(text.contains(&format!("R² = {line}")), "{line} not in PDF text");
}

#[test]
fn nasty_text_shown_verbatim() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pdf = render(&input(synthetic(false)), dir.path()).unwrap();

    // Layout may break lines, so compare with whitespace removed.
    let text: String = pdf_text(&pdf).split_whitespace().collect();
    let nasty: String = NASTY.split_whitespace().collect();
    assert!(text.contains(&format!("Synthetic{nasty}")), "title not verbatim");
    assert!(text.matches(nasty.as_str()).count() >= 2, "config or question text not verbatim");
}

#[test]
fn flat_test_accuracy_says_undefined() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pdf = render(&input(synthetic(true)), dir.path()).unwrap();

    let text: String = pdf_text(&pdf).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("is undefined for these points"), "no undefined sentence");
    assert!(!text.contains("NaN"));
}

#[test]
fn same_input_identical_pdf() {
    if !tools_present() {
        return;
    }
    let input = input(synthetic(false));
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = std::fs::read(render(&input, first.path()).unwrap()).unwrap();
    let b = std::fs::read(render(&input, second.path()).unwrap()).unwrap();
    assert!(a == b, "PDFs differ");
}

#[test]
fn reference_report_renders() {
    if !tools_present() {
        return;
    }
    let Some(shared) = helpers::shared_dir() else {
        eprintln!("skipped: no shared folder beside the checkout");
        return;
    };
    let reference = shared.join("reference/kang2024-llama3-gsm8k");
    if !reference.is_dir() {
        eprintln!("skipped: {} is missing", reference.display());
        return;
    }

    let dynamics = import::read_recorded(&reference).unwrap();
    let analysis = analyze(&dynamics, &AnalysisOptions::with_threshold((-2.3f64).exp().exp()));
    let input = ReportInput {
        name: "kang2024".to_string(),
        title: "Reference reproduction".to_string(),
        config: Vec::new(),
        dynamics,
        analysis,
        examples: Vec::new(),
        provenance: Vec::new(),
        creation_timestamp: 0,
        robustness: None,
        curation: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let pdf = render(&input, dir.path()).unwrap();

    let text = pdf_text(&pdf);
    assert!(text.contains("R² = 0.935"));
    assert!(text.contains("R² = 0.939"));
}

/// Robustness input over the 20 synthetic examples, where perturbed
/// accuracy rises with PM except for one fragile example.
fn robustness_input() -> premem::report::robustness::RobustnessInput {
    use premem::report::robustness::{ExampleAccuracy, PerturbedAccuracy, RobustnessInput};
    let examples = (0..20)
        .map(|i| {
            let pm = i as f64 / 19.0;
            ExampleAccuracy {
                id: format!("q{i}"),
                pm,
                accuracy: if i == 3 { 1.0 } else { pm },
                perturbed: if i == 3 { 0.0 } else { 0.1 + pm * 0.5 },
            }
        })
        .collect();
    RobustnessInput {
        run: "run0".to_string(),
        checkpoint: "epoch-3".to_string(),
        perturbations: vec![PerturbedAccuracy {
            name: "prefix-first".to_string(),
            label: "prefix: First".to_string(),
            examples,
        }],
    }
}

#[test]
fn robustness_section_shows_spearman() {
    if !tools_present() {
        return;
    }
    let mut input = input(synthetic(false));
    input.robustness = Some(robustness_input());
    let dir = tempfile::tempdir().unwrap();
    let pdf = render(&input, dir.path()).unwrap();
    let text = pdf_text(&pdf);

    // Ranks of the perturbed accuracies match PM except for q3, which
    // moves from rank 4 to rank 1: rho = 1 - 6 * sum d^2 / (n (n^2 - 1)).
    let d2 = 9.0 + 3.0 * 1.0;
    let rho = 1.0 - 6.0 * d2 / (20.0 * 399.0);
    assert!(text.contains("Robustness to prompt perturbations"), "{text}");
    assert!(text.contains(&format!("{rho:.3}")), "rho {rho:.3} missing");
    assert!(text.contains("q3"), "fragile example missing");
    let csv = std::fs::read_to_string(dir.path().join("robustness.csv")).unwrap();
    assert_eq!(csv.lines().count(), 21);
    assert!(dir.path().join("robustness_prefix-first.svg").is_file());
}

#[test]
fn report_without_robustness_omits_section() {
    if !tools_present() {
        return;
    }
    let input = input(synthetic(false));
    let dir = tempfile::tempdir().unwrap();
    let pdf = render(&input, dir.path()).unwrap();
    assert!(!pdf_text(&pdf).contains("Robustness to prompt"));
    assert!(!dir.path().join("robustness.csv").exists());
}
