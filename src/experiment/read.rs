//! Typed reading of a merged experiment tree: every key is checked for its
//! type and range, and unknown keys are rejected with the list of known ones.

use std::path::PathBuf;

use crate::data::{Format, Templates};
use crate::model::Precision;

use super::error::ExperimentError;
use super::schema::*;
use super::synthetic::read_synthetic;
use super::tree::{Node, NodeKind};
use super::typed::{Range, Reader, Table};

/// Reads the merged root table of an experiment file at `path`.
pub fn read_experiment(path: &std::path::Path, root: &Node) -> Result<Experiment, ExperimentError> {
    let mut reader = Reader::default();
    let table = reader.table(root, "")?;

    let top_keys = [
        "name",
        "title",
        "extends",
        "data",
        "model",
        "templates",
        "train",
        "sweep",
        "sampling",
        "scoring",
        "analysis",
        "report",
        "import",
        "robustness",
        "curation",
    ];
    reader.reject_unknown(table, "", &top_keys)?;

    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "experiment".into());
    let name = match reader.string(table, "", "name")? {
        Some(name) => check_name(&reader, &name)?,
        None => stem,
    };
    let title = reader
        .string(table, "", "title")?
        .unwrap_or_else(|| name.clone());

    let data = read_data(&mut reader, table, root)?;
    let templates = read_templates(&mut reader, table)?;

    if let (Some(import), DataSource::Synthetic(_)) = (table.get("import"), &data.source) {
        return Err(ExperimentError::invalid(
            &import.location,
            "import",
            "no `[import]` with `[data.synthetic]`",
            "`[import]`",
            Some("recorded dynamics are indexed by the rows of data files; use `data.train` and `data.test`".into()),
        ));
    }

    let source = if table.contains_key("import") {
        for section in ["model", "train", "sweep", "sampling"] {
            if let Some(node) = table.get(section) {
                return Err(ExperimentError::invalid(
                    &node.location,
                    section,
                    "no such table when `[import]` is set",
                    format!("`[{section}]`"),
                    Some("recorded dynamics replace training and sampling; remove this table or `[import]`".into()),
                ));
            }
        }
        Source::Import(read_import(&mut reader, table)?)
    } else {
        Source::Training(TrainingConfig {
            model: read_model(&mut reader, table, root)?,
            optimizer: read_optimizer(&mut reader, table)?,
            runs: read_sweep(&mut reader, table, root)?,
            sampling: read_sampling(&mut reader, table)?,
        })
    };

    let scoring = read_scoring(&mut reader, table, data.format)?;
    let analysis = read_analysis(&mut reader, table, scoring.threshold)?;
    let report = read_report(&mut reader, table)?;
    let robustness = super::read_robustness::read_robustness(&mut reader, table, &source)?;
    let curation = super::read_curation::read_curation(&mut reader, table, &source, &data.source)?;

    Ok(Experiment {
        name,
        title,
        path: path.to_path_buf(),
        data,
        templates,
        source,
        scoring,
        analysis,
        report,
        robustness,
        curation,
        locations: reader.locations,
    })
}

fn check_name(reader: &Reader, name: &str) -> Result<String, ExperimentError> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.');
    if valid {
        Ok(name.to_string())
    } else {
        Err(ExperimentError::invalid(
            &reader.locations["name"],
            "name",
            "a folder name of letters, digits, `-`, `_` and `.`",
            format!("{name:?}"),
            Some("the name is the report folder under reports/".into()),
        ))
    }
}

fn read_data(
    reader: &mut Reader,
    root: &Table,
    root_node: &Node,
) -> Result<DataConfig, ExperimentError> {
    let Some(node) = root.get("data") else {
        return Err(ExperimentError::invalid(
            &root_node.location,
            "data",
            "a `[data]` table",
            "none",
            Some("add `[data]` with `format`, `train` and `test`".into()),
        ));
    };
    let table = reader.table(node, "data")?;
    reader.reject_unknown(
        table,
        "data",
        &[
            "format",
            "train",
            "test",
            "train_subset",
            "test_subset",
            "subset_seed",
            "synthetic",
        ],
    )?;
    if let Some(synthetic) = table.get("synthetic") {
        return read_synthetic_data(reader, table, synthetic);
    }

    let format_name = reader.required_string(table, "data", "format", node)?;
    let format: Format = format_name.parse().map_err(|_| {
        ExperimentError::invalid(
            &reader.locations["data.format"],
            "data.format",
            "`gsm8k` or `math`",
            format!("{format_name:?}"),
            None,
        )
    })?;

    Ok(DataConfig {
        format,
        source: DataSource::Files {
            train: PathBuf::from(reader.required_string(table, "data", "train", node)?),
            test: PathBuf::from(reader.required_string(table, "data", "test", node)?),
        },
        train_subset: reader.count(table, "data", "train_subset", 1)?,
        test_subset: reader.count(table, "data", "test_subset", 1)?,
        subset_seed: reader.seed(table, "data", "subset_seed")?.unwrap_or(0),
    })
}

