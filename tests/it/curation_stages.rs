//! The `[curation]` table: reading, its stages in the plan and their keys,
//! and a whole run with a tiny model from fine-tuning to the PDF section.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use premem::cache::DigestMemo;
use premem::curation::Strategy;
use premem::experiment::{self, ExperimentError, PoolSource, Roots};
use premem::report::curation::{strategy_curve, RoundResult};
use premem::stages::{Job, Plan, StageKind};

use crate::helpers::repo_root;

/// A synthetic experiment with a tiny model folder; `{curation}` is
/// replaced by the test's `[curation]` table.
const SYNTHETIC: &str = r#"
[data]
format = "gsm8k"

[data.synthetic]
train_count = 6
test_count = 4
seed = 0

[model]
path = "tiny"

[train]
batch_size = 4

[sweep]
learning_rate = [1e-3]
epochs = [2]

[sampling]
k_train = 2
k_test = 2
max_new_tokens = 8
batch_size = 16

[report]
examples = 4
"#;

const CURATION: &str = r#"
[curation]
pool = "synthetic"
per_seed = 2
add = [3, 3]
"#;

/// A folder with `models/tiny` (the tied tiny Llama with room for the
/// synthetic prompts) and `experiments/`.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("models/tiny");
        std::fs::create_dir_all(&model).unwrap();
        let fixture = repo_root().join("tests/fixtures/tiny_llama_tied");
        for name in ["model.safetensors", "tokenizer.json"] {
            std::fs::copy(fixture.join(name), model.join(name)).unwrap();
        }
        // The fixture allows 128 positions; synthetic questions need more,
        // and RoPE takes any position.
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture.join("config.json")).unwrap()).unwrap();
        config["max_position_embeddings"] = 1024.into();
        std::fs::write(model.join("config.json"), config.to_string()).unwrap();
        std::fs::create_dir_all(dir.path().join("experiments")).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Setup { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join("experiments").join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn roots(&self) -> Roots {
        Roots {
            data: self.path().join("data"),
            models: self.path().join("models"),
        }
    }

    fn plan(&self, name: &str, text: &str) -> Plan {
        let path = self.write(name, text);
        let experiment = experiment::load(&path).unwrap();
        Plan::build(&experiment, &self.roots(), &mut DigestMemo::in_memory()).unwrap()
    }

    fn load_error(&self, text: &str) -> String {
        let path = self.write("bad.toml", text);
        match experiment::load(&path) {
            Err(error @ ExperimentError::Invalid { .. }) => error.to_string(),
            other => panic!("expected an invalid-value error, got {other:?}"),
        }
    }

    fn premem(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_premem"));
        command
            .current_dir(self.path())
            .arg("--quiet")
            .env("PREMEM_CACHE_DIR", self.path().join("cache"))
            .env("PREMEM_DATA_DIR", self.path().join("data"))
            .env("PREMEM_MODEL_DIR", self.path().join("models"))
            .env_remove("RUST_LOG");
        command
    }
}

fn keys(plan: &Plan) -> BTreeMap<String, String> {
    plan.stages
        .iter()
        .map(|stage| (stage.id.clone(), stage.key.clone()))
        .collect()
}

#[test]
fn curation_defaults() {
    let setup = Setup::new();
    let path = setup.write("c.toml", &format!("{SYNTHETIC}{CURATION}"));
    let config = experiment::load(&path).unwrap().curation.unwrap();
    assert_eq!(config.pool, PoolSource::Synthetic { per_seed: 2, seed: 1 });
    assert_eq!(config.add, vec![3, 3]);
    assert_eq!(config.rounds(), 3);
    assert_eq!(config.strategies, vec![Strategy::Premem { threshold: 0.75 }, Strategy::Random]);
    assert_eq!(config.seeds, vec![0, 1]);
    assert_eq!(config.learning_rate, 1e-3);
    assert_eq!(config.epochs, 2);
}

