//! `[data.synthetic]` in experiment files: strict reading with located
//! errors, prepare-data keys that hold the generator settings, and a
//! prepare-data run whose problems have the requested counts, disjoint
//! splits and reference solutions the GSM8k grader accepts.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use premem::cache::DigestMemo;
use premem::data::Format;
use premem::experiment::{self, DataSource};
use premem::grade::{grade, Outcome};
use premem::stages::{read_prepared, Plan, Split};

use crate::experiment::Fixture;

/// A training experiment on generated problems, with the fixture's model.
const SYNTH_EXPERIMENT: &str = r#"
[data.synthetic]
train_count = 24
test_count = 12
seed = 5
min_steps = 1
max_steps = 2
operations = ["add", "mul"]
max_value = 20

[model]
path = "tiny.gguf"

[sweep]
learning_rate = [1e-5, 1e-4]
epochs = [2]
"#;

/// Plans an experiment of the fixture and returns stage id -> key.
fn planned_keys(fixture: &Fixture, name: &str, text: &str) -> BTreeMap<String, String> {
    let path = fixture.write_experiment(name, text);
    let experiment = experiment::load(&path).unwrap();
    let plan = Plan::build(&experiment, &fixture.roots(), &mut DigestMemo::in_memory()).unwrap();
    plan.stages
        .into_iter()
        .map(|stage| (stage.id, stage.key))
        .collect()
}

