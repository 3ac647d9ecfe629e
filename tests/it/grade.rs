//! Grader tests: the conformance table, every real reference graded against
//! itself, a property test for panics and time, and the `premem grade` CLI.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use premem::data::{load_jsonl, Format};
use premem::grade::{explain, grade, reference_answer, Outcome};

use crate::grade_cases::CASES;
use crate::helpers::shared_dir;

#[test]
fn conformance_table_rows_pass() {
    let mut failures = Vec::new();
    for (index, case) in CASES.iter().enumerate() {
        let explanation = explain(case.format, case.reference, case.sample);
        if explanation.outcome != case.expected {
            failures.push(format!(
                "row {index} ({}): expected {:?}, got {:?}; reference {:?} -> {:?}, sample {:?} -> {:?}",
                case.reason,
                case.expected,
                explanation.outcome,
                explanation.reference_extracted,
                explanation.reference_normalized,
                explanation.sample_extracted,
                explanation.sample_normalized,
            ));
        }
    }
    assert!(CASES.len() >= 80, "the table has only {} rows", CASES.len());
    assert!(
        failures.is_empty(),
        "{} failing rows:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Grades every reference of a training file against itself and returns
/// the descriptions of the rows that fail.
fn self_grade_failures(path: &Path, format: Format) -> (usize, Vec<String>) {
    let examples = load_jsonl(path, format).expect("the shared training file loads");
    let mut failures = Vec::new();
    for example in &examples {
        let answer = reference_answer(format, &example.solution);
        let outcome = grade(format, &example.solution, &example.solution);
        if answer.is_none() || outcome != Outcome::Correct {
            failures.push(format!(
                "line {}: answer {answer:?}, outcome {outcome:?}",
                example.line
            ));
        }
    }
    (examples.len(), failures)
}

#[test]
fn gsm8k_references_grade_themselves() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: no shared folder with GSM8k data beside the checkout");
        return;
    };
    let (count, failures) =
        self_grade_failures(&shared.join("data/gsm8k/train.jsonl"), Format::Gsm8k);
    eprintln!(
        "GSM8k train: {count} references, {} failing",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn math_references_grade_themselves() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: no shared folder with MATH data beside the checkout");
        return;
    };
    let path = shared.join("data/math/train.jsonl");
    let (count, failures) = self_grade_failures(&path, Format::Math);
    eprintln!("MATH train: {count} references, {} failing", failures.len());

    // Two MATH training solutions box nothing (`$\boxed{}$ primes`), so
    // they have no answer to grade against; any other failure is a bug.
    let empty_boxes = load_jsonl(&path, Format::Math)
        .expect("the shared training file loads")
        .iter()
        .filter(|example| example.solution.contains("\\boxed{}"))
        .count();
    assert_eq!(empty_boxes, 2, "rows with an empty box changed");
    assert_eq!(failures.len(), empty_boxes, "{}", failures.join("\n"));
}

/// Maximum time one `grade` call may take.
const CALL_LIMIT: Duration = Duration::from_millis(10);

/// Extra timings of a call that ran over [`CALL_LIMIT`].
const RETIMINGS: usize = 4;

/// Slowest call seen by the property tests, in nanoseconds; each new
/// maximum is printed (see it with `--nocapture`).
static SLOWEST_CALL_NANOS: AtomicU64 = AtomicU64::new(0);

/// Grades `text` as sample and as reference in both formats, and returns
/// the slowest of the four calls. A call over [`CALL_LIMIT`] is timed up to
/// [`RETIMINGS`] more times and the fastest run is kept, so that preemption
/// on a busy machine does not fail the test while a slow input still does.
fn slowest_grading(text: &str) -> Duration {
    let mut slowest = Duration::ZERO;
    for format in [Format::Gsm8k, Format::Math] {
        let calls: [(&str, &str); 2] = [("\\boxed{5} #### 5", text), (text, text)];
        for (reference, sample) in calls {
            let mut elapsed = time_grade(format, reference, sample);
            for _ in 0..RETIMINGS {
                if elapsed <= CALL_LIMIT {
                    break;
                }
                elapsed = elapsed.min(time_grade(format, reference, sample));
            }
            slowest = slowest.max(elapsed);
        }
    }
    let nanos = slowest.as_nanos() as u64;
    if SLOWEST_CALL_NANOS.fetch_max(nanos, Ordering::Relaxed) < nanos {
        eprintln!(
            "slowest grade call so far: {slowest:?} on {} input bytes",
            text.len()
        );
    }
    slowest
}

