//! Import of learning dynamics recorded by other tools, in the layout of
//! the GSM8k runs published with Kang et al. 2024 (arXiv 2411.07681):
//!
//! ```text
//! DIR/gsm8k_orig_{EPOCHS}epochs_{full|half|quarter}_lr{LR}_bs{BATCH}/
//!     subsample_idxs.npy              rows of the train file this run trained on
//!     checkpoint-{STEP}/
//!         train_perplexities.npy      float, [train rows]
//!         train_answer_types{K}_seed2[_temp0.8].npy   int, [train rows, K]
//!         test_answer_types{K}_seed2[_temp0.8].npy    int, [test rows, K]
//!         train_num_tokens.npy        int, [train rows] (optional)
//! ```
//!
//! Outcome codes are 0 = correct, 1 = wrong, 2 = no answer. Example ids are
//! row indices of the GSM8k train and test files, as strings;
//! [`read_recorded_with_ids`] replaces them with dataset ids.

use std::path::{Path, PathBuf};

use super::dynamics::{CheckpointDynamics, Dynamics, RunDynamics, TestRecord, TrainRecord};
use super::npy::{read_npy, NpyError};
use crate::grade::Outcome;

/// Prefix of run folders; other entries of the directory are ignored.
const RUN_PREFIX: &str = "gsm8k_orig_";

/// Sample files in order of preference: where a checkpoint has several, the
/// published analysis used the first present.
pub const SAMPLE_FILE_PREFERENCE: [&str; 5] = [
    "types5_seed2_temp0.8",
    "types50_seed2_temp0.8",
    "types5_seed2",
    "types50_seed2",
    "types10_seed2_temp0.8",
];

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Npy(#[from] NpyError),
    #[error("{path}: no run folders named {RUN_PREFIX}{{EPOCHS}}epochs_{{full|half|quarter}}_lr{{LR}}_bs{{BATCH}}")]
    NoRuns { path: PathBuf },
    #[error("{path}: run folder name is invalid ({reason}); expected {RUN_PREFIX}{{EPOCHS}}epochs_{{full|half|quarter}}_lr{{LR}}_bs{{BATCH}}")]
    RunName { path: PathBuf, reason: String },
    #[error("{path}: no checkpoint-{{STEP}} folders")]
    NoCheckpoints { path: PathBuf },
    #[error("{path}: no {split}_answer_*.npy file; expected one of {SAMPLE_FILE_PREFERENCE:?}")]
    NoSamples { path: PathBuf, split: &'static str },
    #[error("{path}: {message}")]
    Inconsistent { path: PathBuf, message: String },
}

/// Sweep parameters parsed from a run folder name.
#[derive(Debug, Clone, PartialEq)]
pub struct RunName {
    pub epochs: f64,
    /// `full`, `half` or `quarter`.
    pub subset: String,
    pub data_fraction: f64,
    /// The learning rate as written in the folder name, e.g. `2e-05`.
    pub learning_rate_text: String,
    pub learning_rate: f64,
    pub batch_size: u64,
}

/// Parses `gsm8k_orig_{EPOCHS}epochs_{full|half|quarter}_lr{LR}_bs{BATCH}`.
pub fn parse_run_name(path: &Path, name: &str) -> Result<RunName, ImportError> {
    let invalid = |reason: &str| ImportError::RunName {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let rest = name.strip_prefix(RUN_PREFIX).ok_or_else(|| invalid("missing prefix"))?;
    let parts: Vec<&str> = rest.split('_').collect();
    let [epochs, subset, lr, batch] = parts.as_slice() else {
        return Err(invalid("expected 4 fields after the prefix"));
    };

    let epochs: f64 = epochs
        .strip_suffix("epochs")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| invalid("epochs field is not {N}epochs"))?;
    let data_fraction = match *subset {
        "full" => 1.0,
        "half" => 0.5,
        "quarter" => 0.25,
        _ => return Err(invalid("subset is not full, half or quarter")),
    };
    let learning_rate_text = lr.strip_prefix("lr").ok_or_else(|| invalid("learning rate field is not lr{LR}"))?;
    let learning_rate: f64 = learning_rate_text
        .parse()
        .map_err(|_| invalid("learning rate is not a number"))?;
    let batch_size: u64 = batch
        .strip_prefix("bs")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| invalid("batch size field is not bs{N}"))?;

    Ok(RunName {
        epochs,
        subset: subset.to_string(),
        data_fraction,
        learning_rate_text: learning_rate_text.to_string(),
        learning_rate,
        batch_size,
    })
}

