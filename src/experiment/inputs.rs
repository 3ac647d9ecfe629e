//! Checks of an experiment against the files it names: the data files exist
//! and parse (or synthetic problems generate), subsets fit in them, and
//! the model file or folder exists.
//! `premem check` runs these without running any stage.

use std::path::{Path, PathBuf};

use crate::data::{self, DataError, Example};
use crate::synth::{generate_split, Problem, SynthError};

use super::error::Location;
use super::schema::{CurationConfig, DataSource, Experiment, PoolSource, Source};

/// Folders that relative data and model paths are resolved against.
#[derive(Debug, Clone)]
pub struct Roots {
    pub data: PathBuf,
    pub models: PathBuf,
}

impl Roots {
    /// Resolves a data path (absolute paths are kept).
    pub fn data_path(&self, relative: &Path) -> PathBuf {
        self.data.join(relative)
    }

    pub fn model_path(&self, relative: &Path) -> PathBuf {
        self.models.join(relative)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{location}: key `{key}`: {path} does not exist\n  hint: {hint}")]
    Missing {
        location: Location,
        key: String,
        path: PathBuf,
        hint: String,
    },
    #[error("{location}: key `{key}`: {source}")]
    Data {
        location: Location,
        key: String,
        #[source]
        source: DataError,
    },
    #[error("{location}: key `{key}`: expected at most {available} (the examples in {path}), found {requested}")]
    SubsetTooLarge {
        location: Location,
        key: String,
        requested: usize,
        available: usize,
        path: PathBuf,
    },
    #[error("{location}: key `data.synthetic`: {source}")]
    Synthetic {
        location: Location,
        #[source]
        source: SynthError,
    },
    #[error("{location}: key `curation.pool`: {path}:{line}: the candidate has no `seed_id` field\n  hint: every pool line names the base example it was seeded from, as `\"seed_id\": \"<id>\"`")]
    PoolSeed {
        location: Location,
        path: PathBuf,
        line: usize,
    },
    #[error("{location}: key `{key}`: {path} is not a model: {message}")]
    NotAModel {
        location: Location,
        key: String,
        path: PathBuf,
        message: String,
    },
}

/// The examples of both splits, as read from the data files.
#[derive(Debug, Clone)]
pub struct LoadedData {
    pub train: Vec<Example>,
    pub test: Vec<Example>,
}

/// Reads both data files (or generates the synthetic problems), checks the
/// subset sizes against them and checks that the model (or import folder)
/// exists.
pub fn check_inputs(experiment: &Experiment, roots: &Roots) -> Result<LoadedData, InputError> {
    let location = |key: &str| key_location(experiment, key);

    let (train, test) = match &experiment.data.source {
        DataSource::Files { train, test } => read_files(experiment, roots, train, test)?,
        DataSource::Synthetic(synthetic) => {
            let split = generate_split(
                &synthetic.generator,
                synthetic.train_count,
                synthetic.test_count,
            )
            .map_err(|source| InputError::Synthetic {
                location: location("data.synthetic"),
                source,
            })?;
            (examples_of(&split.train), examples_of(&split.test))
        }
    };
    check_source(experiment, roots)?;
    check_pool(experiment, roots)?;
    Ok(LoadedData { train, test })
}

/// Checks that a `[curation]` pool file exists, parses, and gives every
/// line a `seed_id`.
fn check_pool(experiment: &Experiment, roots: &Roots) -> Result<(), InputError> {
    let Some(CurationConfig {
        pool: PoolSource::File(relative),
        ..
    }) = &experiment.curation
    else {
        return Ok(());
    };
    let key = "curation.pool";
    let location = key_location(experiment, key);
    let path = roots.data_path(relative);
    if !path.is_file() {
        return Err(InputError::Missing {
            location,
            key: key.into(),
            path,
            hint: "relative data paths start at the data root: set --data-dir or PREMEM_DATA_DIR".into(),
        });
    }
    let examples = data::load_jsonl(&path, experiment.data.format).map_err(|source| InputError::Data {
        location: location.clone(),
        key: key.into(),
        source,
    })?;
    if let Some(example) = examples.iter().find(|e| e.extra("seed_id").is_none()) {
        return Err(InputError::PoolSeed {
            location,
            path,
            line: example.line,
        });
    }
    Ok(())
}

/// The generated problems as examples, `line` counting from 1.
pub fn examples_of(problems: &[Problem]) -> Vec<Example> {
    problems
        .iter()
        .enumerate()
        .map(|(index, problem)| problem.to_example(index + 1))
        .collect()
}

/// Reads both data files and checks the subset sizes against them.
fn read_files(
    experiment: &Experiment,
    roots: &Roots,
    train: &Path,
    test: &Path,
) -> Result<(Vec<Example>, Vec<Example>), InputError> {
    let location = |key: &str| key_location(experiment, key);
    let data_hint = "relative data paths start at the data root: set --data-dir or PREMEM_DATA_DIR";

    let mut splits = Vec::new();
    for (key, relative, subset_key, subset) in [
        (
            "data.train",
            train,
            "data.train_subset",
            experiment.data.train_subset,
        ),
        (
            "data.test",
            test,
            "data.test_subset",
            experiment.data.test_subset,
        ),
    ] {
        let path = roots.data_path(relative);
        if !path.is_file() {
            return Err(InputError::Missing {
                location: location(key),
                key: key.into(),
                path,
                hint: data_hint.into(),
            });
        }
        let examples =
            data::load_jsonl(&path, experiment.data.format).map_err(|source| InputError::Data {
                location: location(key),
                key: key.into(),
                source,
            })?;
        if let Some(requested) = subset {
            if requested > examples.len() {
                return Err(InputError::SubsetTooLarge {
                    location: location(subset_key),
                    key: subset_key.into(),
                    requested,
                    available: examples.len(),
                    path,
                });
            }
        }
        splits.push(examples);
    }
    let test = splits.pop().unwrap_or_default();
    let train = splits.pop().unwrap_or_default();
    Ok((train, test))
}

fn key_location(experiment: &Experiment, key: &str) -> Location {
    experiment
        .locations
        .get(key)
        .cloned()
        .unwrap_or_else(|| Location::file_start(experiment.path.clone()))
}

/// Checks that the model (or import folder) exists.
fn check_source(experiment: &Experiment, roots: &Roots) -> Result<(), InputError> {
    let location = |key: &str| key_location(experiment, key);
    let data_hint = "relative data paths start at the data root: set --data-dir or PREMEM_DATA_DIR";
    match &experiment.source {
        Source::Training(training) => {
            let path = roots.model_path(&training.model.path);
            check_model(&path).map_err(|message| match message {
                None => InputError::Missing {
                    location: location("model.path"),
                    key: "model.path".into(),
                    path: path.clone(),
                    hint: "relative model paths start at the model root: set --model-dir or PREMEM_MODEL_DIR".into(),
                },
                Some(message) => InputError::NotAModel {
                    location: location("model.path"),
                    key: "model.path".into(),
                    path: path.clone(),
                    message,
                },
            })?;
        }
        Source::Import(import) => {
            let path = roots.data_path(&import.dir);
            if !path.is_dir() {
                return Err(InputError::Missing {
                    location: location("import.dir"),
                    key: "import.dir".into(),
                    path,
                    hint: data_hint.into(),
                });
            }
        }
    }
    Ok(())
}

/// Checks the cheap signs of a model: a `.gguf` file starts with the GGUF
/// magic; a folder has `config.json` and a `.safetensors` file. `Err(None)`
/// means the path does not exist.
fn check_model(path: &Path) -> Result<(), Option<String>> {
    if path.is_dir() {
        if !path.join("config.json").is_file() {
            return Err(Some("the folder has no config.json".into()));
        }
        let has_weights = std::fs::read_dir(path)
            .map_err(|e| Some(e.to_string()))?
            .filter_map(Result::ok)
            .any(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".safetensors")
            });
        if !has_weights {
            return Err(Some("the folder has no .safetensors file".into()));
        }
        return Ok(());
    }
    if !path.is_file() {
        return Err(None);
    }

    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut magic));
    match read {
        Ok(()) if &magic == b"GGUF" => Ok(()),
        Ok(()) => Err(Some(
            "a model file must be GGUF (magic bytes `GGUF`) or a Hugging Face folder".into(),
        )),
        Err(error) => Err(Some(error.to_string())),
    }
}