fn time_grade(format: Format, reference: &str, sample: &str) -> Duration {
    let start = Instant::now();
    let outcome = grade(format, reference, sample);
    let elapsed = start.elapsed();
    std::hint::black_box(outcome);
    elapsed
}

#[test]
fn adversarial_inputs_grade_quickly() {
    let repeated = |piece: &str| piece.repeat(10 * 1024 / piece.len());
    let cases = [
        repeated("The answer is "),
        repeated("answer: 1, a"),
        repeated("#### "),
        repeated("\\boxed{"),
        format!("\\boxed{{{}}}", repeated("\\text{")),
        format!("\\boxed{{{}}}", repeated("\\frac")),
        format!("\\boxed{{{}}}", repeated("1,")),
        format!("\\boxed{{{}}}", repeated("(")),
        format!("\\boxed{{{}}}", repeated("2^")),
        format!("\\boxed{{{}}}", &repeated("-")[..1500]),
        format!("\\boxed{{{}1}}", &repeated("\\sqrt{")[..1900]),
        repeated("**$"),
        format!("#### {}", repeated("$")),
        format!("\\boxed{{{}}}", repeated("**")),
        repeated("9,999 "),
    ];
    for text in cases {
        let slowest = slowest_grading(&text);
        assert!(slowest <= CALL_LIMIT, "{slowest:?} on {:?}...", &text[..40]);
    }
}

/// Pieces of LaTeX, numbers and answer markers that random inputs are built from.
const PIECES: &[&str] = &[
    "\\boxed{",
    "\\boxed ",
    "\\fbox{",
    "{",
    "}",
    "\\frac",
    "\\dfrac",
    "\\sqrt",
    "\\sqrt[",
    "^",
    "_",
    "1",
    "0",
    "9",
    "42",
    "3.5",
    ",",
    ".",
    "$",
    "$$",
    "\\%",
    "%",
    "####",
    "#### ",
    "\\left(",
    "\\right)",
    "\\text{",
    "\\mbox{",
    " and ",
    " or ",
    "(",
    ")",
    "[",
    "]",
    "-",
    "+",
    "*",
    "/",
    "\\pi",
    "\\cdot",
    "\\times",
    "x",
    "=",
    "\\{",
    "\\}",
    "**",
    "The answer is ",
    "Final Answer: ",
    "e",
    "E5",
    " ",
    "\n",
    "\\!",
    "{,}",
    "^\\circ",
    "\\infty",
    "\\",
    "\\[",
    "\\]",
    "1,000",
    "\u{2212}",
    "é",
    "\u{1F600}",
];

/// Builds a string from randomly chosen pieces.
fn pieces(max_count: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(PIECES), 0..max_count)
        .prop_map(|parts| parts.concat())
}

/// Cuts a string to at most `limit` bytes at a character boundary.
fn truncate(mut text: String, limit: usize) -> String {
    while text.len() > limit {
        text.pop();
    }
    text
}

/// Case counts per property test; 100,000 inputs in all.
const RANDOM_CASES: u32 = 40_000;
const NESTED_CASES: u32 = 20_000;
const EXPONENT_CASES: u32 = 20_000;
const LONG_CASES: u32 = 20_000;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(RANDOM_CASES))]

    #[test]
    fn random_latex_grades_quickly(text in pieces(60)) {
        let slowest = slowest_grading(&text);
        prop_assert!(slowest <= CALL_LIMIT, "{slowest:?} on {text:?}");
    }
}

