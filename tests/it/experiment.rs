//! Experiment files: strict parsing with located errors, `extends`, checks
//! against the data files. Also the fixture the cache and pipeline tests
//! share: a small GSM8k-style dataset, a stand-in GGUF file and a writer
//! for experiment files, all in a temporary folder.

use std::path::{Path, PathBuf};

use premem::experiment::{self, check_inputs, ExperimentError, Roots, Source};

/// A temporary project folder with `data/gsm8k/{train,test}.jsonl`,
/// `models/tiny.gguf` and `experiments/`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

/// Body of a valid training experiment over the fixture's files.
pub const BASE_EXPERIMENT: &str = r#"
[data]
format = "gsm8k"
train = "gsm8k/train.jsonl"
test = "gsm8k/test.jsonl"
train_subset = 8
test_subset = 4

[model]
path = "tiny.gguf"

[sweep]
learning_rate = [1e-5, 1e-4]
epochs = [2]

[sampling]
temperature = 0.8
"#;

impl Fixture {
    pub fn new(train_lines: usize) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Fixture { dir };
        std::fs::create_dir_all(fixture.path().join("data/gsm8k")).unwrap();
        std::fs::create_dir_all(fixture.path().join("models")).unwrap();
        std::fs::create_dir_all(fixture.path().join("experiments")).unwrap();
        fixture.write_data("train.jsonl", train_lines);
        fixture.write_data("test.jsonl", 10);
        let mut model = b"GGUF".to_vec();
        model.extend_from_slice(&[7u8; 1000]);
        std::fs::write(fixture.path().join("models/tiny.gguf"), model).unwrap();
        fixture
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn roots(&self) -> Roots {
        Roots {
            data: self.path().join("data"),
            models: self.path().join("models"),
        }
    }

    /// Writes `lines` GSM8k examples whose numbers depend on the file name.
    pub fn write_data(&self, name: &str, lines: usize) {
        let mut text = String::new();
        for i in 0..lines {
            let question = format!(
                "{name}: Tom has {i} apples and buys 2 more. How many apples does he have now?"
            );
            let answer = format!("He has {i} + 2 = {} apples.\n#### {}", i + 2, i + 2);
            text.push_str(&serde_json::json!({"question": question, "answer": answer}).to_string());
            text.push('\n');
        }
        std::fs::write(self.path().join("data/gsm8k").join(name), text).unwrap();
    }

