//! Reasoning datasets as premem reads them: GSM8k- and MATH-style JSONL files.
//!
//! Every later stage keys its per-example tables by [`Example::id`], so ids
//! must be stable across runs and machines: an explicit `id` field when the
//! file has one, else a digest of the line's content. Nothing is skipped
//! silently: a malformed line, a missing or empty field, a duplicate id or an
//! empty file is an error that names `file:line` and the field.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Layout of a dataset and of its answers, which also selects the grader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Fields `question` and `answer`; the answer ends in `#### N`.
    Gsm8k,
    /// Fields `problem` and `solution`; the solution holds a `\boxed{}` answer.
    Math,
}

impl Format {
    /// Name used in experiment files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Gsm8k => "gsm8k",
            Format::Math => "math",
        }
    }

    /// Field that holds the question.
    pub fn question_field(self) -> &'static str {
        match self {
            Format::Gsm8k => "question",
            Format::Math => "problem",
        }
    }

    /// Field that holds the reference solution.
    pub fn solution_field(self) -> &'static str {
        match self {
            Format::Gsm8k => "answer",
            Format::Math => "solution",
        }
    }

    /// Default memorization threshold on target perplexity: exp(exp(-2.3))
    /// for GSM8k and exp(exp(-1.7)) for MATH, the values of Kang et al. 2024
    /// ("Learning dynamics of LLM finetuning", arXiv 2411.07681).
    pub fn default_threshold(self) -> f64 {
        match self {
            Format::Gsm8k => (-2.3f64).exp().exp(),
            Format::Math => (-1.7f64).exp().exp(),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gsm8k" => Ok(Format::Gsm8k),
            "math" => Ok(Format::Math),
            other => Err(format!("unknown format `{other}`: expected `gsm8k` or `math`")),
        }
    }
}

/// One question with its reference solution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Stable id: the `id` field, else `h` + the first 16 hex digits of the
    /// SHA-256 of the line's text.
    pub id: String,
    /// 1-based line number in the source file, for error messages.
    pub line: usize,
    pub question: String,
    pub solution: String,
    /// Other string or number fields of the line (`level`, `type`,
    /// `family`, `seed_id`, ...), kept as text in file order.
    pub extra: Vec<(String, String)>,
}

impl Example {
    /// Value of an extra field, if the line had it.
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Errors of reading a dataset; each names the file and, where there is one,
/// the line and field.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read data file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: invalid JSON: {message}")]
    Json {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: missing field `{field}` (a {format} file needs `{question}` and `{solution}`)")]
    MissingField {
        path: PathBuf,
        line: usize,
        field: String,
        format: Format,
        question: &'static str,
        solution: &'static str,
    },
    #[error("{path}:{line}: field `{field}` is empty or not a string")]
    EmptyField {
        path: PathBuf,
        line: usize,
        field: String,
    },
    #[error("{path}:{line}: duplicate id `{id}` (first seen on line {first_line}); ids must be unique")]
    DuplicateId {
        path: PathBuf,
        line: usize,
        id: String,
        first_line: usize,
    },
    #[error("{path}: the file holds no examples")]
    Empty { path: PathBuf },
}

/// Reads every example of a JSONL file in the given format.
///
/// Blank lines are allowed and ignored (they are common at the end of a
/// file); every other line must be a JSON object with the format's fields.
pub fn load_jsonl(path: &Path, format: Format) -> Result<Vec<Example>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_jsonl(path, &text, format)
}

/// Parses JSONL text as [`load_jsonl`] does; `path` is only used in errors.
pub fn parse_jsonl(path: &Path, text: &str, format: Format) -> Result<Vec<Example>, DataError> {
    let mut examples = Vec::new();
    let mut first_line_of_id: HashMap<String, usize> = HashMap::new();

    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }

        let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| DataError::Json {
            path: path.to_path_buf(),
            line,
            message: e.to_string(),
        })?;
        let Some(object) = value.as_object() else {
            return Err(DataError::Json {
                path: path.to_path_buf(),
                line,
                message: "expected a JSON object".into(),
            });
        };

        let question = required_string(path, line, object, format, format.question_field())?;
        let solution = required_string(path, line, object, format, format.solution_field())?;

        let id = match object.get("id") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(_) => {
                return Err(DataError::EmptyField {
                    path: path.to_path_buf(),
                    line,
                    field: "id".into(),
                })
            }
            None => content_id(raw.trim()),
        };
        if let Some(&first_line) = first_line_of_id.get(&id) {
            return Err(DataError::DuplicateId {
                path: path.to_path_buf(),
                line,
                id,
                first_line,
            });
        }
        first_line_of_id.insert(id.clone(), line);

        let extra = object
            .iter()
            .filter(|(k, _)| {
                k.as_str() != "id"
                    && k.as_str() != format.question_field()
                    && k.as_str() != format.solution_field()
            })
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k.clone(), s.clone())),
                serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
                serde_json::Value::Bool(b) => Some((k.clone(), b.to_string())),
                _ => None,
            })
            .collect();

        examples.push(Example {
            id,
            line,
            question,
            solution,
            extra,
        });
    }

    if examples.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(examples)
}

fn required_string(
    path: &Path,
    line: usize,
    object: &serde_json::Map<String, serde_json::Value>,
    format: Format,
    field: &str,
) -> Result<String, DataError> {
    match object.get(field) {
        None => Err(DataError::MissingField {
            path: path.to_path_buf(),
            line,
            field: field.into(),
            format,
            question: format.question_field(),
            solution: format.solution_field(),
        }),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(_) => Err(DataError::EmptyField {
            path: path.to_path_buf(),
            line,
            field: field.into(),
        }),
    }
}

/// Content id of a line without an `id` field: `h` + 16 hex digits of SHA-256.
pub fn content_id(line: &str) -> String {
    let digest = Sha256::digest(line.as_bytes());
    format!("h{}", &hex::encode(digest)[..16])
}

/// Prompt and target texts built from an example with the experiment's
/// templates. `{question}` and `{solution}` are replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Templates {
    pub prompt: String,
    pub target: String,
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            prompt: "{question}\nAnswer:".into(),
            target: " {solution}\nDone.".into(),
        }
    }
}

impl Templates {
    pub fn prompt(&self, example: &Example) -> String {
        self.prompt.replace("{question}", &example.question)
    }

    pub fn target(&self, example: &Example) -> String {
        self.target.replace("{solution}", &example.solution)
    }
}
