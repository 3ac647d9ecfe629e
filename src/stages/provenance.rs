//! Provenance rows of the report: what produced it. None of these go into
//! cache keys (see the `cache` module), so they are read at report time.

use std::path::Path;
use std::process::Command;

use crate::cache::LIBTORCH_BINDING;

use super::plan::Plan;

/// premem version, git revision, libtorch and typst versions, input
/// digests, seeds and the key of every stage.
pub fn provenance_rows(plan: &Plan) -> Vec<(String, String)> {
    let mut rows = vec![
        (
            "premem version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("git revision".to_string(), git_revision(Path::new("."))),
        ("libtorch binding".to_string(), LIBTORCH_BINDING.to_string()),
        ("typst version".to_string(), typst_version()),
    ];
    for (role, digest) in &plan.digests {
        rows.push((format!("sha256 of {role}"), digest.clone()));
    }

    let experiment = &plan.experiment;
    rows.push((
        "data subset seed".to_string(),
        experiment.data.subset_seed.to_string(),
    ));
    if let Some(training) = plan.training() {
        rows.push((
            "sampling seed".to_string(),
            training.sampling.seed.to_string(),
        ));
        let seeds: Vec<String> = training.runs.iter().map(|r| r.seed.to_string()).collect();
        rows.push(("fine-tune seeds".to_string(), seeds.join(", ")));
    }
    for stage in &plan.stages {
        rows.push((format!("key of {}", stage.id), stage.key[..12].to_string()));
    }
    rows
}

/// `git rev-parse HEAD` of the repository around `dir`, with `+dirty` when
/// `git status --porcelain` lists changes; `none` outside a repository.
pub fn git_revision(dir: &Path) -> String {
    let output = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match output(&["rev-parse", "HEAD"]) {
        None => "none".to_string(),
        Some(revision) => match output(&["status", "--porcelain"]) {
            Some(status) if !status.is_empty() => format!("{revision}+dirty"),
            _ => revision,
        },
    }
}

/// First line of `typst --version`, or `not installed`.
pub fn typst_version() -> String {
    Command::new("typst")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "not installed".to_string())
}
