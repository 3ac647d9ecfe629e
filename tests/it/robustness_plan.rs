//! The `[robustness]` table: reading, and how its stages enter the plan
//! and the cache keys.

use std::collections::BTreeMap;

use premem::cache::DigestMemo;
use premem::experiment::{self, ExperimentError};
use premem::robustness::Perturbation;
use premem::stages::{Plan, StageKind};

use crate::experiment::{Fixture, BASE_EXPERIMENT};

const TWO_PERTURBATIONS: &str = r#"
[robustness]
run = "lr1e-4_ep2_frac1_seed0"
checkpoint = "epoch-1"
k = 3

[[robustness.perturbations]]
kind = "answer_prefix"
text = " First"

[[robustness.perturbations]]
kind = "typos"
rate = 0.1
seed = 0
"#;

fn plan_of(fixture: &Fixture, name: &str, text: &str) -> Plan {
    let path = fixture.write_experiment(name, text);
    let experiment = experiment::load(&path).unwrap();
    Plan::build(&experiment, &fixture.roots(), &mut DigestMemo::in_memory()).unwrap()
}

fn keys(plan: &Plan) -> BTreeMap<String, String> {
    plan.stages
        .iter()
        .map(|stage| (stage.id.clone(), stage.key.clone()))
        .collect()
}

fn load_error(fixture: &Fixture, text: &str) -> String {
    let path = fixture.write_experiment("bad.toml", text);
    match experiment::load(&path) {
        Err(error @ ExperimentError::Invalid { .. }) => error.to_string(),
        other => panic!("expected an invalid-value error, got {other:?}"),
    }
}

#[test]
fn robustness_reads_run_and_checkpoint() {
    let fixture = Fixture::new(20);
    let path = fixture.write_experiment("r.toml", &format!("{BASE_EXPERIMENT}{TWO_PERTURBATIONS}"));
    let config = experiment::load(&path).unwrap().robustness.unwrap();
    assert_eq!(config.run, 1);
    assert_eq!(config.epoch, 1);
    assert_eq!(config.k, 3);
    assert_eq!(config.perturbations.len(), 2);
    assert_eq!(config.perturbations[0].name, "prefix-first");
    assert_eq!(config.perturbations[1].name, "typos-0.1");
}

#[test]
fn robustness_defaults_two_prefixes() {
    let fixture = Fixture::new(20);
    let path = fixture.write_experiment("r.toml", &format!("{BASE_EXPERIMENT}\n[robustness]\n"));
    let config = experiment::load(&path).unwrap().robustness.unwrap();
    assert_eq!(config.run, 0);
    assert_eq!(config.epoch, 2);
    assert_eq!(config.k, 4);
    let kinds: Vec<Perturbation> = config
        .perturbations
        .into_iter()
        .map(|p| p.perturbation)
        .collect();
    assert_eq!(kinds, Perturbation::default_prefixes());
}

#[test]
fn robustness_bad_values_name_key() {
    let fixture = Fixture::new(20);
    // (replaced text, replacement, key named in the error)
    let cases = [
        (
            "run = \"lr1e-4_ep2_frac1_seed0\"",
            "run = \"nope\"",
            "robustness.run",
        ),
        (
            "checkpoint = \"epoch-1\"",
            "checkpoint = \"epoch-3\"",
            "robustness.checkpoint",
        ),
        (
            "kind = \"typos\"",
            "kind = \"shout\"",
            "robustness.perturbations.kind",
        ),
        ("rate = 0.1", "rate = 1.5", "robustness.perturbations.rate"),
        ("k = 3", "k = 0", "robustness.k"),
        (
            "rate = 0.1\nseed = 0",
            "rate = 0.1\nname = \"prefix-first\"",
            "robustness.perturbations.name",
        ),
    ];
    for (original, replacement, key) in cases {
        let text = format!(
            "{BASE_EXPERIMENT}{}",
            TWO_PERTURBATIONS.replace(original, replacement)
        );
        let message = load_error(&fixture, &text);
        assert!(message.contains(key), "{replacement}: {message}");
    }
}

#[test]
fn robustness_stages_read_chosen_checkpoint() {
    let fixture = Fixture::new(20);
    let plan = plan_of(
        &fixture,
        "r.toml",
        &format!("{BASE_EXPERIMENT}{TWO_PERTURBATIONS}"),
    );
    let ids: Vec<&str> = plan
        .stages
        .iter()
        .filter(|stage| stage.kind == StageKind::Robustness)
        .map(|stage| stage.id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "robustness lr1e-4_ep2_frac1_seed0 epoch-1 prefix-first",
            "robustness lr1e-4_ep2_frac1_seed0 epoch-1 typos-0.1",
        ]
    );
    let report = plan.stages.last().unwrap();
    let upstream_kinds: Vec<StageKind> = report
        .upstream
        .iter()
        .map(|&i| plan.stages[i].kind)
        .collect();
    assert_eq!(
        upstream_kinds
            .iter()
            .filter(|k| **k == StageKind::Robustness)
            .count(),
        2
    );
}

#[test]
fn perturbation_change_reruns_only_it() {
    let fixture = Fixture::new(20);
    let before = keys(&plan_of(
        &fixture,
        "a.toml",
        &format!("{BASE_EXPERIMENT}{TWO_PERTURBATIONS}"),
    ));
    let changed = TWO_PERTURBATIONS.replace("seed = 0", "seed = 5");
    let after = keys(&plan_of(
        &fixture,
        "b.toml",
        &format!("{BASE_EXPERIMENT}{changed}"),
    ));

    let differing: Vec<&str> = before
        .iter()
        .filter(|(id, key)| after.get(*id) != Some(key))
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        differing,
        [
            "report",
            "robustness lr1e-4_ep2_frac1_seed0 epoch-1 typos-0.1"
        ]
    );
}

#[test]
fn no_robustness_keeps_report_key() {
    let fixture = Fixture::new(20);
    let plain = keys(&plan_of(&fixture, "a.toml", BASE_EXPERIMENT));
    let with = keys(&plan_of(
        &fixture,
        "b.toml",
        &format!("{BASE_EXPERIMENT}{TWO_PERTURBATIONS}"),
    ));
    assert_ne!(plain["report"], with["report"]);
    assert_eq!(plain["analyze"], with["analyze"]);
    assert_eq!(plain.len() + 2, with.len());
}