fn list_dir(path: &Path) -> Result<Vec<(String, PathBuf)>, ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.path().is_dir() {
            entries.push((entry.file_name().to_string_lossy().into_owned(), entry.path()));
        }
    }
    entries.sort();
    Ok(entries)
}

/// Reads every run under `dir`, runs sorted by folder name, checkpoints by
/// step. Train and test ids are row indices in the GSM8k train and test
/// files. Half and quarter runs keep only the rows in `subsample_idxs.npy`.
pub fn read_recorded(dir: &Path) -> Result<Dynamics, ImportError> {
    let mut runs = Vec::new();
    for (name, path) in list_dir(dir)? {
        if name.starts_with(RUN_PREFIX) {
            runs.push(read_run(&path, &name)?);
        }
    }
    if runs.is_empty() {
        return Err(ImportError::NoRuns { path: dir.to_path_buf() });
    }
    Ok(Dynamics { runs })
}

/// Like [`read_recorded`], with row `i` of the train (test) file named
/// `train_ids[i]` (`test_ids[i]`), e.g. the ids of `data::load_jsonl`.
pub fn read_recorded_with_ids(dir: &Path, train_ids: &[String], test_ids: &[String]) -> Result<Dynamics, ImportError> {
    let mut dynamics = read_recorded(dir)?;
    let relabel = |id: &mut String, ids: &[String], split: &str| -> Result<(), ImportError> {
        let row: usize = id.parse().expect("imported ids are row indices");
        *id = ids
            .get(row)
            .ok_or_else(|| ImportError::Inconsistent {
                path: dir.to_path_buf(),
                message: format!("{split} row {row} is beyond the {} ids given", ids.len()),
            })?
            .clone();
        Ok(())
    };

    for checkpoint in dynamics.runs.iter_mut().flat_map(|run| run.checkpoints.iter_mut()) {
        for record in &mut checkpoint.train {
            relabel(&mut record.id, train_ids, "train")?;
        }
        for record in &mut checkpoint.test {
            relabel(&mut record.id, test_ids, "test")?;
        }
    }
    Ok(dynamics)
}

fn read_run(path: &Path, folder: &str) -> Result<RunDynamics, ImportError> {
    let name = parse_run_name(path, folder)?;

    let mut checkpoint_dirs: Vec<(u64, String, PathBuf)> = Vec::new();
    for (entry, entry_path) in list_dir(path)? {
        if let Some(step) = entry.strip_prefix("checkpoint-").and_then(|s| s.parse().ok()) {
            checkpoint_dirs.push((step, entry, entry_path));
        }
    }
    checkpoint_dirs.sort();
    if checkpoint_dirs.is_empty() {
        return Err(ImportError::NoCheckpoints { path: path.to_path_buf() });
    }

    let subsample_path = path.join("subsample_idxs.npy");
    let rows: Option<Vec<i64>> = if subsample_path.exists() {
        Some(read_npy(&subsample_path)?.into_ints_1d(&subsample_path)?)
    } else {
        None
    };

    // Checkpoints are saved at evenly spaced epochs ending at the last, e.g.
    // every second epoch of a 12-epoch run, so checkpoint i of n is at
    // epoch EPOCHS * (i + 1) / n.
    let count = checkpoint_dirs.len();
    let mut checkpoints = Vec::with_capacity(count);
    for (i, (step, label, checkpoint_path)) in checkpoint_dirs.into_iter().enumerate() {
        let mut checkpoint = read_checkpoint(&checkpoint_path, rows.as_deref())?;
        checkpoint.label = label;
        checkpoint.step = step;
        checkpoint.epoch = name.epochs * (i + 1) as f64 / count as f64;
        checkpoints.push(checkpoint);
    }

    let mut params = std::collections::BTreeMap::new();
    params.insert("folder".to_string(), folder.to_string());
    params.insert("batch_size".to_string(), name.batch_size.to_string());
    params.insert("subset".to_string(), name.subset.clone());

    Ok(RunDynamics {
        name: format!("lr{}_ep{}_{}", name.learning_rate_text, name.epochs, name.subset),
        learning_rate: Some(name.learning_rate),
        epochs: Some(name.epochs),
        data_fraction: Some(name.data_fraction),
        params,
        checkpoints,
    })
}

