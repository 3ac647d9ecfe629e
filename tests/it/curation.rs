//! Curation: pool validation, seeded selectors and the data-efficiency ratio.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use premem::curation::{
    data_efficiency, load_pool, select, Candidate, CurvePoint, NoRatio, SeedStats, Strategy, DEFAULT_PM_THRESHOLD,
};
use premem::data::{Example, Format};

fn write_pool(lines: &[&str]) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".jsonl").tempfile().unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    file
}

fn base_ids() -> BTreeSet<String> {
    ["s1", "s2"].into_iter().map(String::from).collect()
}

#[test]
fn pool_loads_with_known_seeds() {
    let file = write_pool(&[
        r#"{"id":"c1","question":"q","answer":"1\n#### 1","seed_id":"s1"}"#,
        r#"{"id":"c2","question":"q","answer":"1\n#### 2","seed_id":"s2"}"#,
    ]);
    let pool = load_pool(file.path(), Format::Gsm8k, &base_ids()).unwrap();
    assert_eq!(pool.len(), 2);
    assert_eq!(pool[1].id(), "c2");
    assert_eq!(pool[1].seed_id, "s2");
}

#[test]
fn pool_rejects_unknown_seed() {
    let file = write_pool(&[
        r#"{"id":"c1","question":"q","answer":"1\n#### 1","seed_id":"s1"}"#,
        "",
        r#"{"id":"c3","question":"q","answer":"1\n#### 3","seed_id":"s9"}"#,
    ]);
    let message = load_pool(file.path(), Format::Gsm8k, &base_ids()).unwrap_err().to_string();
    let location = format!("{}:3", file.path().display());
    assert!(message.contains(&location), "`{message}` lacks {location}");
    assert!(message.contains("s9"), "`{message}` lacks the seed id");
}

#[test]
fn pool_rejects_missing_seed_id() {
    let file = write_pool(&[
        r#"{"id":"c1","question":"q","answer":"1\n#### 1","seed_id":"s1"}"#,
        r#"{"id":"c2","question":"q","answer":"1\n#### 2"}"#,
    ]);
    let message = load_pool(file.path(), Format::Gsm8k, &base_ids()).unwrap_err().to_string();
    assert!(message.contains(&format!("{}:2", file.path().display())), "{message}");
    assert!(message.contains("seed_id"), "{message}");
}

