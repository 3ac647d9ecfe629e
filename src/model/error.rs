//! Typed errors of the model runtime. Each names the file, tensor or field
//! involved so that the binary can print a message a user can act on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: missing tensor `{tensor}`")]
    MissingTensor { path: PathBuf, tensor: String },
    #[error("{path}: tensor `{tensor}` has shape {found:?}, but the config implies {expected:?}")]
    ShapeMismatch {
        path: PathBuf,
        tensor: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
    #[error("{path}: unsupported {what} `{value}`; supported: {supported}")]
    Unsupported {
        path: PathBuf,
        what: String,
        value: String,
        supported: String,
    },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("input {index}: {message}")]
    InvalidInput { index: usize, message: String },
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("interrupted: {0}")]
    Interrupted(String),
}
