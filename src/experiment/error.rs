//! Errors of reading an experiment file. Each names the file, line and
//! column of the offending key, what was expected and what was found, so
//! that a user can fix the file without reading premem's source.

use std::fmt;
use std::path::PathBuf;

/// Position of a key or value in an experiment file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// Converts a byte offset into `text` to a line and column.
    pub fn from_offset(file: PathBuf, text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        Location { file, line, column }
    }

    /// Start of a file, for errors about the whole file.
    pub fn file_start(file: PathBuf) -> Location {
        Location {
            file,
            line: 1,
            column: 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("cannot read experiment file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: invalid TOML: {message}")]
    Syntax { location: Location, message: String },
    #[error("{location}: key `{key}`: expected {expected}, found {found}{}", hint_line(.hint))]
    Invalid {
        location: Location,
        key: String,
        expected: String,
        found: String,
        hint: Option<String>,
    },
    #[error("{location}: `extends` forms a cycle: {chain}\n  hint: remove one `extends` key of the chain")]
    Cycle { location: Location, chain: String },
}

fn hint_line(hint: &Option<String>) -> String {
    match hint {
        Some(hint) => format!("\n  hint: {hint}"),
        None => String::new(),
    }
}

impl ExperimentError {
    /// Builds an [`ExperimentError::Invalid`].
    pub fn invalid(
        location: &Location,
        key: &str,
        expected: impl Into<String>,
        found: impl Into<String>,
        hint: Option<String>,
    ) -> ExperimentError {
        ExperimentError::Invalid {
            location: location.clone(),
            key: key.to_string(),
            expected: expected.into(),
            found: found.into(),
            hint,
        }
    }
}
