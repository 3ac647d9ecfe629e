//! Experiment files: one TOML file describes the data, the model, the sweep
//! of fine-tuning runs and the settings of sampling, scoring, analysis and
//! the report. Reading is strict because every value ends up in a cache key:
//! a typo that fell back to a default would silently reuse the wrong
//! results.
//!
//! `extends = "base.toml"` (relative to the file) names a base file whose
//! tables this file overrides key by key; bases may extend further bases.
//! Every key, type and default is listed in `experiments/README.md`.

mod error;
mod inputs;
mod read;
mod read_curation;
mod read_robustness;
mod schema;
mod synthetic;
mod tree;
mod typed;

use std::path::{Path, PathBuf};

pub use error::{ExperimentError, Location};
pub use inputs::{check_inputs, examples_of, InputError, LoadedData, Roots};
pub use schema::*;

use tree::{Node, NodeKind};

/// Reads, merges (`extends`) and validates an experiment file. Data and
/// model files are not opened; [`check_inputs`] does that.
pub fn load(path: &Path) -> Result<Experiment, ExperimentError> {
    let mut chain = Vec::new();
    let root = load_merged(path, &mut chain)?;
    read::read_experiment(path, &root)
}

/// Loads `path` and its bases, child over base. `chain` contains the files
/// being loaded, to detect cycles.
fn load_merged(path: &Path, chain: &mut Vec<PathBuf>) -> Result<Node, ExperimentError> {
    let text = std::fs::read_to_string(path).map_err(|source| ExperimentError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let identity = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    chain.push(identity);

    let mut node = tree::parse_document(path, &text)?;
    let NodeKind::Table(table) = &mut node.kind else {
        unreachable!("a TOML document is a table");
    };

    let Some(extends) = table.remove("extends") else {
        chain.pop();
        return Ok(node);
    };
    let NodeKind::Str(base_name) = &extends.kind else {
        return Err(ExperimentError::invalid(
            &extends.location,
            "extends",
            "a path to a base experiment file",
            extends.kind.type_name(),
            None,
        ));
    };

    let base_path = path.parent().unwrap_or(Path::new(".")).join(base_name);
    let base_identity = std::fs::canonicalize(&base_path).unwrap_or_else(|_| base_path.clone());
    if let Some(start) = chain.iter().position(|p| *p == base_identity) {
        let mut names: Vec<String> = chain[start..]
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        names.push(base_identity.display().to_string());
        return Err(ExperimentError::Cycle {
            location: extends.location.clone(),
            chain: names.join(" -> "),
        });
    }
    if !base_path.is_file() {
        return Err(ExperimentError::invalid(
            &extends.location,
            "extends",
            "an existing base experiment file (relative to this file)",
            format!("{base_name:?}, and {} does not exist", base_path.display()),
            None,
        ));
    }

    let base = load_merged(&base_path, chain)?;
    chain.pop();
    Ok(tree::merge(base, node))
}
