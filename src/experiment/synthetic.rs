//! Reading of `[data.synthetic]`: generated problems in place of data
//! files. The table contains the generator settings of `premem synth` (except
//! `count`) plus the size of each split. Every value is checked here, so
//! that a bad setting points at its key instead of failing in a stage.

use crate::synth::{Operation, SynthConfig, SynthError};

use super::error::ExperimentError;
use super::schema::SyntheticData;
use super::tree::{Node, NodeKind};
use super::typed::{Reader, Table};

const PREFIX: &str = "data.synthetic";

/// Keys of `[data.synthetic]`, in the order the README lists them.
const KEYS: [&str; 12] = [
    "train_count",
    "test_count",
    "seed",
    "min_steps",
    "max_steps",
    "operations",
    "min_value",
    "max_value",
    "max_factor",
    "max_result",
    "allow_negative",
    "surface_forms",
];

/// Reads `[data.synthetic]` at `node`. Unset generator settings take the
/// defaults of `premem synth`.
pub(super) fn read_synthetic(
    reader: &mut Reader,
    node: &Node,
) -> Result<SyntheticData, ExperimentError> {
    let table = reader.table(node, PREFIX)?;
    if let Some(count) = table.get("count") {
        return Err(ExperimentError::invalid(
            &count.location,
            "data.synthetic.count",
            "a known key",
            "unknown key `data.synthetic.count`",
            Some(
                "an experiment sets the size of each split: use `train_count` and `test_count`"
                    .into(),
            ),
        ));
    }
    reader.reject_unknown(table, PREFIX, &KEYS)?;

    let defaults = SynthConfig::default();
    let train_count = reader.required_count(table, PREFIX, "train_count", node)?;
    let test_count = reader.required_count(table, PREFIX, "test_count", node)?;
    let generator = SynthConfig {
        min_steps: reader
            .count(table, PREFIX, "min_steps", 1)?
            .unwrap_or(defaults.min_steps),
        max_steps: reader
            .count(table, PREFIX, "max_steps", 1)?
            .unwrap_or(defaults.max_steps),
        operations: read_operations(reader, table)?.unwrap_or(defaults.operations),
        min_value: read_int(reader, table, "min_value")?.unwrap_or(defaults.min_value),
        max_value: read_int(reader, table, "max_value")?.unwrap_or(defaults.max_value),
        max_factor: read_int(reader, table, "max_factor")?.unwrap_or(defaults.max_factor),
        max_result: read_int(reader, table, "max_result")?.unwrap_or(defaults.max_result),
        allow_negative: read_bool(reader, table, "allow_negative")?
            .unwrap_or(defaults.allow_negative),
        surface_forms: reader
            .count(table, PREFIX, "surface_forms", 1)?
            .unwrap_or(defaults.surface_forms),
        count: train_count + test_count,
        seed: reader.seed(table, PREFIX, "seed")?.unwrap_or(defaults.seed),
    };

    // The generator's own consistency checks, located at the key they name
    // (or at the table when the key was left at its default).
    if let Err(SynthError::InvalidConfig { field, message }) = generator.validate() {
        let key = format!("{PREFIX}.{field}");
        let location = reader.locations.get(&key).unwrap_or(&node.location).clone();
        return Err(ExperimentError::invalid(
            &location,
            &key,
            "consistent generator settings",
            format!("`{field}` {message}"),
            None,
        ));
    }

    Ok(SyntheticData {
        generator,
        train_count,
        test_count,
    })
}

/// Reads an integer of either sign. The generator's validation checks the range.
fn read_int(reader: &mut Reader, table: &Table, key: &str) -> Result<Option<i64>, ExperimentError> {
    let Some((node, path)) = reader.get(table, PREFIX, key) else {
        return Ok(None);
    };
    match node.kind {
        NodeKind::Int(value) => Ok(Some(value)),
        _ => Err(reader.wrong_type(node, &path, "an integer")),
    }
}

fn read_bool(
    reader: &mut Reader,
    table: &Table,
    key: &str,
) -> Result<Option<bool>, ExperimentError> {
    let Some((node, path)) = reader.get(table, PREFIX, key) else {
        return Ok(None);
    };
    match node.kind {
        NodeKind::Bool(value) => Ok(Some(value)),
        _ => Err(reader.wrong_type(node, &path, "`true` or `false`")),
    }
}

/// Reads `operations`: a non-empty array of `add`, `sub`, `mul`, `div` (or
/// the symbols `+ - * /`), each at most once.
fn read_operations(
    reader: &mut Reader,
    table: &Table,
) -> Result<Option<Vec<Operation>>, ExperimentError> {
    let Some((node, path)) = reader.get(table, PREFIX, "operations") else {
        return Ok(None);
    };
    let expected = "a non-empty array of distinct operations: \"add\", \"sub\", \"mul\", \"div\"";
    let NodeKind::Array(items) = &node.kind else {
        return Err(reader.wrong_type(node, &path, expected));
    };
    if items.is_empty() {
        return Err(ExperimentError::invalid(
            &node.location,
            &path,
            expected,
            "an empty array",
            None,
        ));
    }

    let mut operations = Vec::with_capacity(items.len());
    for item in items {
        let operation = match &item.kind {
            NodeKind::Str(name) => Operation::parse(name),
            _ => None,
        };
        match operation {
            Some(operation) if !operations.contains(&operation) => operations.push(operation),
            _ => {
                return Err(ExperimentError::invalid(
                    &item.location,
                    &path,
                    expected,
                    item.kind.describe(),
                    None,
                ))
            }
        }
    }
    Ok(Some(operations))
}