/// Four seeds, two candidates each (`s1-a`, `s1-b`, ...):
///
/// | seed | pm   | ifd | length | final nll |
/// |------|------|-----|--------|-----------|
/// | s1   | 0.2  | 1.2 | 50     | 0.5       |
/// | s2   | 0.9  | 0.8 | 120    | 0.1       |
/// | s3   | 0.75 | 1.0 | 80     | 0.9       |
/// | s4   | 1.0  | 0.6 | 30     | 0.3       |
fn fixture() -> (Vec<Candidate>, BTreeMap<String, SeedStats>) {
    let rows = [
        ("s1", 0.2, 1.2, 50, 0.5),
        ("s2", 0.9, 0.8, 120, 0.1),
        ("s3", 0.75, 1.0, 80, 0.9),
        ("s4", 1.0, 0.6, 30, 0.3),
    ];
    let mut pool = Vec::new();
    let mut stats = BTreeMap::new();
    for (seed, pm, ifd, solution_length, final_nll) in rows {
        for suffix in ["a", "b"] {
            let id = format!("{seed}-{suffix}");
            pool.push(Candidate {
                example: Example {
                    id,
                    line: pool.len() + 1,
                    question: "q".into(),
                    solution: "#### 1".into(),
                    extra: vec![("seed_id".into(), seed.into())],
                },
                seed_id: seed.into(),
            });
        }
        stats.insert(seed.to_string(), SeedStats { pm, ifd, solution_length, final_nll });
    }
    (pool, stats)
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn premem() -> Strategy {
    Strategy::Premem { threshold: DEFAULT_PM_THRESHOLD }
}

#[test]
fn selectors_pick_hand_computed_sets() {
    let (pool, stats) = fixture();
    let cases = [
        // PM <= 0.75: s1 and s3.
        (premem(), 4, ids(&["s1-a", "s1-b", "s3-a", "s3-b"])),
        // Median IFD of 0.6, 0.8, 1.0, 1.2 is 0.9: s1 and s3.
        (Strategy::Ifd, 4, ids(&["s1-a", "s1-b", "s3-a", "s3-b"])),
        (Strategy::Length, 2, ids(&["s2-a", "s2-b"])),
        (Strategy::Loss, 2, ids(&["s3-a", "s3-b"])),
        (Strategy::Loss, 4, ids(&["s3-a", "s3-b", "s1-a", "s1-b"])),
        (Strategy::Random, 8, pool.iter().map(|c| c.id().to_string()).collect()),
    ];
    for (strategy, n, expected) in cases {
        let selection = select(&strategy, &pool, &stats, &BTreeSet::new(), n, 5).unwrap();
        let chosen: BTreeSet<String> = selection.ids.iter().cloned().collect();
        assert_eq!(selection.ids.len(), n, "{strategy:?}");
        assert_eq!(chosen, expected, "{strategy:?}");
        assert_eq!(selection.note, None, "{strategy:?}");
    }
}

#[test]
fn premem_fills_with_lowest_pm() {
    let (pool, stats) = fixture();
    let selection = select(&premem(), &pool, &stats, &BTreeSet::new(), 6, 1).unwrap();
    let chosen: BTreeSet<String> = selection.ids.iter().cloned().collect();
    assert_eq!(chosen, ids(&["s1-a", "s1-b", "s3-a", "s3-b", "s2-a", "s2-b"]));
    assert_eq!(&selection.ids[4..], ["s2-a", "s2-b"]);
    let note = selection.note.expect("a fill is reported");
    assert!(note.contains("4 candidates eligible"), "{note}");
}

#[test]
fn selection_skips_earlier_rounds() {
    let (pool, stats) = fixture();
    let excluded = ids(&["s1-a"]);
    let selection = select(&premem(), &pool, &stats, &excluded, 4, 2).unwrap();
    let chosen: BTreeSet<String> = selection.ids.iter().cloned().collect();
    assert_eq!(chosen, ids(&["s1-b", "s3-a", "s3-b", "s2-a"]));
    assert!(selection.note.is_some());
}

#[test]
fn selection_reports_exhausted_pool() {
    let (pool, stats) = fixture();
    let selection = select(&Strategy::Random, &pool, &stats, &ids(&["s4-a"]), 10, 0).unwrap();
    assert_eq!(selection.ids.len(), 7);
    assert!(selection.note.unwrap().contains("only 7 candidates remain"));
}

#[test]
fn random_selection_is_seeded() {
    let (pool, stats) = fixture();
    let draw = |seed| select(&Strategy::Random, &pool, &stats, &BTreeSet::new(), 3, seed).unwrap().ids;
    assert_eq!(draw(3), draw(3));
    let distinct: BTreeSet<Vec<String>> = (0..10).map(draw).collect();
    assert!(distinct.len() > 1, "ten seeds gave one selection");
}

#[test]
fn selection_rejects_missing_stats() {
    let (pool, mut stats) = fixture();
    stats.remove("s2");
    let message = select(&premem(), &pool, &stats, &BTreeSet::new(), 2, 0).unwrap_err().to_string();
    assert!(message.contains("s2"), "{message}");
}

/// Regression: the curation stages measure no statistics for `random`
/// lines, so `random` must select without them.
#[test]
fn random_selection_needs_no_stats() {
    let (pool, stats) = fixture();
    let with = select(&Strategy::Random, &pool, &stats, &BTreeSet::new(), 2, 5).unwrap();
    let without = select(&Strategy::Random, &pool, &BTreeMap::new(), &BTreeSet::new(), 2, 5).unwrap();
    assert_eq!(with, without);
}

#[test]
fn strategy_reads_from_toml() {
    let parsed: Strategy = toml::from_str("name = \"premem\"").unwrap();
    assert_eq!(parsed, premem());
    let parsed: Strategy = toml::from_str("name = \"premem\"\nthreshold = 0.5").unwrap();
    assert_eq!(parsed, Strategy::Premem { threshold: 0.5 });
    let parsed: Strategy = toml::from_str("name = \"ifd\"").unwrap();
    assert_eq!(parsed, Strategy::Ifd);
    assert!(toml::from_str::<Strategy>("name = \"premem\"\nthreshhold = 0.5").is_err());
    assert!(toml::from_str::<Strategy>("name = \"best\"").is_err());
}

fn curve(points: &[(f64, f64)]) -> Vec<CurvePoint> {
    points
        .iter()
        .map(|&(examples, mean_accuracy)| CurvePoint { examples, mean_accuracy, std: 0.01 })
        .collect()
}

#[test]
fn efficiency_interpolates_premem_size() {
    // Target 0.35 at 400 random examples; premem crosses it between
    // (200, 0.33) and (400, 0.40): 200 + 200 * 2/7 = 1800/7, ratio 14/9.
    let random = curve(&[(100.0, 0.20), (200.0, 0.30), (400.0, 0.35)]);
    let premem = curve(&[(400.0, 0.40), (100.0, 0.25), (200.0, 0.33)]);
    let result = data_efficiency(&premem, &random).unwrap();
    assert!((result.target_accuracy - 0.35).abs() < 1e-12);
    assert_eq!(result.random_examples, 400.0);
    assert!((result.premem_examples - 1800.0 / 7.0).abs() < 1e-9, "{}", result.premem_examples);
    assert!((result.ratio - 14.0 / 9.0).abs() < 1e-12, "{}", result.ratio);
}

#[test]
fn efficiency_hand_computed_cases() {
    // (premem, random, premem examples, ratio)
    let cases = [
        // Premem's first point already beats the target.
        (vec![(50.0, 0.5)], vec![(100.0, 0.3), (400.0, 0.4)], 50.0, 8.0),
        // Random peaks before its last point: target 0.4 at 200.
        (vec![(100.0, 0.2), (300.0, 0.6)], vec![(100.0, 0.3), (200.0, 0.4), (400.0, 0.38)], 200.0, 1.0),
        // Exactly equal accuracy counts as reached.
        (vec![(100.0, 0.1), (150.0, 0.4)], vec![(300.0, 0.4)], 150.0, 2.0),
    ];
    for (premem, random, examples, ratio) in cases {
        let result = data_efficiency(&curve(&premem), &curve(&random)).unwrap();
        assert!((result.premem_examples - examples).abs() < 1e-9, "{premem:?}: {}", result.premem_examples);
        assert!((result.ratio - ratio).abs() < 1e-9, "{premem:?}: {}", result.ratio);
    }
}

#[test]
fn efficiency_none_with_reason() {
    let random = curve(&[(100.0, 0.3), (200.0, 0.35)]);

    let never = data_efficiency(&curve(&[(100.0, 0.1), (200.0, 0.2)]), &random).unwrap_err();
    assert_eq!(never, NoRatio::NeverReached { target: 0.35, premem_best: 0.2 });
    assert!(never.to_string().contains("never reaches"));

    let empty = data_efficiency(&[], &random).unwrap_err();
    assert_eq!(empty, NoRatio::EmptyCurve { strategy: "premem" });

    let invalid = data_efficiency(&curve(&[(100.0, f64::NAN)]), &random).unwrap_err();
    assert_eq!(invalid, NoRatio::InvalidPoint { strategy: "premem", index: 0 });

    let zero = data_efficiency(&curve(&[(0.0, 0.9)]), &random).unwrap_err();
    assert_eq!(zero, NoRatio::ZeroExamples);
}