/// Reads `[data]` with a `[data.synthetic]` table: no data files or
/// subsets, and the format (which picks the grader) can only be gsm8k.
fn read_synthetic_data(
    reader: &mut Reader,
    table: &Table,
    synthetic: &Node,
) -> Result<DataConfig, ExperimentError> {
    for key in ["train", "test", "train_subset", "test_subset"] {
        if let Some((node, path)) = reader.get(table, "data", key) {
            return Err(ExperimentError::invalid(
                &node.location,
                &path,
                "no such key when `[data.synthetic]` is set",
                format!("`{path}`"),
                Some("generated problems replace data files; set the split sizes with `data.synthetic.train_count` and `test_count`".into()),
            ));
        }
    }
    if let Some(format_name) = reader.string(table, "data", "format")? {
        if format_name != Format::Gsm8k.name() {
            return Err(ExperimentError::invalid(
                &reader.locations["data.format"],
                "data.format",
                "`gsm8k` (synthetic problems end in `#### N`)",
                format!("{format_name:?}"),
                None,
            ));
        }
    }

    Ok(DataConfig {
        format: Format::Gsm8k,
        source: DataSource::Synthetic(read_synthetic(reader, synthetic)?),
        train_subset: None,
        test_subset: None,
        subset_seed: reader.seed(table, "data", "subset_seed")?.unwrap_or(0),
    })
}

fn read_templates(reader: &mut Reader, root: &Table) -> Result<Templates, ExperimentError> {
    let mut templates = Templates::default();
    let Some(node) = root.get("templates") else {
        return Ok(templates);
    };
    let table = reader.table(node, "templates")?;
    reader.reject_unknown(table, "templates", &["prompt", "target"])?;

    if let Some(prompt) = reader.string(table, "templates", "prompt")? {
        require_placeholder(reader, "templates.prompt", &prompt, "{question}")?;
        templates.prompt = prompt;
    }
    if let Some(target) = reader.string(table, "templates", "target")? {
        require_placeholder(reader, "templates.target", &target, "{solution}")?;
        templates.target = target;
    }
    Ok(templates)
}

fn require_placeholder(
    reader: &Reader,
    key: &str,
    text: &str,
    placeholder: &str,
) -> Result<(), ExperimentError> {
    if text.contains(placeholder) {
        return Ok(());
    }
    Err(ExperimentError::invalid(
        &reader.locations[key],
        key,
        format!("a template containing `{placeholder}`"),
        format!("{text:?}"),
        None,
    ))
}

fn read_model(
    reader: &mut Reader,
    root: &Table,
    root_node: &Node,
) -> Result<ModelConfig, ExperimentError> {
    let Some(node) = root.get("model") else {
        return Err(ExperimentError::invalid(
            &root_node.location,
            "model",
            "a `[model]` table",
            "none",
            Some("add `[model]` with `path`, or `[import]` to analyze recorded dynamics".into()),
        ));
    };
    let table = reader.table(node, "model")?;
    reader.reject_unknown(table, "model", &["path", "precision"])?;

    let path = PathBuf::from(reader.required_string(table, "model", "path", node)?);
    let precision = match reader.string(table, "model", "precision")?.as_deref() {
        None | Some("f32") => Precision::F32,
        Some("bf16") => Precision::Bf16,
        Some(other) => {
            return Err(ExperimentError::invalid(
                &reader.locations["model.precision"],
                "model.precision",
                "`f32` or `bf16`",
                format!("{other:?}"),
                None,
            ))
        }
    };
    Ok(ModelConfig { path, precision })
}

