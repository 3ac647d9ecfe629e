//! `premem score` end to end on the tiny fixture.

use std::process::Command;

use super::fixture_dir;

fn write_gsm8k(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("train.jsonl");
    let lines = [
        r#"{"question": "Tom has 12 apples.", "answer": "12 + 30 = 42\n#### 42"}"#,
        r#"{"question": "Betty has 5 dollars.", "answer": "The total is 5.\n#### 5"}"#,
        r#"{"question": "Find x.", "answer": "x = 7\n#### 7"}"#,
    ];
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn score_command_writes_csv() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_gsm8k(dir.path());
    let output = Command::new(env!("CARGO_BIN_EXE_premem"))
        .args([
            "-q",
            "score",
            "--format",
            "gsm8k",
            "--limit",
            "2",
            "--token-budget",
            "64",
        ])
        .arg("--model")
        .arg(fixture_dir("tiny_llama_tied"))
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "index,id,target_tokens,nll_mean,perplexity");
    assert_eq!(lines.len(), 3);
    let fields: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(fields[0], "0");
    let nll: f64 = fields[3].parse().unwrap();
    let perplexity: f64 = fields[4].parse().unwrap();
    assert!((nll.exp() - perplexity).abs() < 1e-6 * perplexity);
}

#[test]
fn score_command_missing_model_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_gsm8k(dir.path());
    let status = Command::new(env!("CARGO_BIN_EXE_premem"))
        .args(["-q", "score", "--format", "gsm8k"])
        .arg("--model")
        .arg(dir.path().join("absent.gguf"))
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&status.stderr).contains("absent.gguf"));
}
