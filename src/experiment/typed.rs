//! Typed accessors over the located TOML tree: each checks a key's type
//! and range and records where the key was written, so errors and later
//! checks can point at it.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{ExperimentError, Location};
use super::tree::{Node, NodeKind};

pub(super) type Table = BTreeMap<String, Node>;

/// Allowed interval of a float key.
#[derive(Debug, Clone, Copy)]
pub(super) struct Range {
    min: Option<(f64, bool)>,
    max: Option<(f64, bool)>,
}

impl Range {
    pub(super) fn above(min: f64) -> Range {
        Range {
            min: Some((min, false)),
            max: None,
        }
    }
    pub(super) fn at_least(min: f64) -> Range {
        Range {
            min: Some((min, true)),
            max: None,
        }
    }
    pub(super) fn closed_open(min: f64, max: f64) -> Range {
        Range {
            min: Some((min, true)),
            max: Some((max, false)),
        }
    }
    pub(super) fn closed(min: f64, max: f64) -> Range {
        Range {
            min: Some((min, true)),
            max: Some((max, true)),
        }
    }
    pub(super) fn open_closed(min: f64, max: f64) -> Range {
        Range {
            min: Some((min, false)),
            max: Some((max, true)),
        }
    }

    pub(super) fn contains(&self, x: f64) -> bool {
        let above_min = match self.min {
            None => true,
            Some((min, true)) => x >= min,
            Some((min, false)) => x > min,
        };
        let below_max = match self.max {
            None => true,
            Some((max, true)) => x <= max,
            Some((max, false)) => x < max,
        };
        x.is_finite() && above_min && below_max
    }

    pub(super) fn describe(&self) -> String {
        match (self.min, self.max) {
            (Some((min, inclusive)), None) => {
                format!("a number {} {min}", if inclusive { ">=" } else { ">" })
            }
            (Some((min, min_inclusive)), Some((max, max_inclusive))) => format!(
                "a number in {}{min}, {max}{}",
                if min_inclusive { "[" } else { "(" },
                if max_inclusive { "]" } else { ")" }
            ),
            (None, Some((max, _))) => format!("a number <= {max}"),
            (None, None) => "a finite number".into(),
        }
    }
}

/// Typed accessors that record the location of every key they read.
#[derive(Default)]
pub(super) struct Reader {
    pub(super) locations: BTreeMap<String, Location>,
}