fn read_optimizer(reader: &mut Reader, root: &Table) -> Result<OptimizerConfig, ExperimentError> {
    let empty = Table::new();
    let table = match root.get("train") {
        Some(node) => reader.table(node, "train")?,
        None => &empty,
    };
    let p = "train";
    reader.reject_unknown(
        table,
        p,
        &[
            "batch_size",
            "grad_accum",
            "warmup_ratio",
            "weight_decay",
            "beta1",
            "beta2",
            "eps",
            "max_grad_norm",
        ],
    )?;

    Ok(OptimizerConfig {
        batch_size: reader.count(table, p, "batch_size", 1)?.unwrap_or(8),
        grad_accum: reader.count(table, p, "grad_accum", 1)?.unwrap_or(1),
        warmup_ratio: reader
            .float(table, p, "warmup_ratio", Range::closed_open(0.0, 1.0))?
            .unwrap_or(0.0),
        weight_decay: reader
            .float(table, p, "weight_decay", Range::at_least(0.0))?
            .unwrap_or(0.0),
        beta1: reader
            .float(table, p, "beta1", Range::closed_open(0.0, 1.0))?
            .unwrap_or(0.9),
        beta2: reader
            .float(table, p, "beta2", Range::closed_open(0.0, 1.0))?
            .unwrap_or(0.999),
        eps: reader
            .float(table, p, "eps", Range::above(0.0))?
            .unwrap_or(1e-8),
        max_grad_norm: reader
            .float(table, p, "max_grad_norm", Range::at_least(0.0))?
            .unwrap_or(1.0),
    })
}

fn read_sweep(
    reader: &mut Reader,
    root: &Table,
    root_node: &Node,
) -> Result<Vec<RunConfig>, ExperimentError> {
    let Some(node) = root.get("sweep") else {
        return Err(ExperimentError::invalid(
            &root_node.location,
            "sweep",
            "a `[sweep]` table",
            "none",
            Some("add `[sweep]` with `learning_rate = [...]` and `epochs = [...]`".into()),
        ));
    };
    let table = reader.table(node, "sweep")?;
    let grid_keys = ["learning_rate", "epochs", "data_fraction", "seed"];
    reader.reject_unknown(
        table,
        "sweep",
        &["learning_rate", "epochs", "data_fraction", "seed", "runs"],
    )?;

    let mut runs = Vec::new();
    let has_grid = grid_keys.iter().any(|key| table.contains_key(*key));
    if has_grid || !table.contains_key("runs") {
        let learning_rates =
            reader.float_list(table, "sweep", "learning_rate", Range::above(0.0), node)?;
        let epochs = reader.count_list(table, "sweep", "epochs", node)?;
        let fractions = match table.get("data_fraction") {
            Some(_) => reader.float_list(
                table,
                "sweep",
                "data_fraction",
                Range::open_closed(0.0, 1.0),
                node,
            )?,
            None => vec![1.0],
        };
        let seeds = match table.get("seed") {
            Some(_) => reader.seed_list(table, "sweep", "seed", node)?,
            None => vec![0],
        };
        for &learning_rate in &learning_rates {
            for &epoch_count in &epochs {
                for &data_fraction in &fractions {
                    for &seed in &seeds {
                        runs.push(RunConfig {
                            learning_rate,
                            epochs: epoch_count,
                            data_fraction,
                            seed,
                        });
                    }
                }
            }
        }
    }

    if let Some(runs_node) = table.get("runs") {
        let NodeKind::Array(items) = &runs_node.kind else {
            return Err(reader.wrong_type(
                runs_node,
                "sweep.runs",
                "an array of tables (`[[sweep.runs]]`)",
            ));
        };
        if items.is_empty() {
            return Err(ExperimentError::invalid(
                &runs_node.location,
                "sweep.runs",
                "at least one run",
                "an empty array",
                None,
            ));
        }
        for (index, item) in items.iter().enumerate() {
            let prefix = format!("sweep.runs[{index}]");
            let run = reader.table(item, &prefix)?;
            reader.reject_unknown(run, &prefix, &grid_keys)?;
            runs.push(RunConfig {
                learning_rate: reader.required_float(
                    run,
                    &prefix,
                    "learning_rate",
                    Range::above(0.0),
                    item,
                )?,
                epochs: reader.required_count(run, &prefix, "epochs", item)?,
                data_fraction: reader
                    .float(run, &prefix, "data_fraction", Range::open_closed(0.0, 1.0))?
                    .unwrap_or(1.0),
                seed: reader.seed(run, &prefix, "seed")?.unwrap_or(0),
            });
        }
    }

    let mut unique: Vec<RunConfig> = Vec::new();
    for run in runs {
        if !unique.contains(&run) {
            unique.push(run);
        }
    }
    Ok(unique)
}