#[test]
fn curation_bad_values_name_key() {
    let setup = Setup::new();
    // (replaced text of CURATION, replacement, expected parts of the error)
    let cases = [
        ("add = [3, 3]", "add = []", vec!["curation.add", "empty array"]),
        ("add = [3, 3]", "add = [3, 0]", vec!["curation.add", "found 0"]),
        ("per_seed = 2", "per_seed = 2\nstrategies = [\"premem\", \"best\"]", vec!["curation.strategies", "\"best\""]),
        ("per_seed = 2", "per_seed = 2\nstrategies = [\"random\", \"random\"]", vec!["each strategy once"]),
        ("per_seed = 2", "per_seed = 2\nseeds = [1, 1]", vec!["curation.seeds", "distinct"]),
        ("per_seed = 2", "per_seed = 2\nthreshold = 1.5", vec!["curation.threshold", "found 1.5"]),
        ("per_seed = 2", "per_seed = 2\nrounds = 3", vec!["curation.rounds", "known keys"]),
        ("pool = \"synthetic\"\nper_seed = 2", "pool = \"pool.jsonl\"\nper_seed = 2", vec!["curation.per_seed", "synthetic pool only"]),
    ];
    for (from, to, expected) in cases {
        let text = format!("{SYNTHETIC}{}", CURATION.replace(from, to));
        let error = setup.load_error(&text);
        for part in expected {
            assert!(error.contains(part), "`{to}`: {error}");
        }
    }
}

#[test]
fn synthetic_pool_needs_synthetic_data() {
    let setup = Setup::new();
    let files = SYNTHETIC.replace(
        "[data.synthetic]\ntrain_count = 6\ntest_count = 4\nseed = 0\n",
        "train = \"train.jsonl\"\ntest = \"test.jsonl\"\n",
    );
    let error = setup.load_error(&format!("{files}{CURATION}"));
    assert!(error.contains("curation.pool"), "{error}");
    assert!(error.contains("[data.synthetic]"), "{error}");
}

#[test]
fn round_one_is_the_sweep_run() {
    let setup = Setup::new();
    let plan = setup.plan("c.toml", &format!("{SYNTHETIC}{CURATION}"));
    let fine_tunes: Vec<_> = plan.stages.iter().filter(|s| s.kind == StageKind::FineTune).collect();
    // One sweep run (also round 1) and 2 strategies x 2 seeds x 2 later rounds.
    assert_eq!(fine_tunes.len(), 1 + 8);
    assert!(fine_tunes.iter().all(|s| s.id != "fine-tune curation round-1"));
    let round_one_eval = plan.stages.iter().find(|s| s.id == "curation-eval round-1").unwrap();
    let upstream_fine_tune = plan.upstream_of(plan.stages.iter().position(|s| s.id == round_one_eval.id).unwrap(), StageKind::FineTune).unwrap();
    assert_eq!(upstream_fine_tune.id, "fine-tune lr1e-3_ep2_frac1_seed0");

    // With different settings round 1 gets its own stage.
    let own = setup.plan("d.toml", &format!("{SYNTHETIC}{CURATION}epochs = 1\n"));
    assert!(own.stages.iter().any(|s| s.id == "fine-tune curation round-1"));
}

#[test]
fn changing_last_round_size_keeps_earlier_keys() {
    let setup = Setup::new();
    let before = keys(&setup.plan("a.toml", &format!("{SYNTHETIC}{CURATION}")));
    let after = keys(&setup.plan("b.toml", &format!("{SYNTHETIC}{}", CURATION.replace("add = [3, 3]", "add = [3, 5]"))));
    let changed: Vec<&String> = before.keys().filter(|id| before[*id] != after[*id]).collect();
    assert!(!changed.is_empty());
    for id in &changed {
        assert!(
            id.ends_with("round-2") && id.starts_with("curation-select") || id.ends_with("round-3") || id.as_str() == "report",
            "{id} changed"
        );
    }
    assert_eq!(before["curation-select premem seed0 round-1"], after["curation-select premem seed0 round-1"]);
    assert_eq!(before["fine-tune curation premem seed0 round-2"], after["fine-tune curation premem seed0 round-2"]);
}

