//! The pipeline through the `premem` binary: crash safety under SIGKILL,
//! fast no-change reruns, status, explain and gc, exit codes, and the
//! conversion of score-stage files into dynamics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use premem::experiment::RunConfig;
use premem::grade::Outcome;
use premem::stages::{collect_dynamics, ScoredRun};

use crate::experiment::{Fixture, BASE_EXPERIMENT};

/// `premem ARGS` run in `dir` with the default data, model and cache roots.
fn premem(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_premem"));
    command
        .current_dir(dir)
        .env_remove("PREMEM_DATA_DIR")
        .env_remove("PREMEM_MODEL_DIR")
        .env_remove("PREMEM_CACHE_DIR")
        .env_remove("PREMEM_TEST_PAUSE_BEFORE_COMMIT_MS")
        .env("RUST_LOG", "warn");
    command
}

fn run_ok(command: &mut Command) -> String {
    let output: Output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "premem failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The single entry folder of `stage` in a cache folder.
fn only_entry(cache: &Path, stage: &str) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(cache.join("v1").join(stage))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "entries of {stage}: {entries:?}");
    entries[0].clone()
}

fn prepare_until(dir: &Path, cache: &str) -> Command {
    let mut command = premem(dir);
    command.args([
        "report",
        "experiments/exp.toml",
        "--until",
        "prepare-data",
        "--cache-dir",
        cache,
    ]);
    command
}

