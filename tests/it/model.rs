//! Model runtime tests: GGUF parsing, loading, forward parity with
//! transformers, scoring and the `premem score` command.
//!
//! Fixtures under tests/fixtures come from tools/make_fixture.py.

mod cli;
mod gguf_file;
mod gguf_model;
mod loading;
mod parity;
mod precision;
mod scoring;

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use premem::model::{LoadedModel, Precision};

use crate::helpers::repo_root;

/// Tiny random-weight fixtures: tied llama (f32 weights), untied llama with
/// llama3 RoPE scaling (f16, two shards), qwen2 with q/k/v biases (bf16).
pub const TINY_FIXTURES: [&str; 3] = [
    "tiny_llama_tied",
    "tiny_llama_untied_rope3",
    "tiny_qwen2_bias",
];

pub fn fixture_dir(name: &str) -> PathBuf {
    repo_root().join("tests").join("fixtures").join(name)
}

/// Parsed `expected.json` of a tiny fixture.
pub fn expected(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture_dir(name).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn ids_of(value: &serde_json::Value) -> Vec<i64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

/// Returns the SmolLM2 GGUF path, or `None` with a printed notice when this
/// machine lacks the file.
pub fn smollm2_path() -> Option<PathBuf> {
    let path = repo_root()
        .join("..")
        .join("..")
        .join("main")
        .join("models")
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let path = std::env::var_os("PREMEM_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or(path);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipped: SmolLM2 GGUF not found at {} (set PREMEM_SMOLLM2_GGUF)",
            path.display()
        );
        None
    }
}

/// Runs `check` on SmolLM2, loaded once in f32 for every test that needs it.
/// Does nothing when the GGUF file is missing.
pub fn with_smollm2(check: impl FnOnce(&LoadedModel)) {
    static MODEL: OnceLock<Mutex<Option<LoadedModel>>> = OnceLock::new();
    let model = MODEL.get_or_init(|| {
        let loaded = smollm2_path().map(|path| LoadedModel::load(&path, Precision::F32).unwrap());
        Mutex::new(loaded)
    });
    let guard = model
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(model) = guard.as_ref() {
        check(model);
    }
}
