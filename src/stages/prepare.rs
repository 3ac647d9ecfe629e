//! prepare-data: reads both data files (or generates the synthetic
//! problems, see [`crate::synth::split`]), orders each split by a seeded
//! shuffle, keeps the configured subset and writes the prompt and target
//! texts, so every later stage reads the same examples in the same order.
//! A run's `data_fraction` then takes a prefix of the prepared train split.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::data::{self, Example};
use crate::experiment::{examples_of, DataSource};
use crate::synth::generate_split;

use super::plan::{Plan, Split};
use super::StageError;

/// One prepared example, a line of `train.jsonl` or `test.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreparedExample {
    pub id: String,
    /// Line in the source data file.
    pub line: usize,
    pub question: String,
    pub solution: String,
    pub prompt: String,
    pub target: String,
    pub extra: Vec<(String, String)>,
}

impl PreparedExample {
    /// Applies the prompt and target templates to `example`.
    pub fn new(example: &Example, templates: &data::Templates) -> PreparedExample {
        PreparedExample {
            id: example.id.clone(),
            line: example.line,
            question: example.question.clone(),
            solution: example.solution.clone(),
            prompt: templates.prompt(example),
            target: templates.target(example),
            extra: example.extra.clone(),
        }
    }
}

/// Writes `train.jsonl`, `test.jsonl` and `summary.json` into `out_dir`.
pub fn run(plan: &Plan, out_dir: &Path) -> Result<(), StageError> {
    let experiment = &plan.experiment;
    let data_config = &experiment.data;

    let (train, test) = match &data_config.source {
        DataSource::Files { train, test } => (
            data::load_jsonl(&plan.roots.data_path(train), data_config.format)?,
            data::load_jsonl(&plan.roots.data_path(test), data_config.format)?,
        ),
        DataSource::Synthetic(synthetic) => {
            let split = generate_split(
                &synthetic.generator,
                synthetic.train_count,
                synthetic.test_count,
            )
            ?;
            (examples_of(&split.train), examples_of(&split.test))
        }
    };

    let mut summary = serde_json::Map::new();
    for (split, mut examples, subset) in [
        (Split::Train, train, data_config.train_subset),
        (Split::Test, test, data_config.test_subset),
    ] {
        // One generator per split, seeded from the subset seed and a
        // per-split constant, so the train order does not depend on the test file.
        let seed = data_config.subset_seed
            ^ if split == Split::Train {
                0
            } else {
                0x5eed_7e57
            };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        examples.shuffle(&mut rng);
        if let Some(size) = subset {
            examples.truncate(size);
        }

        let file = out_dir.join(format!("{}.jsonl", split.name()));
        write_prepared(&file, &examples, &experiment.templates)?;
        summary.insert(format!("{}_examples", split.name()), examples.len().into());
    }

    let summary_path = out_dir.join("summary.json");
    let text =
        serde_json::to_string_pretty(&serde_json::Value::Object(summary)).unwrap_or_default();
    std::fs::write(&summary_path, text).map_err(StageError::write(&summary_path))
}

fn write_prepared(
    path: &Path,
    examples: &[Example],
    templates: &data::Templates,
) -> Result<(), StageError> {
    let file = std::fs::File::create(path).map_err(StageError::write(path))?;
    let mut writer = BufWriter::new(file);
    for example in examples {
        let prepared = PreparedExample::new(example, templates);
        let line =
            serde_json::to_string(&prepared).map_err(|e| StageError::write(path)(e.into()))?;
        writeln!(writer, "{line}").map_err(StageError::write(path))?;
    }
    writer.flush().map_err(StageError::write(path))
}

/// Reads the prepared examples of `split` from a prepare-data entry.
pub fn read_prepared(entry_dir: &Path, split: Split) -> Result<Vec<PreparedExample>, StageError> {
    let path = entry_dir.join(format!("{}.jsonl", split.name()));
    let file = std::fs::File::open(&path).map_err(|e| StageError::read(&path, e))?;
    let mut examples = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| StageError::read(&path, e))?;
        let example = serde_json::from_str(&line)
            .map_err(|e| StageError::read(&path, format!("line {}: {e}", index + 1)))?;
        examples.push(example);
    }
    Ok(examples)
}
