//! A TOML document as a tree of values that remember where they were
//! written, and the key-by-key merge that `extends` performs.
//!
//! toml_edit keeps byte spans only on the parsed document; converting once
//! into this tree lets the merge of a base file and the typed reading keep
//! pointing at the file and line each value came from.

use std::collections::BTreeMap;
use std::path::Path;

use toml_edit::{ImDocument, Item, Table, Value};

use super::error::{ExperimentError, Location};

/// One TOML value with the position of its key (or of the value itself,
/// for array elements).
#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub location: Location,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Node>),
    Table(BTreeMap<String, Node>),
    /// A date or time, which no key of an experiment accepts.
    Datetime(String),
}

impl NodeKind {
    /// TOML type name, for "found ..." in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::Str(_) => "a string",
            NodeKind::Int(_) => "an integer",
            NodeKind::Float(_) => "a float",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Array(_) => "an array",
            NodeKind::Table(_) => "a table",
            NodeKind::Datetime(_) => "a date-time",
        }
    }

    /// The value as written, shortened, for error messages.
    pub fn describe(&self) -> String {
        match self {
            NodeKind::Str(s) => format!("{s:?}"),
            NodeKind::Int(i) => format!("{i}"),
            NodeKind::Float(x) => format!("{x}"),
            NodeKind::Bool(b) => format!("{b}"),
            NodeKind::Array(items) => format!("an array of {} items", items.len()),
            NodeKind::Table(_) => "a table".into(),
            NodeKind::Datetime(d) => format!("the date-time {d}"),
        }
    }
}

/// Parses `text` (the content of `file`) into a root table node.
pub fn parse_document(file: &Path, text: &str) -> Result<Node, ExperimentError> {
    let document = ImDocument::parse(text.to_string()).map_err(|error| {
        let offset = error.span().map(|span| span.start).unwrap_or(0);
        ExperimentError::Syntax {
            location: Location::from_offset(file.to_path_buf(), text, offset),
            message: error.message().trim().to_string(),
        }
    })?;

    let converter = Converter { file, text };
    Ok(Node {
        kind: NodeKind::Table(converter.table(document.as_table())),
        location: Location::file_start(file.to_path_buf()),
    })
}

struct Converter<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Converter<'_> {
    fn location(&self, span: Option<std::ops::Range<usize>>) -> Location {
        Location::from_offset(
            self.file.to_path_buf(),
            self.text,
            span.map(|s| s.start).unwrap_or(0),
        )
    }

    fn table(&self, table: &Table) -> BTreeMap<String, Node> {
        let mut nodes = BTreeMap::new();
        for (name, item) in table.iter() {
            let key_span = table.key(name).and_then(|key| key.span());
            let location = self.location(key_span.or_else(|| item.span()));
            if let Some(kind) = self.item(item) {
                nodes.insert(name.to_string(), Node { kind, location });
            }
        }
        nodes
    }

    fn item(&self, item: &Item) -> Option<NodeKind> {
        match item {
            Item::None => None,
            Item::Value(value) => Some(self.value(value)),
            Item::Table(table) => Some(NodeKind::Table(self.table(table))),
            Item::ArrayOfTables(array) => Some(NodeKind::Array(
                array
                    .iter()
                    .map(|table| Node {
                        kind: NodeKind::Table(self.table(table)),
                        location: self.location(table.span()),
                    })
                    .collect(),
            )),
        }
    }

    fn value(&self, value: &Value) -> NodeKind {
        match value {
            Value::String(s) => NodeKind::Str(s.value().clone()),
            Value::Integer(i) => NodeKind::Int(*i.value()),
            Value::Float(x) => NodeKind::Float(*x.value()),
            Value::Boolean(b) => NodeKind::Bool(*b.value()),
            Value::Datetime(d) => NodeKind::Datetime(d.value().to_string()),
            Value::Array(array) => NodeKind::Array(
                array
                    .iter()
                    .map(|element| Node {
                        kind: self.value(element),
                        location: self.location(element.span()),
                    })
                    .collect(),
            ),
            Value::InlineTable(table) => {
                let mut nodes = BTreeMap::new();
                for (name, element) in table.iter() {
                    let key_span = table.key(name).and_then(|key| key.span());
                    nodes.insert(
                        name.to_string(),
                        Node {
                            kind: self.value(element),
                            location: self.location(key_span.or_else(|| element.span())),
                        },
                    );
                }
                NodeKind::Table(nodes)
            }
        }
    }
}

/// Merges `child` over `base`: tables merge key by key, recursively; any
/// other value of the child (arrays included) replaces the base's value.
pub fn merge(base: Node, child: Node) -> Node {
    match (base.kind, child.kind) {
        (NodeKind::Table(mut base_table), NodeKind::Table(child_table)) => {
            for (name, child_node) in child_table {
                let merged = match base_table.remove(&name) {
                    Some(base_node) => merge(base_node, child_node),
                    None => child_node,
                };
                base_table.insert(name, merged);
            }
            Node {
                kind: NodeKind::Table(base_table),
                location: child.location,
            }
        }
        (_, child_kind) => Node {
            kind: child_kind,
            location: child.location,
        },
    }
}