#[test]
fn sigkill_then_rerun_matches() {
    let fixture = Fixture::new(3000);
    let text = BASE_EXPERIMENT.replace("train_subset = 8", "train_subset = 2500");
    fixture.write_experiment("exp.toml", &text);

    run_ok(&mut prepare_until(fixture.path(), "reference-cache"));
    let reference = only_entry(&fixture.path().join("reference-cache"), "prepare-data");

    // Pause every build after its outputs are written, then kill it there.
    let mut child = prepare_until(fixture.path(), "cache")
        .env("PREMEM_TEST_PAUSE_BEFORE_COMMIT_MS", "60000")
        .spawn()
        .unwrap();
    let tmp = fixture.path().join("cache/v1/tmp");
    let deadline = Instant::now() + Duration::from_secs(60);
    let building = loop {
        let found = std::fs::read_dir(&tmp)
            .ok()
            .and_then(|mut entries| entries.next())
            .map(|e| e.unwrap().path())
            .filter(|dir| dir.join("summary.json").is_file());
        if let Some(dir) = found {
            break dir;
        }
        assert!(
            Instant::now() < deadline,
            "the stage never reached its pause"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(building.is_dir());
    assert!(
        !fixture.path().join("cache/v1/prepare-data").exists()
            || std::fs::read_dir(fixture.path().join("cache/v1/prepare-data"))
                .unwrap()
                .count()
                == 0
    );

    let stdout = run_ok(&mut prepare_until(fixture.path(), "cache"));
    assert!(stdout.contains("0 stages reused, 1 built"), "{stdout}");
    assert!(
        !building.exists(),
        "the killed build's folder must be swept"
    );

    let rerun = only_entry(&fixture.path().join("cache"), "prepare-data");
    assert_eq!(rerun.file_name(), reference.file_name());
    for file in ["train.jsonl", "test.jsonl", "summary.json", "manifest.json"] {
        let expected = std::fs::read(reference.join(file)).unwrap();
        let actual = std::fs::read(rerun.join(file)).unwrap();
        assert!(expected == actual, "{file} differs after the rerun");
    }
}

#[test]
fn unchanged_rerun_is_fast() {
    let fixture = Fixture::new(50);
    fixture.write_experiment("exp.toml", BASE_EXPERIMENT);
    run_ok(&mut prepare_until(fixture.path(), "cache"));

    // The fastest of three reruns, because other tests load the same cores.
    let mut fastest = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let stdout = run_ok(&mut prepare_until(fixture.path(), "cache"));
        fastest = fastest.min(started.elapsed());
        assert!(stdout.contains("1 stages reused, 0 built"), "{stdout}");
    }
    assert!(
        fastest < Duration::from_secs(2),
        "the fastest rerun took {fastest:?}"
    );
}

#[test]
fn check_invalid_exits_two() {
    let fixture = Fixture::new(10);
    fixture.write_experiment(
        "exp.toml",
        &BASE_EXPERIMENT.replace("temperature = 0.8", "temperature = -1"),
    );
    let output = premem(fixture.path())
        .args(["check", "experiments/exp.toml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("experiments/exp.toml:"), "{stderr}");
    assert!(
        stderr.contains("key `sampling.temperature`: expected a number >= 0, found -1"),
        "{stderr}"
    );
}

#[test]
fn check_prints_plan() {
    let fixture = Fixture::new(10);
    fixture.write_experiment("exp.toml", BASE_EXPERIMENT);
    let stdout = run_ok(premem(fixture.path()).args(["check", "experiments/exp.toml"]));
    assert!(stdout.contains("runs: 2"), "{stdout}");
    assert!(
        stdout.contains("lr1e-5_ep2_frac1_seed0: checkpoints epoch-1, epoch-2"),
        "{stdout}"
    );
    // prepare-data, 2 runs x (fine-tune + 2 epochs x (2 samples + score)),
    // analyze, report
    assert!(stdout.contains("stages: 17"), "{stdout}");
    assert!(
        !fixture.path().join("cache").exists(),
        "check must not create the cache"
    );
}

#[test]
fn status_explain_after_change() {
    let fixture = Fixture::new(20);
    fixture.write_experiment("exp.toml", BASE_EXPERIMENT);
    run_ok(&mut prepare_until(fixture.path(), "cache"));

    let status = run_ok(premem(fixture.path()).args(["status", "experiments/exp.toml"]));
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("cached   prepare-data")),
        "{status}"
    );
    assert!(
        status.lines().any(|l| l.starts_with("missing  fine-tune")),
        "{status}"
    );
    assert!(status.contains("1 of 17 stages cached"), "{status}");

    fixture.write_experiment(
        "exp.toml",
        &BASE_EXPERIMENT.replace("train_subset = 8", "train_subset = 9"),
    );
    let explain =
        run_ok(premem(fixture.path()).args(["explain", "experiments/exp.toml", "prepare-data"]));
    assert!(explain.contains("would run"), "{explain}");
    assert!(
        explain.contains("parameter `train_subset`: cached [8], planned [9]"),
        "{explain}"
    );
}

#[test]
fn gc_removes_unreferenced_entries() {
    let fixture = Fixture::new(20);
    fixture.write_experiment("exp.toml", BASE_EXPERIMENT);
    run_ok(&mut prepare_until(fixture.path(), "cache"));
    let old_entry = only_entry(&fixture.path().join("cache"), "prepare-data");

    fixture.write_experiment(
        "exp.toml",
        &BASE_EXPERIMENT.replace("train_subset = 8", "train_subset = 9"),
    );
    run_ok(&mut prepare_until(fixture.path(), "cache"));

    let orphan_work = fixture
        .path()
        .join(format!("cache/v1/work/fine-tune-{}", "0".repeat(64)));
    std::fs::create_dir_all(&orphan_work).unwrap();

    let dry = run_ok(premem(fixture.path()).args(["gc", "--dry-run"]));
    assert!(dry.contains("would remove prepare-data"), "{dry}");
    assert!(
        dry.contains("would remove resume state of fine-tune 000000000000"),
        "{dry}"
    );
    assert!(dry.contains("2 entries"), "{dry}");
    assert!(orphan_work.is_dir());
    assert!(old_entry.is_dir());

    let real = run_ok(premem(fixture.path()).args(["gc"]));
    assert!(real.contains("removing prepare-data"), "{real}");
    assert!(!old_entry.exists());
    assert!(!orphan_work.exists());
    only_entry(&fixture.path().join("cache"), "prepare-data");
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn collect_dynamics_reads_score_files() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("score-epoch-1");
    std::fs::create_dir_all(&checkpoint).unwrap();
    write(
        &checkpoint.join("checkpoint.json"),
        r#"{"run": "r", "label": "epoch-1", "epoch": 1.0, "step": 4}"#,
    );
    write(
        &checkpoint.join("perplexities.csv"),
        "id,target_tokens,nll_mean,perplexity\nb,10,0.5,1.6487\na,12,0.01,1.01005\n",
    );
    // Rows out of sample order: outcomes must follow the sample index.
    write(
        &checkpoint.join("train.csv"),
        "id,sample,outcome\na,1,wrong\na,0,correct\nb,0,no_answer\nb,1,correct\n",
    );
    write(
        &checkpoint.join("test.csv"),
        "id,sample,outcome\nt2,0,correct\nt1,0,wrong\n",
    );

    let run = RunConfig {
        learning_rate: 1e-5,
        epochs: 1,
        data_fraction: 1.0,
        seed: 0,
    };
    let dynamics = collect_dynamics(&[ScoredRun {
        run,
        score_dirs: vec![checkpoint],
    }])
    .unwrap();

    let point = &dynamics.runs[0].checkpoints[0];
    assert_eq!(dynamics.runs[0].name, "lr1e-5_ep1_frac1_seed0");
    assert_eq!(point.step, 4);
    assert_eq!(point.train[0].id, "b");
    assert_eq!(
        point.train[0].outcomes,
        vec![Outcome::NoAnswer, Outcome::Correct]
    );
    assert_eq!(
        point.train[1].outcomes,
        vec![Outcome::Correct, Outcome::Wrong]
    );
    assert_eq!(point.train[1].target_tokens, Some(12));
    assert!((point.train[1].perplexity - 1.01005).abs() < 1e-9);
    assert_eq!(point.test[0].id, "t2");
    assert_eq!(point.test[1].outcomes, vec![Outcome::Wrong]);
}

#[test]
fn collect_dynamics_rejects_unknown_id() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("checkpoint.json"),
        r#"{"run": "r", "label": "epoch-1", "epoch": 1.0, "step": 4}"#,
    );
    write(
        &dir.path().join("perplexities.csv"),
        "id,target_tokens,nll_mean,perplexity\na,12,0.01,1.01005\n",
    );
    write(
        &dir.path().join("train.csv"),
        "id,sample,outcome\nz,0,correct\n",
    );
    write(&dir.path().join("test.csv"), "id,sample,outcome\n");

    let run = RunConfig {
        learning_rate: 1e-5,
        epochs: 1,
        data_fraction: 1.0,
        seed: 0,
    };
    let error = collect_dynamics(&[ScoredRun {
        run,
        score_dirs: vec![dir.path().to_path_buf()],
    }])
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("example `z` has no row in perplexities.csv"),
        "{error}"
    );
}