    /// Writes `experiments/NAME` and returns its path.
    pub fn write_experiment(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join("experiments").join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Loads `text` as an experiment file and returns the error's message.
fn load_error(text: &str) -> String {
    let fixture = Fixture::new(10);
    let path = fixture.write_experiment("bad.toml", text);
    match experiment::load(&path) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn invalid_values_name_key_and_line() {
    // (replaced line of BASE_EXPERIMENT, replacement, key, expected text)
    let cases = [
        (
            "temperature = 0.8",
            "k_train = 0",
            "sampling.k_train",
            "expected an integer >= 1, found 0",
        ),
        (
            "temperature = 0.8",
            "top_p = 1.5",
            "sampling.top_p",
            "expected a number in (0, 1], found 1.5",
        ),
        (
            "temperature = 0.8",
            "top_p = 0.0",
            "sampling.top_p",
            "found 0",
        ),
        (
            "temperature = 0.8",
            "temperature = \"hot\"",
            "sampling.temperature",
            "found a string (\"hot\")",
        ),
        (
            "learning_rate = [1e-5, 1e-4]",
            "learning_rate = [-1e-5]",
            "sweep.learning_rate",
            "found -0.00001",
        ),
        (
            "epochs = [2]",
            "epochs = []",
            "sweep.epochs",
            "found an empty array",
        ),
        (
            "train_subset = 8",
            "train_subzet = 8",
            "data.train_subzet",
            "did you mean `data.train_subset`?",
        ),
        (
            "format = \"gsm8k\"",
            "format = \"aime\"",
            "data.format",
            "expected `gsm8k` or `math`",
        ),
        (
            "path = \"tiny.gguf\"",
            "path = \"tiny.gguf\"\nprecision = \"f16\"",
            "model.precision",
            "expected `f32` or `bf16`",
        ),
    ];
    for (original, replacement, key, expected) in cases {
        let text = BASE_EXPERIMENT.replace(original, replacement);
        let line = text
            .lines()
            .position(|l| l.starts_with(replacement.lines().last().unwrap()))
            .unwrap()
            + 1;
        let message = load_error(&text);
        assert!(
            message.contains(&format!("bad.toml:{line}:")),
            "{key}: {message}"
        );
        assert!(
            message.contains(&format!(": key `{key}`: expected ")),
            "{key}: {message}"
        );
        assert!(message.contains(expected), "{key}: {message}");
    }
}

#[test]
fn syntax_error_names_line() {
    let message = load_error("[data]\nformat = \"gsm8k\ntrain = 1\n");
    assert!(message.contains("bad.toml:2:"), "{message}");
    assert!(message.contains("invalid TOML"), "{message}");
}

#[test]
fn import_rejects_training_tables() {
    let text = format!("{BASE_EXPERIMENT}\n[import]\ndir = \"recorded\"\n");
    let message = load_error(&text);
    assert!(message.contains("key `model`"), "{message}");
    assert!(
        message.contains("no such table when `[import]` is set"),
        "{message}"
    );
}

#[test]
fn defaults_fill_missing_tables() {
    let fixture = Fixture::new(10);
    let path = fixture.write_experiment("plain.toml", BASE_EXPERIMENT);
    let experiment = experiment::load(&path).unwrap();
    let Source::Training(training) = &experiment.source else {
        panic!("expected a training experiment");
    };
    assert_eq!(experiment.name, "plain");
    assert!((experiment.scoring.threshold - 1.1055).abs() < 1e-3);
    assert_eq!(training.sampling.k_train, 5);
    assert_eq!(training.sampling.stop, vec!["\nDone.".to_string()]);
    assert_eq!(training.optimizer.batch_size, 8);
    assert_eq!(training.runs.len(), 2);
    assert_eq!(training.runs[0].data_fraction, 1.0);
    assert_eq!(experiment.report.examples, 12);
}

#[test]
fn math_threshold_default() {
    let fixture = Fixture::new(10);
    let text = BASE_EXPERIMENT.replace("format = \"gsm8k\"", "format = \"math\"");
    let experiment = experiment::load(&fixture.write_experiment("m.toml", &text)).unwrap();
    assert!((experiment.scoring.threshold - 1.2004).abs() < 1e-3);
}

#[test]
fn sweep_grid_and_runs_combine() {
    let fixture = Fixture::new(10);
    let text = format!(
        "{}\n[[sweep.runs]]\nlearning_rate = 3e-4\nepochs = 1\ndata_fraction = 0.5\n\n[[sweep.runs]]\nlearning_rate = 1e-5\nepochs = 2\n",
        BASE_EXPERIMENT.replace("[sampling]\ntemperature = 0.8\n", "")
    );
    let experiment = experiment::load(&fixture.write_experiment("s.toml", &text)).unwrap();
    let Source::Training(training) = &experiment.source else {
        panic!("expected a training experiment");
    };
    // Two grid runs plus one new explicit run; the second explicit run
    // repeats a grid run and is dropped.
    assert_eq!(training.runs.len(), 3);
    assert_eq!(training.runs[2].data_fraction, 0.5);
    assert_eq!(training.runs[2].name(), "lr3e-4_ep1_frac0.5_seed0");
}

#[test]
fn extends_overrides_key_by_key() {
    let fixture = Fixture::new(10);
    fixture.write_experiment(
        "base.toml",
        &format!("{BASE_EXPERIMENT}k_train = 3\ntop_p = 0.5\n"),
    );
    let child = fixture.write_experiment(
        "child.toml",
        "extends = \"base.toml\"\n[sampling]\ntop_p = 0.9\n",
    );
    let experiment = experiment::load(&child).unwrap();
    let Source::Training(training) = &experiment.source else {
        panic!("expected a training experiment");
    };
    assert_eq!(experiment.name, "child");
    assert_eq!(training.sampling.top_p, 0.9);
    assert_eq!(training.sampling.k_train, 3);
    assert_eq!(training.sampling.temperature, 0.8);
}

#[test]
fn extends_cycle_names_chain() {
    let fixture = Fixture::new(10);
    fixture.write_experiment("a.toml", "extends = \"b.toml\"\n");
    fixture.write_experiment("b.toml", "extends = \"a.toml\"\n");
    let error = experiment::load(&fixture.path().join("experiments/a.toml")).unwrap_err();
    assert!(matches!(error, ExperimentError::Cycle { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("a.toml -> "), "{message}");
    assert!(message.contains("b.toml -> "), "{message}");
}

#[test]
fn base_file_error_names_base() {
    let fixture = Fixture::new(10);
    fixture.write_experiment(
        "base.toml",
        &BASE_EXPERIMENT.replace("temperature = 0.8", "temperature = -1.0"),
    );
    let child =
        fixture.write_experiment("child.toml", "extends = \"base.toml\"\ntitle = \"child\"\n");
    let message = experiment::load(&child).unwrap_err().to_string();
    assert!(message.contains("base.toml:"), "{message}");
    assert!(message.contains("sampling.temperature"), "{message}");
}

#[test]
fn subset_larger_than_file() {
    let fixture = Fixture::new(5);
    let path = fixture.write_experiment("big.toml", BASE_EXPERIMENT);
    let experiment = experiment::load(&path).unwrap();
    let message = check_inputs(&experiment, &fixture.roots())
        .unwrap_err()
        .to_string();
    assert!(message.contains("key `data.train_subset`"), "{message}");
    assert!(message.contains("expected at most 5"), "{message}");
    assert!(message.contains("found 8"), "{message}");
}

#[test]
fn missing_model_names_key() {
    let fixture = Fixture::new(10);
    let text = BASE_EXPERIMENT.replace("tiny.gguf", "absent.gguf");
    let experiment = experiment::load(&fixture.write_experiment("m.toml", &text)).unwrap();
    let message = check_inputs(&experiment, &fixture.roots())
        .unwrap_err()
        .to_string();
    assert!(message.contains("key `model.path`"), "{message}");
    assert!(message.contains("does not exist"), "{message}");
}

#[test]
fn shipped_experiments_parse() {
    let dir = crate::helpers::repo_root().join("experiments");
    for name in [
        "gsm8k-smollm2.toml",
        "math-smollm2.toml",
        "kang2024-gsm8k.toml",
        "smoke-robustness.toml",
    ] {
        let result = experiment::load(&dir.join(name));
        assert!(result.is_ok(), "{name}: {:?}", result.err());
    }
}

#[test]
fn data_fraction_counts_prefix() {
    // (fraction, prepared examples, examples trained on)
    let cases = [
        (1.0, 64, 64),
        (0.5, 64, 32),
        (0.25, 10, 3),
        (0.01, 10, 1),
        (0.5, 1, 1),
    ];
    for (data_fraction, prepared, expected) in cases {
        let run = premem::experiment::RunConfig {
            learning_rate: 1e-5,
            epochs: 1,
            data_fraction,
            seed: 0,
        };
        assert_eq!(
            run.train_count(prepared),
            expected,
            "fraction {data_fraction} of {prepared}"
        );
    }
}