fn read_sampling(reader: &mut Reader, root: &Table) -> Result<SamplingConfig, ExperimentError> {
    let empty = Table::new();
    let table = match root.get("sampling") {
        Some(node) => reader.table(node, "sampling")?,
        None => &empty,
    };
    let p = "sampling";
    reader.reject_unknown(
        table,
        p,
        &[
            "k_train",
            "k_test",
            "temperature",
            "top_p",
            "max_new_tokens",
            "stop",
            "seed",
            "batch_size",
        ],
    )?;

    let stop = match table.get("stop") {
        None => vec!["\nDone.".to_string()],
        Some(node) => {
            let NodeKind::Array(items) = &node.kind else {
                return Err(reader.wrong_type(node, "sampling.stop", "an array of strings"));
            };
            let mut stop = Vec::new();
            for item in items {
                match &item.kind {
                    NodeKind::Str(s) if !s.is_empty() => stop.push(s.clone()),
                    _ => {
                        return Err(reader.wrong_type(item, "sampling.stop", "a non-empty string"))
                    }
                }
            }
            stop
        }
    };

    Ok(SamplingConfig {
        k_train: reader.count(table, p, "k_train", 1)?.unwrap_or(5),
        k_test: reader.count(table, p, "k_test", 1)?.unwrap_or(5),
        temperature: reader
            .float(table, p, "temperature", Range::at_least(0.0))?
            .unwrap_or(0.8),
        top_p: reader
            .float(table, p, "top_p", Range::open_closed(0.0, 1.0))?
            .unwrap_or(0.95),
        max_new_tokens: reader.count(table, p, "max_new_tokens", 1)?.unwrap_or(256),
        stop,
        seed: reader.seed(table, p, "seed")?.unwrap_or(0),
        batch_size: reader.count(table, p, "batch_size", 1)?.unwrap_or(32),
    })
}

fn read_import(reader: &mut Reader, root: &Table) -> Result<ImportConfig, ExperimentError> {
    let node = &root["import"];
    let table = reader.table(node, "import")?;
    reader.reject_unknown(table, "import", &["dir"])?;
    Ok(ImportConfig {
        dir: PathBuf::from(reader.required_string(table, "import", "dir", node)?),
    })
}

fn read_scoring(
    reader: &mut Reader,
    root: &Table,
    format: Format,
) -> Result<ScoringConfig, ExperimentError> {
    let empty = Table::new();
    let table = match root.get("scoring") {
        Some(node) => reader.table(node, "scoring")?,
        None => &empty,
    };
    reader.reject_unknown(table, "scoring", &["threshold", "token_budget"])?;
    Ok(ScoringConfig {
        threshold: reader
            .float(table, "scoring", "threshold", Range::above(1.0))?
            .unwrap_or_else(|| format.default_threshold()),
        token_budget: reader
            .count(table, "scoring", "token_budget", 1)?
            .unwrap_or(8192),
    })
}

fn read_analysis(
    reader: &mut Reader,
    root: &Table,
    threshold: f64,
) -> Result<AnalysisConfig, ExperimentError> {
    let default_grid = {
        let mut grid = vec![1.01, 1.05, threshold, 1.2, 1.5];
        grid.sort_by(f64::total_cmp);
        grid.dedup();
        grid
    };
    let Some(node) = root.get("analysis") else {
        return Ok(AnalysisConfig {
            threshold_grid: default_grid,
        });
    };
    let table = reader.table(node, "analysis")?;
    reader.reject_unknown(table, "analysis", &["threshold_grid"])?;
    let threshold_grid = match table.get("threshold_grid") {
        Some(_) => {
            reader.float_list(table, "analysis", "threshold_grid", Range::above(1.0), node)?
        }
        None => default_grid,
    };
    Ok(AnalysisConfig { threshold_grid })
}

fn read_report(reader: &mut Reader, root: &Table) -> Result<ReportConfig, ExperimentError> {
    let Some(node) = root.get("report") else {
        return Ok(ReportConfig { examples: 12 });
    };
    let table = reader.table(node, "report")?;
    reader.reject_unknown(table, "report", &["examples"])?;
    Ok(ReportConfig {
        examples: reader.count(table, "report", "examples", 0)?.unwrap_or(12),
    })
}