#[test]
fn only_selections_that_read_statistics_get_dynamics() {
    let setup = Setup::new();
    let plan = setup.plan("c.toml", &format!("{SYNTHETIC}{CURATION}"));
    let premem_line = (0..4).find(|&l| matches!(plan.curation_line(l).0, Strategy::Premem { .. })).unwrap();
    let random_line = (0..4).find(|&l| matches!(plan.curation_line(l).0, Strategy::Random)).unwrap();
    assert!(plan.curation_needs_dynamics(1, None));
    assert!(plan.curation_needs_dynamics(2, Some(premem_line)));
    assert!(!plan.curation_needs_dynamics(2, Some(random_line)));
    assert!(!plan.curation_needs_dynamics(3, Some(premem_line)));
    let selects = plan
        .stages
        .iter()
        .filter(|s| matches!(s.job, Job::CurationSelect { .. }))
        .count();
    assert_eq!(selects, 4 * 2);
}

#[test]
fn curation_runs_to_report_and_reuses_cache() {
    if premem::report::typst::find_typst().is_none() {
        eprintln!("skipped: typst is not installed");
        return;
    }
    let setup = Setup::new();
    let text = format!("{SYNTHETIC}{CURATION}strategies = [\"premem\", \"random\", \"ifd\", \"length\", \"loss\"]\n");
    setup.write("cur.toml", &text);
    let run = || {
        let output = setup
            .premem()
            .args(["report", "experiments/cur.toml", "--reports-dir", "reports"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "premem report failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    run();

    let reports = setup.path().join("reports/cur");
    let rows = std::fs::read_to_string(reports.join("curation.csv")).unwrap();
    // Header, round 1, then 5 strategies x 2 seeds x 2 later rounds.
    assert_eq!(rows.lines().count(), 1 + 1 + 20, "{rows}");
    for line in rows.lines().skip(2) {
        let fields: Vec<&str> = line.split(',').collect();
        let expected_examples = match fields[0] {
            "2" => "9",
            "3" => "12",
            other => panic!("round {other}"),
        };
        assert_eq!(fields[3], expected_examples, "{line}");
        assert_eq!(fields[5], "8", "4 test problems x 2 samples: {line}");
    }
    let curve = std::fs::read_to_string(reports.join("curation_curve.csv")).unwrap();
    assert_eq!(curve.lines().count(), 1 + 5 * 3, "{curve}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("report.json")).unwrap()).unwrap();
    assert!(json["curation"]["efficiency"].as_str().unwrap().contains("premem"));
    // The untrained tiny model solves nothing, so every seed has PM 0 and
    // premem's filter passes every candidate.
    let notes = json["curation"]["notes"].to_string();
    assert!(notes.contains("premem seed 0, after round 1: chose the same candidates as random"), "{notes}");

    // A second run reuses every stage.
    let stdout = run();
    assert!(stdout.contains("0 built"), "{stdout}");
}

fn result(round: usize, strategy: Option<&str>, seed: Option<u64>, examples: usize, accuracy: f64) -> RoundResult {
    RoundResult {
        round,
        strategy: strategy.map(String::from),
        seed,
        train_examples: examples,
        test_accuracy: accuracy,
        test_samples: 10,
    }
}

#[test]
fn strategy_curve_averages_seeds() {
    let results = [
        result(1, None, None, 4, 0.1),
        result(2, Some("premem"), Some(0), 8, 0.2),
        result(2, Some("premem"), Some(1), 8, 0.4),
        result(2, Some("random"), Some(0), 8, 0.9),
    ];
    let curve = strategy_curve(&results, "premem");
    assert_eq!(curve.len(), 2);

    let (round, first, seeds) = curve[0];
    assert_eq!((round, first.examples, first.mean_accuracy, first.std, seeds), (1, 4.0, 0.1, 0.0, 1));

    let (round, second, seeds) = curve[1];
    assert_eq!((round, second.examples, seeds), (2, 8.0, 2));
    assert!((second.mean_accuracy - 0.3).abs() < 1e-12);
    // Sample standard deviation of 0.2 and 0.4.
    assert!((second.std - 0.02f64.sqrt()).abs() < 1e-12, "{}", second.std);
}

/// GSM8k-format lines with explicit ids `{prefix}{i}` and short questions
/// that fit the tiny model; `seed` adds a `seed_id` field.
fn gsm8k_lines(prefix: &str, count: usize, seed: impl Fn(usize) -> Option<String>) -> String {
    let mut text = String::new();
    for i in 0..count {
        let mut line = serde_json::json!({
            "id": format!("{prefix}{i}"),
            "question": format!("{prefix}{i}: Tom has {i} pens and gets 2. How many?"),
            "answer": format!("{i} + 2 = {}\n#### {}", i + 2, i + 2),
        });
        if let Some(seed_id) = seed(i) {
            line["seed_id"] = seed_id.into();
        }
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text
}

const FILE_POOL: &str = r#"
[data]
format = "gsm8k"
train = "train.jsonl"
test = "test.jsonl"
train_subset = 4

[model]
path = "tiny"

[train]
batch_size = 4

[sweep]
learning_rate = [1e-3]
epochs = [1]

[sampling]
k_train = 2
k_test = 2
max_new_tokens = 6
batch_size = 16

[curation]
pool = "pool.jsonl"
add = [2]
strategies = ["loss", "random"]
seeds = [0]
"#;

#[test]
fn pool_file_checked_before_running() {
    let setup = Setup::new();
    let data = setup.path().join("data");
    std::fs::write(data.join("train.jsonl"), gsm8k_lines("t", 6, |_| None)).unwrap();
    std::fs::write(data.join("test.jsonl"), gsm8k_lines("e", 3, |_| None)).unwrap();
    let path = setup.write("pool.toml", FILE_POOL);
    let experiment = experiment::load(&path).unwrap();

    let error = experiment::check_inputs(&experiment, &setup.roots()).unwrap_err().to_string();
    assert!(error.contains("curation.pool"), "{error}");
    assert!(error.contains("does not exist"), "{error}");

    // Line 2 lacks its seed_id.
    std::fs::write(data.join("pool.jsonl"), gsm8k_lines("c", 3, |i| (i != 1).then(|| "t0".to_string()))).unwrap();
    let error = experiment::check_inputs(&experiment, &setup.roots()).unwrap_err().to_string();
    assert!(error.contains("pool.jsonl:2"), "{error}");
    assert!(error.contains("seed_id"), "{error}");
}

#[test]
fn pool_file_keeps_base_seeds_only() {
    if premem::report::typst::find_typst().is_none() {
        eprintln!("skipped: typst is not installed");
        return;
    }
    let setup = Setup::new();
    let data = setup.path().join("data");
    std::fs::write(data.join("train.jsonl"), gsm8k_lines("t", 6, |_| None)).unwrap();
    std::fs::write(data.join("test.jsonl"), gsm8k_lines("e", 3, |_| None)).unwrap();
    // Two candidates per train example; only 4 of the 6 are in the base set.
    std::fs::write(data.join("pool.jsonl"), gsm8k_lines("c", 12, |i| Some(format!("t{}", i / 2)))).unwrap();
    setup.write("pool.toml", FILE_POOL);

    let output = setup
        .premem()
        .args(["report", "experiments/pool.toml", "--reports-dir", "reports"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let summaries: Vec<serde_json::Value> = walk(&setup.path().join("cache"))
        .into_iter()
        .filter(|p| p.ends_with("summary.json") && p.to_string_lossy().contains("curation-pool"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["candidates"], 8);
    assert_eq!(summaries[0]["dropped_seed_outside_base_set"], 4);
    assert_eq!(summaries[0]["dropped_as_test_questions"], 0);

    let rows = std::fs::read_to_string(setup.path().join("reports/pool/curation.csv")).unwrap();
    assert!(rows.lines().any(|l| l.starts_with("2,loss,0,6,")), "{rows}");
    assert!(rows.lines().any(|l| l.starts_with("2,random,0,6,")), "{rows}");
}

/// Lists every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
