//! Cache keys and entries: which stages share keys across experiments,
//! what changes a key and what does not, and atomic, locked entries.

use std::collections::BTreeMap;
use std::path::Path;

use premem::cache::{BuildOutcome, Cache, CacheError, DigestMemo, Manifest};
use premem::experiment;
use premem::stages::{Plan, StageKind};

use crate::experiment::{Fixture, BASE_EXPERIMENT};

/// Plans an experiment of the fixture; returns stage id -> key.
fn planned_keys(fixture: &Fixture, name: &str, text: &str) -> BTreeMap<String, String> {
    let path = fixture.write_experiment(name, text);
    let experiment = experiment::load(&path).unwrap();
    let plan = Plan::build(&experiment, &fixture.roots(), &mut DigestMemo::in_memory()).unwrap();
    plan.stages
        .into_iter()
        .map(|stage| (stage.id, stage.key))
        .collect()
}

/// Stage ids whose keys differ between two plans of the same stages.
fn changed_stages(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .filter(|(id, key)| b[*id] != **key)
        .map(|(id, _)| id.clone())
        .collect()
}

fn kind_of(id: &str) -> &str {
    id.split(' ').next().unwrap()
}

#[test]
fn shared_fine_tune_shares_key() {
    let fixture = Fixture::new(20);
    let first = planned_keys(&fixture, "first.toml", BASE_EXPERIMENT);
    let second_text = BASE_EXPERIMENT
        .replace(
            "learning_rate = [1e-5, 1e-4]",
            "learning_rate = [1e-4, 3e-4]",
        )
        .replace("temperature = 0.8", "temperature = 0.5");
    let second = planned_keys(
        &fixture,
        "second.toml",
        &format!("{second_text}\n[report]\nexamples = 3\n"),
    );

    let shared = "fine-tune lr1e-4_ep2_frac1_seed0";
    assert_eq!(first[shared], second[shared]);
    assert_eq!(first["prepare-data"], second["prepare-data"]);
    assert_ne!(
        first["fine-tune lr1e-5_ep2_frac1_seed0"],
        second["fine-tune lr3e-4_ep2_frac1_seed0"]
    );
}

#[test]
fn report_option_changes_report_only() {
    let fixture = Fixture::new(20);
    let before = planned_keys(&fixture, "a.toml", BASE_EXPERIMENT);
    let after = planned_keys(
        &fixture,
        "a.toml",
        &format!("{BASE_EXPERIMENT}\n[report]\nexamples = 3\n"),
    );
    assert_eq!(changed_stages(&before, &after), vec!["report".to_string()]);
}

#[test]
fn temperature_changes_downstream_only() {
    let fixture = Fixture::new(20);
    let before = planned_keys(&fixture, "a.toml", BASE_EXPERIMENT);
    let after = planned_keys(
        &fixture,
        "a.toml",
        &BASE_EXPERIMENT.replace("temperature = 0.8", "temperature = 0.7"),
    );
    let changed = changed_stages(&before, &after);

    for id in before.keys() {
        let kind = kind_of(id);
        let expected = ["sample", "score", "analyze", "report"].contains(&kind);
        assert_eq!(changed.contains(id), expected, "stage `{id}`");
    }
}

#[test]
fn float_spelling_keeps_keys() {
    let fixture = Fixture::new(20);
    let before = planned_keys(&fixture, "a.toml", BASE_EXPERIMENT);
    let spelled = BASE_EXPERIMENT
        .replace(
            "learning_rate = [1e-5, 1e-4]",
            "learning_rate = [0.00001, 1.0e-4]",
        )
        .replace("temperature = 0.8", "temperature = 8e-1");
    let after = planned_keys(&fixture, "a.toml", &spelled);
    assert_eq!(before, after);
}

#[test]
fn int_for_float_keeps_keys() {
    let fixture = Fixture::new(20);
    let with_float = BASE_EXPERIMENT.replace("temperature = 0.8", "temperature = 1.0");
    let with_int = BASE_EXPERIMENT.replace("temperature = 0.8", "temperature = 1");
    assert_eq!(
        planned_keys(&fixture, "a.toml", &with_float),
        planned_keys(&fixture, "a.toml", &with_int)
    );
}