fn load_error(text: &str) -> String {
    let fixture = Fixture::new(4);
    let path = fixture.write_experiment("bad.toml", text);
    match experiment::load(&path) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn synthetic_table_reads_settings() {
    let fixture = Fixture::new(4);
    let path = fixture.write_experiment("synth.toml", SYNTH_EXPERIMENT);
    let experiment = experiment::load(&path).unwrap();

    assert_eq!(experiment.data.format, Format::Gsm8k);
    let DataSource::Synthetic(synthetic) = &experiment.data.source else {
        panic!(
            "expected synthetic data, found {:?}",
            experiment.data.source
        );
    };
    assert_eq!(synthetic.train_count, 24);
    assert_eq!(synthetic.test_count, 12);
    assert_eq!(synthetic.generator.seed, 5);
    assert_eq!(synthetic.generator.max_steps, 2);
    assert_eq!(synthetic.generator.max_factor, 9);
}

#[test]
fn synthetic_errors_name_key_and_line() {
    // (replaced text of SYNTH_EXPERIMENT, replacement, key, expected text, line)
    let cases = [
        (
            "seed = 5",
            "seed = 5\ncount = 9",
            "data.synthetic.count",
            "use `train_count`",
            6,
        ),
        (
            "seed = 5",
            "seed = -1",
            "data.synthetic.seed",
            "expected an integer >= 0",
            5,
        ),
        (
            "max_steps = 2",
            "max_steps = 9",
            "data.synthetic.max_steps",
            "must lie in min_steps..=8",
            7,
        ),
        (
            "[\"add\", \"mul\"]",
            "[\"add\", \"pow\"]",
            "data.synthetic.operations",
            "found \"pow\"",
            8,
        ),
        (
            "[\"add\", \"mul\"]",
            "[\"add\", \"add\"]",
            "data.synthetic.operations",
            "distinct operations",
            8,
        ),
        (
            "test_count = 12",
            "test_count = 0",
            "data.synthetic.test_count",
            "found 0",
            4,
        ),
        (
            "train_count = 24\n",
            "",
            "data.synthetic.train_count",
            "the key is missing",
            2,
        ),
        (
            "[data.synthetic]",
            "[data]\ntrain = \"a.jsonl\"\n[data.synthetic]",
            "data.train",
            "generated problems replace data files",
            3,
        ),
        (
            "[data.synthetic]",
            "[data]\nformat = \"math\"\n[data.synthetic]",
            "data.format",
            "synthetic problems end in `#### N`",
            3,
        ),
    ];
    for (from, to, key, expected, line) in cases {
        let message = load_error(&SYNTH_EXPERIMENT.replacen(from, to, 1));
        assert!(
            message.contains(&format!("key `{key}`")),
            "{key}: {message}"
        );
        assert!(message.contains(expected), "{key}: {message}");
        assert!(
            message.contains(&format!("bad.toml:{line}:")),
            "{key}: {message}"
        );
    }
}

#[test]
fn synth_setting_reruns_every_stage() {
    let fixture = Fixture::new(4);
    let before = planned_keys(&fixture, "a.toml", SYNTH_EXPERIMENT);
    for (from, to) in [
        ("seed = 5", "seed = 6"),
        ("max_value = 20", "max_value = 21"),
        ("test_count = 12", "test_count = 13"),
        ("[\"add\", \"mul\"]", "[\"mul\", \"add\"]"),
        ("max_value = 20", "max_value = 20\nsurface_forms = 2"),
    ] {
        let after = planned_keys(&fixture, "a.toml", &SYNTH_EXPERIMENT.replacen(from, to, 1));
        let changed = before
            .iter()
            .filter(|(id, key)| after[*id] != **key)
            .count();
        assert_eq!(changed, before.len(), "{to}");
    }
}

#[test]
fn same_settings_share_keys() {
    let fixture = Fixture::new(4);
    let first = planned_keys(&fixture, "a.toml", SYNTH_EXPERIMENT);

    // Another file with the same settings, defaults written out and a
    // different name: only the report, which shows the name, differs.
    let spelled_out = SYNTH_EXPERIMENT.replacen(
        "max_value = 20",
        "max_value = 20\nmin_value = 2\nmax_factor = 9\nsurface_forms = 4",
        1,
    );
    let second = planned_keys(&fixture, "b.toml", &spelled_out);

    let differing: Vec<&String> = first
        .keys()
        .filter(|id| first[*id] != second[*id])
        .collect();
    assert_eq!(differing, vec!["report"]);
}

#[test]
fn prepare_data_generates_disjoint_splits() {
    let fixture = Fixture::new(4);
    fixture.write_experiment("exp.toml", SYNTH_EXPERIMENT);
    let output = Command::new(env!("CARGO_BIN_EXE_premem"))
        .current_dir(fixture.path())
        .args([
            "report",
            "experiments/exp.toml",
            "--until",
            "prepare-data",
            "--cache-dir",
            "cache",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let entries: Vec<_> = std::fs::read_dir(fixture.path().join("cache/v1/prepare-data"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1);
    let train = read_prepared(&entries[0], Split::Train).unwrap();
    let test = read_prepared(&entries[0], Split::Test).unwrap();
    assert_eq!(train.len(), 24);
    assert_eq!(test.len(), 12);

    let train_questions: BTreeSet<&str> = train.iter().map(|e| e.question.as_str()).collect();
    assert!(test
        .iter()
        .all(|e| !train_questions.contains(e.question.as_str())));

    for example in train.iter().chain(&test) {
        let family = example.extra.iter().find(|(key, _)| key == "family");
        assert!(family.is_some(), "{} has no family", example.id);
        assert!(example.extra.iter().any(|(key, _)| key == "variant"));
        assert_eq!(example.target, format!(" {}\nDone.", example.solution));
        assert_eq!(
            grade(Format::Gsm8k, &example.solution, &example.solution),
            Outcome::Correct,
            "{}",
            example.id
        );
    }
}

#[test]
fn check_prints_synthetic_summary() {
    let fixture = Fixture::new(4);
    fixture.write_experiment("exp.toml", SYNTH_EXPERIMENT);
    let output = Command::new(env!("CARGO_BIN_EXE_premem"))
        .current_dir(fixture.path())
        .args(["check", "experiments/exp.toml"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("24 train and 12 test problems generated with seed 5"),
        "{stdout}"
    );
    assert!(stdout.contains("1 to 2 steps of add, mul"), "{stdout}");
}

#[test]
fn synth_command_reads_experiment_counts() {
    let fixture = Fixture::new(4);
    fixture.write_experiment("exp.toml", SYNTH_EXPERIMENT);
    let output = Command::new(env!("CARGO_BIN_EXE_premem"))
        .current_dir(fixture.path())
        .args(["synth", "--config", "experiments/exp.toml"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.lines().count(), 36);
    assert!(stdout.starts_with("{\"id\":\"synth-5-00000\""), "{stdout}");
}