proptest! {
    #![proptest_config(config(NESTED_CASES))]

    #[test]
    fn nested_braces_grade_quickly(
        depth in 1usize..3000,
        opener in proptest::sample::select(&["{", "\\frac{1}{", "\\sqrt{", "\\boxed{", "(", "\\text{", "-"][..]),
        closed in any::<bool>(),
    ) {
        let closer = if opener == "(" { ")" } else if opener == "-" { "" } else { "}" };
        let closing = if closed { closer.repeat(depth) } else { String::new() };
        let text = format!("\\boxed{{{}1{}}}", opener.repeat(depth), closing);
        let slowest = slowest_grading(&text);
        prop_assert!(slowest <= CALL_LIMIT, "{slowest:?} at depth {depth} with {opener:?}");
    }
}

proptest! {
    #![proptest_config(config(EXPONENT_CASES))]

    #[test]
    fn huge_exponents_grade_quickly(
        base in 0u32..100_000,
        exponent in any::<u64>(),
        levels in 1usize..40,
        braced in any::<bool>(),
    ) {
        let power = if braced {
            format!("{base}{}{exponent}{}", "^{10".repeat(levels), "}".repeat(levels))
        } else {
            format!("{base}{}", format!("^{exponent}").repeat(levels))
        };
        for text in [format!("\\boxed{{{power}}}"), format!("#### {power}")] {
            let slowest = slowest_grading(&text);
            prop_assert!(slowest <= CALL_LIMIT, "{slowest:?} on {text:?}");
        }
    }
}

proptest! {
    #![proptest_config(config(LONG_CASES))]

    #[test]
    fn long_inputs_grade_quickly(text in pieces(2500)) {
        let text = truncate(text, 10 * 1024);
        let slowest = slowest_grading(&text);
        prop_assert!(slowest <= CALL_LIMIT, "{slowest:?} on {} bytes", text.len());
    }
}

/// Runs the `premem` binary with arguments and returns (exit code, stdout, stderr).
fn premem(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_premem"))
        .args(args)
        .output()
        .expect("the premem binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn cli_prints_outcome_names() {
    let cases = [
        ("gsm8k", "#### 8,000", "The answer is 8000.", "correct\n"),
        ("gsm8k", "#### 72", "#### 71", "wrong\n"),
        ("math", "\\boxed{5}", "no idea", "no_answer\n"),
    ];
    for (format, reference, sample, expected) in cases {
        let (code, stdout, stderr) = premem(&[
            "grade",
            "--format",
            format,
            "--reference",
            reference,
            "--sample",
            sample,
        ]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(stdout, expected);
    }
}

#[test]
fn cli_explain_prints_answers() {
    let (code, stdout, stderr) = premem(&[
        "grade",
        "--format",
        "math",
        "--reference",
        "\\boxed{\\dfrac{1}{2}}",
        "--sample",
        "\\boxed{0.5}",
        "--explain",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "correct\nreference: \\frac{1}{2}\nsample: 0.5\n");
}

#[test]
fn cli_file_writes_jsonl() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("samples.jsonl");
    let lines = [
        r#####"{"id": "a", "reference": "#### 72", "sample": "#### 72"}"#####,
        "",
        r#####"{"id": "b", "reference": "#### 72", "sample": "no answer"}"#####,
    ];
    std::fs::write(&path, lines.join("\n")).expect("the input file is written");

    let (code, stdout, stderr) = premem(&[
        "grade",
        "--format",
        "gsm8k",
        "--file",
        path.to_str().unwrap(),
        "--explain",
    ]);
    assert_eq!(code, 0, "{stderr}");

    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["id"], "a");
    assert_eq!(records[0]["outcome"], "correct");
    assert_eq!(records[0]["sample_answer"], "72");
    assert_eq!(records[1]["outcome"], "no_answer");
    assert_eq!(records[1]["sample_answer"], serde_json::Value::Null);
}

#[test]
fn cli_file_names_bad_line() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("samples.jsonl");
    let lines = [
        r#####"{"reference": "#### 1", "sample": "#### 1"}"#####,
        r#####"{"reference": "#### 1"}"#####,
    ];
    std::fs::write(&path, lines.join("\n")).expect("the input file is written");

    let (code, _, stderr) = premem(&[
        "grade",
        "--format",
        "gsm8k",
        "--file",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("samples.jsonl:2"), "{stderr}");
    assert!(stderr.contains("`sample`"), "{stderr}");
}