#[test]
fn moved_and_touched_data_keeps_keys() {
    let first = Fixture::new(20);
    let second = Fixture::new(20);
    std::thread::sleep(std::time::Duration::from_millis(20));
    second.write_data("train.jsonl", 20);

    let keys_first = planned_keys(&first, "a.toml", BASE_EXPERIMENT);
    let keys_second = planned_keys(&second, "a.toml", BASE_EXPERIMENT);
    assert_ne!(first.path(), second.path());
    assert_eq!(keys_first, keys_second);
}

#[test]
fn data_content_changes_every_key() {
    let fixture = Fixture::new(20);
    let before = planned_keys(&fixture, "a.toml", BASE_EXPERIMENT);
    fixture.write_data("train.jsonl", 21);
    let after = planned_keys(&fixture, "a.toml", BASE_EXPERIMENT);
    assert_eq!(changed_stages(&before, &after).len(), before.len());
}

#[test]
fn digest_memo_rehashes_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.bin");
    let memo_path = dir.path().join("digests.json");
    std::fs::write(&file, b"first").unwrap();

    let mut memo = DigestMemo::load(&memo_path);
    let first = memo.digest(&file).unwrap();
    memo.save().unwrap();
    assert!(memo_path.is_file());

    // Same size, new content and modification time.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&file, b"other").unwrap();
    let mut reloaded = DigestMemo::load(&memo_path);
    let second = reloaded.digest(&file).unwrap();
    assert_ne!(first, second);
    assert_eq!(second, premem::cache::file_sha256(&file).unwrap());
}

fn write_output(dir: &Path) -> Result<(), CacheError> {
    std::fs::write(dir.join("out.txt"), b"done").map_err(|source| CacheError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

#[test]
fn build_then_hit() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), false).unwrap();
    let manifest = Manifest::new("demo", 1).param("x", 1usize);

    assert_eq!(
        cache.build(&manifest, write_output).unwrap(),
        BuildOutcome::Built
    );
    let entry = cache.entry_dir("demo", &manifest.key());
    assert!(entry.join("out.txt").is_file());
    assert!(entry.join("manifest.json").is_file());
    assert!(entry.join("complete.json").is_file());

    let again = cache.build(&manifest, |_: &Path| -> Result<(), CacheError> {
        panic!("must not rebuild")
    });
    assert_eq!(again.unwrap(), BuildOutcome::Hit);
    assert_eq!(cache.read_manifest("demo", &manifest.key()), Some(manifest));
}

#[test]
fn failed_build_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), false).unwrap();
    let manifest = Manifest::new("demo", 1);

    let result = cache.build(&manifest, |out: &Path| {
        write_output(out)?;
        Err(CacheError::Io {
            path: out.to_path_buf(),
            source: std::io::Error::other("stage failed"),
        })
    });
    assert!(result.is_err());
    assert!(cache.lookup("demo", &manifest.key()).is_none());
    assert!(!cache.entry_dir("demo", &manifest.key()).exists());
    assert_eq!(
        std::fs::read_dir(cache.root().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn open_sweeps_unfinished_entries() {
    let dir = tempfile::tempdir().unwrap();
    let leftover = dir.path().join("v1/tmp/demo-0123");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("half.txt"), b"half").unwrap();
    let work = dir.path().join("v1/work/fine-tune-0123");
    std::fs::create_dir_all(&work).unwrap();

    let _cache = Cache::open(dir.path(), false).unwrap();
    assert!(!leftover.exists());
    assert!(
        work.is_dir(),
        "resume state of fine-tuning must survive the sweep"
    );
}

#[test]
fn open_sweeps_entry_without_marker() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path(), false).unwrap();
    let manifest = Manifest::new("demo", 1);
    cache.build(&manifest, write_output).unwrap();
    let entry = cache.entry_dir("demo", &manifest.key());
    drop(cache);

    std::fs::remove_file(entry.join("complete.json")).unwrap();
    let reopened = Cache::open(dir.path(), false).unwrap();
    assert!(!entry.exists());
    assert!(reopened.lookup("demo", &manifest.key()).is_none());
}

#[test]
fn concurrent_builds_build_once() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = Manifest::new("demo", 1).param("slow", true);
    let builds = std::sync::atomic::AtomicUsize::new(0);

    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                let cache = Cache::open(dir.path(), false).unwrap();
                cache
                    .build(&manifest, |out: &Path| {
                        builds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(200));
                        write_output(out)
                    })
                    .unwrap();
            });
        }
    });
    assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn stage_names_round_trip() {
    for kind in StageKind::ALL {
        assert_eq!(kind.name().parse::<StageKind>().unwrap(), kind);
    }
    assert!("sampling".parse::<StageKind>().is_err());
}