/// Finds the preferred `{split}_answer_*.npy` file of a checkpoint.
fn sample_file(dir: &Path, split: &'static str) -> Result<PathBuf, ImportError> {
    SAMPLE_FILE_PREFERENCE
        .iter()
        .map(|suffix| dir.join(format!("{split}_answer_{suffix}.npy")))
        .find(|path| path.exists())
        .ok_or_else(|| ImportError::NoSamples {
            path: dir.to_path_buf(),
            split,
        })
}

fn read_outcomes(path: &Path) -> Result<Vec<Vec<Outcome>>, ImportError> {
    let rows = read_npy(path)?.into_int_rows(path)?;
    rows.into_iter()
        .enumerate()
        .map(|(row, codes)| {
            codes
                .into_iter()
                .map(|code| {
                    Outcome::from_code(code).ok_or_else(|| ImportError::Inconsistent {
                        path: path.to_path_buf(),
                        message: format!("row {row} has outcome code {code}; expected 0, 1 or 2"),
                    })
                })
                .collect()
        })
        .collect()
}

/// Reads one checkpoint; label, step and epoch are filled in by the caller.
fn read_checkpoint(dir: &Path, rows: Option<&[i64]>) -> Result<CheckpointDynamics, ImportError> {
    let perplexity_path = dir.join("train_perplexities.npy");
    let perplexities = read_npy(&perplexity_path)?.into_floats_1d(&perplexity_path)?;

    let train_path = sample_file(dir, "train")?;
    let train_outcomes = read_outcomes(&train_path)?;
    if train_outcomes.len() != perplexities.len() {
        return Err(ImportError::Inconsistent {
            path: train_path,
            message: format!(
                "{} rows, but train_perplexities.npy has {}",
                train_outcomes.len(),
                perplexities.len()
            ),
        });
    }

    let tokens_path = dir.join("train_num_tokens.npy");
    let tokens: Option<Vec<i64>> = if tokens_path.exists() {
        let tokens = read_npy(&tokens_path)?.into_ints_1d(&tokens_path)?;
        (tokens.len() == perplexities.len()).then_some(tokens)
    } else {
        None
    };

    let all_rows: Vec<i64> = (0..perplexities.len() as i64).collect();
    let mut train = Vec::new();
    for &row in rows.unwrap_or(&all_rows) {
        let index = usize::try_from(row)
            .ok()
            .filter(|i| *i < perplexities.len())
            .ok_or_else(|| ImportError::Inconsistent {
                path: dir.to_path_buf(),
                message: format!("subsample index {row} is outside the {} train rows", perplexities.len()),
            })?;
        train.push(TrainRecord {
            id: index.to_string(),
            outcomes: train_outcomes[index].clone(),
            perplexity: perplexities[index],
            nll_mean: None,
            target_tokens: tokens.as_ref().and_then(|t| usize::try_from(t[index]).ok()),
        });
    }

    let test_path = sample_file(dir, "test")?;
    let test = read_outcomes(&test_path)?
        .into_iter()
        .enumerate()
        .map(|(row, outcomes)| TestRecord {
            id: row.to_string(),
            outcomes,
        })
        .collect();

    Ok(CheckpointDynamics {
        label: String::new(),
        epoch: 0.0,
        step: 0,
        train,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_name_valid_cases() {
        let cases = [
            ("gsm8k_orig_3epochs_full_lr2e-05_bs128", 3.0, 1.0, 2e-5),
            ("gsm8k_orig_6epochs_half_lr5e-07_bs128", 6.0, 0.5, 5e-7),
            ("gsm8k_orig_12epochs_quarter_lr0.0002_bs64", 12.0, 0.25, 2e-4),
        ];
        for (name, epochs, fraction, lr) in cases {
            let parsed = parse_run_name(Path::new(name), name).unwrap();
            assert_eq!(parsed.epochs, epochs, "{name}");
            assert_eq!(parsed.data_fraction, fraction, "{name}");
            assert_eq!(parsed.learning_rate, lr, "{name}");
        }
    }

    #[test]
    fn run_name_invalid_cases() {
        let cases = [
            "gsm8k_orig_3epochs_full_lr2e-05",
            "gsm8k_orig_xepochs_full_lr2e-05_bs128",
            "gsm8k_orig_3epochs_tenth_lr2e-05_bs128",
            "gsm8k_orig_3epochs_full_2e-05_bs128",
            "gsm8k_orig_3epochs_full_lrfast_bs128",
        ];
        for name in cases {
            let error = parse_run_name(Path::new(name), name).unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
    }
}
