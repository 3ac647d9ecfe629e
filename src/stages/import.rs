//! import: reads learning dynamics recorded by another tool and stores them
//! as `dynamics.json`, in place of premem's own training and sampling.

use super::pipeline::StageContext;
use super::StageError;

pub fn run(context: &StageContext) -> Result<(), StageError> {
    let plan = context.plan;
    let crate::experiment::Source::Import(import) = &plan.experiment.source else {
        unreachable!("import is planned only for import experiments");
    };
    let dir = plan.roots.data_path(&import.dir);

    // TODO(merge): let dynamics = crate::analysis::import::read_recorded(&dir, plan.experiment.data.format)
    //     .map_err(|e| StageError::Import { path: dir.clone(), message: e.to_string() })?;
    // super::analyze::write_json(&context.out_dir.join("dynamics.json"), &dynamics)?;
    Err(StageError::Import {
        path: dir,
        message: "importing recorded dynamics is not in this build yet".into(),
    })
}