fn dotted(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

impl Reader {
    pub(super) fn table<'a>(
        &mut self,
        node: &'a Node,
        key: &str,
    ) -> Result<&'a Table, ExperimentError> {
        if !key.is_empty() {
            self.locations
                .insert(key.to_string(), node.location.clone());
        }
        match &node.kind {
            NodeKind::Table(table) => Ok(table),
            _ => Err(self.wrong_type(node, key, "a table")),
        }
    }

    pub(super) fn wrong_type(&self, node: &Node, key: &str, expected: &str) -> ExperimentError {
        ExperimentError::invalid(
            &node.location,
            key,
            expected,
            format!("{} ({})", node.kind.type_name(), node.kind.describe()),
            None,
        )
    }

    pub(super) fn reject_unknown(
        &self,
        table: &Table,
        prefix: &str,
        known: &[&str],
    ) -> Result<(), ExperimentError> {
        let known_set: BTreeSet<&str> = known.iter().copied().collect();
        for (name, node) in table {
            if known_set.contains(name.as_str()) {
                continue;
            }
            let key = dotted(prefix, name);
            let hint = match closest(name, known) {
                Some(guess) => format!(
                    "did you mean `{}`? known keys: {}",
                    dotted(prefix, guess),
                    known.join(", ")
                ),
                None => format!("known keys here: {}", known.join(", ")),
            };
            return Err(ExperimentError::invalid(
                &node.location,
                &key,
                "a known key",
                format!("unknown key `{key}`"),
                Some(hint),
            ));
        }
        Ok(())
    }

    pub(super) fn get<'a>(
        &mut self,
        table: &'a Table,
        prefix: &str,
        key: &str,
    ) -> Option<(&'a Node, String)> {
        let node = table.get(key)?;
        let path = dotted(prefix, key);
        self.locations.insert(path.clone(), node.location.clone());
        Some((node, path))
    }

    pub(super) fn string(
        &mut self,
        table: &Table,
        prefix: &str,
        key: &str,
    ) -> Result<Option<String>, ExperimentError> {
        let Some((node, path)) = self.get(table, prefix, key) else {
            return Ok(None);
        };
        match &node.kind {
            NodeKind::Str(s) if !s.is_empty() => Ok(Some(s.clone())),
            _ => Err(self.wrong_type(node, &path, "a non-empty string")),
        }
    }

    pub(super) fn missing(
        &self,
        parent: &Node,
        prefix: &str,
        key: &str,
        expected: &str,
    ) -> ExperimentError {
        ExperimentError::invalid(
            &parent.location,
            &dotted(prefix, key),
            expected,
            "nothing (the key is missing)",
            None,
        )
    }

    pub(super) fn required_string(
        &mut self,
        table: &Table,
        prefix: &str,
        key: &str,
        parent: &Node,
    ) -> Result<String, ExperimentError> {
        self.string(table, prefix, key)?
            .ok_or_else(|| self.missing(parent, prefix, key, "a non-empty string"))
    }

    pub(super) fn integer(
        &self,
        node: &Node,
        path: &str,
        min: i64,
    ) -> Result<i64, ExperimentError> {
        match node.kind {
            NodeKind::Int(i) if i >= min => Ok(i),
            NodeKind::Int(i) => Err(ExperimentError::invalid(
                &node.location,
                path,
                format!("an integer >= {min}"),
                format!("{i}"),
                None,
            )),
            _ => Err(self.wrong_type(node, path, &format!("an integer >= {min}"))),
        }
    }

    pub(super) fn count(
        &mut self,
        table: &Table,
        prefix: &str,
        key: &str,
        min: i64,
    ) -> Result<Option<usize>, ExperimentError> {
        let Some((node, path)) = self.get(table, prefix, key) else {
            return Ok(None);
        };
        Ok(Some(self.integer(node, &path, min)? as usize))
    }

    pub(super) fn required_count(
        &mut self,
        table: &Table,
        prefix: &str,
        key: &str,
        parent: &Node,
    ) -> Result<usize, ExperimentError> {
        self.count(table, prefix, key, 1)?
            .ok_or_else(|| self.missing(parent, prefix, key, "an integer >= 1"))
    }

    pub(super) fn seed(
        &mut self,
        table: &Table,
        prefix: &str,
        key: &str,
    ) -> Result<Option<u64>, ExperimentError> {
        let Some((node, path)) = self.get(table, prefix, key) else {
            return Ok(None);
        };
        Ok(Some(self.integer(node, &path, 0)? as u64))
    }

    pub(super) fn float_value(
        &self,
        node: &Node,
        path: &str,
        range: Range,
    ) -> Result<f64, ExperimentError> {
        // An integer is accepted where a float is expected (`1` for `1.0`).
        // The typed value is a float either way, so the cache key is too.
        let value = match node.kind {
            NodeKind::Float(x) => x,
            NodeKind::Int(i) => i as f64,
            _ => return Err(self.wrong_type(node, path, &range.describe())),
        };
        if range.contains(value) {
            Ok(value)
        } else {
            Err(ExperimentError::invalid(
                &node.location,
                path,
                range.describe(),
                node.kind.describe(),
                None,
            ))
        }
    }

    pub(super) fn float(
        &mut self,
        table: &Table,
        prefix: &str,
        key: &str,
        range: Range,
    ) -> Result<Option<f64>, ExperimentError> {
        let Some((node, path)) = self.get(table, prefix, key) else {
            return Ok(None);
        };
        Ok(Some(self.float_value(node, &path, range)?))
    }

    pub(super) fn required_float(
        &mut self,
        table: &Table,
        prefix: &str,
        key: &str,
        range: Range,
        parent: &Node,
    ) -> Result<f64, ExperimentError> {
        self.float(table, prefix, key, range)?
            .ok_or_else(|| self.missing(parent, prefix, key, &range.describe()))
    }

    /// Reads a non-empty list. A single value counts as a list of one.
    pub(super) fn list<'a>(
        &mut self,
        table: &'a Table,
        prefix: &str,
        key: &str,
        parent: &Node,
        expected: &str,
    ) -> Result<(Vec<&'a Node>, String), ExperimentError> {
        let Some((node, path)) = self.get(table, prefix, key) else {
            return Err(self.missing(parent, prefix, key, expected));
        };
        match &node.kind {
            NodeKind::Array(items) if items.is_empty() => Err(ExperimentError::invalid(
                &node.location,
                &path,
                expected,
                "an empty array",
                Some("a sweep list needs at least one value".into()),
            )),
            NodeKind::Array(items) => Ok((items.iter().collect(), path)),
            _ => Ok((vec![node], path)),
        }
    }

    pub(super) fn float_list(
        &mut self,
        table: &Table,
        prefix: &str,
        key: &str,
        range: Range,
        parent: &Node,
    ) -> Result<Vec<f64>, ExperimentError> {
        let expected = format!(
            "a non-empty array of numbers, each {}",
            range.describe().trim_start_matches("a number ")
        );
        let (items, path) = self.list(table, prefix, key, parent, &expected)?;
        items
            .into_iter()
            .map(|item| self.float_value(item, &path, range))
            .collect()
    }

    pub(super) fn count_list(
        &mut self,
        table: &Table,
        prefix: &str,
        key: &str,
        parent: &Node,
    ) -> Result<Vec<usize>, ExperimentError> {
        let (items, path) = self.list(
            table,
            prefix,
            key,
            parent,
            "a non-empty array of integers >= 1",
        )?;
        items
            .into_iter()
            .map(|item| Ok(self.integer(item, &path, 1)? as usize))
            .collect()
    }

    pub(super) fn seed_list(
        &mut self,
        table: &Table,
        prefix: &str,
        key: &str,
        parent: &Node,
    ) -> Result<Vec<u64>, ExperimentError> {
        let (items, path) = self.list(
            table,
            prefix,
            key,
            parent,
            "a non-empty array of integers >= 0",
        )?;
        items
            .into_iter()
            .map(|item| Ok(self.integer(item, &path, 0)? as u64))
            .collect()
    }
}

/// Finds the known key nearest to `name` by edit distance, if it is close.
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|candidate| (edit_distance(name, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
