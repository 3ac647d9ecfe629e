//! import: reads learning dynamics recorded by another tool and stores them
//! as `dynamics.json`, in place of premem's own training and sampling.
//!
//! Recorded arrays are indexed by row of the original train and test files,
//! so the rows are relabelled with the ids of those files read in file order
//! (not the shuffled order of prepare-data).

use super::pipeline::StageContext;
use super::StageError;
use crate::data::load_jsonl;

pub fn run(context: &StageContext) -> Result<(), StageError> {
    let plan = context.plan;
    let crate::experiment::Source::Import(import) = &plan.experiment.source else {
        unreachable!("import is planned only for import experiments");
    };
    let dir = plan.roots.data_path(&import.dir);
    let format = plan.experiment.data.format;

    let ids_of = |role: &str| -> Result<Vec<String>, StageError> {
        let path = &plan.input_paths[role];
        let examples = load_jsonl(path, format).map_err(|e| StageError::Import {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(examples.into_iter().map(|example| example.id).collect())
    };
    let train_ids = ids_of("train_data")?;
    let test_ids = ids_of("test_data")?;

    let dynamics = crate::analysis::import::read_recorded_with_ids(&dir, &train_ids, &test_ids)
        .map_err(|e| StageError::Import {
            path: dir.clone(),
            message: e.to_string(),
        })?;
    super::analyze::write_json(&context.out_dir.join("dynamics.json"), &dynamics)
}