#[test]
fn stage_panic_names_stage() {
    let fixture = Fixture::new(20);
    fixture.write_experiment("exp.toml", BASE_EXPERIMENT);
    let output = premem(fixture.path())
        .args(["report", "experiments/exp.toml", "--until", "fine-tune"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    // The stand-in GGUF makes fine-tuning fail: by a `todo!()` panic until
    // the model runtime lands, by a load error after. Both must name the stage.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("stage `fine-tune lr1e-5_ep2_frac1_seed0` (key "),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(fixture.path().join("cache/v1/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn interrupt_stops_before_next_stage() {
    let fixture = Fixture::new(20);
    fixture.write_experiment("exp.toml", BASE_EXPERIMENT);
    let child = premem(fixture.path())
        .args(["report", "experiments/exp.toml", "--until", "fine-tune"])
        .env("PREMEM_TEST_PAUSE_BEFORE_COMMIT_MS", "3000")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let tmp = fixture.path().join("cache/v1/tmp");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&tmp)
        .map(|mut e| e.next().is_none())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the stage never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());

    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("interrupted before stage `fine-tune"),
        "{stderr}"
    );
    assert!(
        stderr.contains("rerun the same command to resume"),
        "{stderr}"
    );

    // prepare-data had finished writing, so it was kept and is reused.
    let rerun = run_ok(&mut prepare_until(fixture.path(), "cache"));
    assert!(rerun.contains("1 stages reused, 0 built"), "{rerun}");
}

/// Prepared train examples of the only prepare-data entry in `cache`.
fn prepared_train(fixture: &Fixture, cache: &str) -> Vec<premem::stages::PreparedExample> {
    let entry = only_entry(&fixture.path().join(cache), "prepare-data");
    premem::stages::read_prepared(&entry, premem::stages::Split::Train).unwrap()
}

#[test]
fn prepare_data_seeded_subset() {
    let fixture = Fixture::new(40);
    fixture.write_experiment("exp.toml", BASE_EXPERIMENT);
    run_ok(&mut prepare_until(fixture.path(), "cache-seed0"));
    let text = BASE_EXPERIMENT.replace("train_subset = 8", "train_subset = 8\nsubset_seed = 1");
    fixture.write_experiment("exp.toml", &text);
    run_ok(&mut prepare_until(fixture.path(), "cache-seed1"));

    let seed0 = prepared_train(&fixture, "cache-seed0");
    let seed1 = prepared_train(&fixture, "cache-seed1");
    assert_eq!(seed0.len(), 8);
    assert_eq!(seed1.len(), 8);
    let ids0: Vec<&str> = seed0.iter().map(|e| e.id.as_str()).collect();
    let ids1: Vec<&str> = seed1.iter().map(|e| e.id.as_str()).collect();
    assert_ne!(ids0, ids1);

    let first = &seed0[0];
    assert_eq!(first.prompt, format!("{}\nAnswer:", first.question));
    assert_eq!(first.target, format!(" {}\nDone.", first.solution));
}
