//! Hugging Face checkpoint folders: `config.json` and safetensors weights,
//! single-file (`model.safetensors`) or sharded
//! (`model.safetensors.index.json` plus the shards it lists).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;
use tch::Tensor;

use super::config::{Llama3RopeScaling, LlamaConfig};
use super::ModelError;

/// Model types whose checkpoints match premem's decoder.
const MODEL_TYPES: &str = "llama, mistral, qwen2";

/// RoPE settings, found under `rope_scaling` or (transformers 5) `rope_parameters`.
#[derive(Debug, Deserialize, Default)]
struct RopeParameters {
    rope_type: Option<String>,
    /// Older configs spell `rope_type` as `type`.
    #[serde(rename = "type")]
    kind: Option<String>,
    rope_theta: Option<f64>,
    factor: Option<f64>,
    low_freq_factor: Option<f64>,
    high_freq_factor: Option<f64>,
    original_max_position_embeddings: Option<usize>,
}

/// The fields of `config.json` premem reads; optional ones carry the
/// transformers defaults of LlamaConfig.
#[derive(Debug, Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "default_rms_norm_eps")]
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    rope_parameters: Option<RopeParameters>,
    rope_scaling: Option<RopeParameters>,
    #[serde(default = "default_max_positions")]
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    hidden_act: Option<String>,
    #[serde(default)]
    use_sliding_window: bool,
    bos_token_id: Option<i64>,
    eos_token_id: Option<EosIds>,
}

/// `eos_token_id` is a single id or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EosIds {
    One(i64),
    Many(Vec<i64>),
}

fn default_rms_norm_eps() -> f64 {
    1e-6
}

fn default_max_positions() -> usize {
    2048
}

/// Reads `dir/config.json` into a [`LlamaConfig`].
pub fn read_config(dir: &Path) -> Result<LlamaConfig, ModelError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    let raw: HfConfig = serde_json::from_str(&text).map_err(|e| ModelError::Format {
        path: path.clone(),
        message: format!("invalid config.json: {e}"),
    })?;
    resolve_config(raw, &path)
}

fn unsupported(path: &Path, what: &str, value: impl ToString, supported: &str) -> ModelError {
    ModelError::Unsupported {
        path: path.to_path_buf(),
        what: what.into(),
        value: value.to_string(),
        supported: supported.into(),
    }
}

fn resolve_config(raw: HfConfig, path: &Path) -> Result<LlamaConfig, ModelError> {
    let model_type = raw.model_type.clone().unwrap_or_default();
    if !["llama", "mistral", "qwen2"].contains(&model_type.as_str()) {
        return Err(unsupported(
            path,
            "field `model_type`",
            &model_type,
            MODEL_TYPES,
        ));
    }
    if let Some(act) = raw.hidden_act.as_deref().filter(|a| *a != "silu") {
        return Err(unsupported(path, "field `hidden_act`", act, "silu"));
    }
    if raw.mlp_bias {
        return Err(unsupported(path, "field `mlp_bias`", true, "false"));
    }
    if raw.use_sliding_window {
        return Err(unsupported(
            path,
            "field `use_sliding_window`",
            true,
            "false",
        ));
    }
    let heads_divide_hidden =
        raw.num_attention_heads > 0 && raw.hidden_size.is_multiple_of(raw.num_attention_heads);
    if raw.num_attention_heads == 0 || (!heads_divide_hidden && raw.head_dim.is_none()) {
        return Err(ModelError::Format {
            path: path.to_path_buf(),
            message: format!(
                "field `num_attention_heads` {} does not divide `hidden_size` {} and `head_dim` is absent",
                raw.num_attention_heads, raw.hidden_size
            ),
        });
    }

    // transformers 5 moved rope_theta and the scaling into `rope_parameters`.
    let rope = raw.rope_parameters.or(raw.rope_scaling).unwrap_or_default();
    let rope_theta = raw.rope_theta.or(rope.rope_theta).unwrap_or(10000.0);
    let rope_type = rope
        .rope_type
        .clone()
        .or(rope.kind.clone())
        .unwrap_or_else(|| "default".into());
    let rope_scaling = match rope_type.as_str() {
        "default" => None,
        "llama3" => Some(llama3_scaling(&rope, path)?),
        other => {
            return Err(unsupported(
                path,
                "field `rope_type`",
                other,
                "default, llama3",
            ))
        }
    };

    let eos_token_ids = match raw.eos_token_id {
        None => vec![],
        Some(EosIds::One(id)) => vec![id],
        Some(EosIds::Many(ids)) => ids,
    };
    Ok(LlamaConfig {
        attention_bias: raw.attention_bias || model_type == "qwen2",
        model_type,
        vocab_size: raw.vocab_size,
        hidden_size: raw.hidden_size,
        intermediate_size: raw.intermediate_size,
        num_hidden_layers: raw.num_hidden_layers,
        num_attention_heads: raw.num_attention_heads,
        num_key_value_heads: raw.num_key_value_heads.unwrap_or(raw.num_attention_heads),
        head_dim: raw
            .head_dim
            .unwrap_or(raw.hidden_size / raw.num_attention_heads),
        rms_norm_eps: raw.rms_norm_eps,
        rope_theta,
        rope_scaling,
        max_position_embeddings: raw.max_position_embeddings,
        tie_word_embeddings: raw.tie_word_embeddings,
        bos_token_id: raw.bos_token_id,
        eos_token_ids,
    })
}

fn llama3_scaling(rope: &RopeParameters, path: &Path) -> Result<Llama3RopeScaling, ModelError> {
    let missing = |field: &str| ModelError::Format {
        path: path.to_path_buf(),
        message: format!("rope_type llama3 needs the field `{field}`"),
    };
    Ok(Llama3RopeScaling {
        factor: rope.factor.ok_or_else(|| missing("factor"))?,
        low_freq_factor: rope
            .low_freq_factor
            .ok_or_else(|| missing("low_freq_factor"))?,
        high_freq_factor: rope
            .high_freq_factor
            .ok_or_else(|| missing("high_freq_factor"))?,
        original_max_position_embeddings: rope
            .original_max_position_embeddings
            .ok_or_else(|| missing("original_max_position_embeddings"))?,
    })
}

/// Builds the `config.json` object transformers reads for `cfg`.
pub fn config_json(cfg: &LlamaConfig) -> serde_json::Value {
    let architecture = match cfg.model_type.as_str() {
        "qwen2" => "Qwen2ForCausalLM",
        "mistral" => "MistralForCausalLM",
        _ => "LlamaForCausalLM",
    };
    let mut rope = serde_json::json!({ "rope_type": "default", "rope_theta": cfg.rope_theta });
    if let Some(s) = &cfg.rope_scaling {
        rope = serde_json::json!({
            "rope_type": "llama3",
            "rope_theta": cfg.rope_theta,
            "factor": s.factor,
            "low_freq_factor": s.low_freq_factor,
            "high_freq_factor": s.high_freq_factor,
            "original_max_position_embeddings": s.original_max_position_embeddings,
        });
    }
    let eos = match cfg.eos_token_ids.as_slice() {
        [] => serde_json::Value::Null,
        [one] => serde_json::json!(one),
        many => serde_json::json!(many),
    };
    let mut json = serde_json::json!({
        "architectures": [architecture],
        "model_type": cfg.model_type,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": cfg.rms_norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_parameters": rope.clone(),
        "max_position_embeddings": cfg.max_position_embeddings,
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": eos,
        "dtype": "float32",
    });
    if cfg.rope_scaling.is_some() {
        json["rope_scaling"] = rope;
    }
    if cfg.model_type != "qwen2" {
        json["attention_bias"] = serde_json::json!(cfg.attention_bias);
        json["mlp_bias"] = serde_json::json!(false);
    }
    json
}

/// Names the file that describes a folder's weights in errors:
/// `model.safetensors`, else the shard index.
pub fn weights_file(dir: &Path) -> PathBuf {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        single
    } else {
        dir.join("model.safetensors.index.json")
    }
}

/// Reads every tensor of the folder's safetensors weights, converted to f32.
pub fn read_weights(dir: &Path) -> Result<HashMap<String, Tensor>, ModelError> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let files = if single.is_file() {
        vec![single]
    } else if index.is_file() {
        shard_files(&index, dir)?
    } else {
        return Err(ModelError::Format {
            path: dir.to_path_buf(),
            message: "no model.safetensors or model.safetensors.index.json in this folder".into(),
        });
    };

    let mut weights = HashMap::new();
    for file in files {
        read_safetensors_file(&file, &mut weights)?;
    }
    Ok(weights)
}

/// Shard file names listed in the `weight_map` of an index file.
fn shard_files(index: &Path, dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    #[derive(Deserialize)]
    struct Index {
        weight_map: HashMap<String, String>,
    }
    let text = std::fs::read_to_string(index).map_err(|source| ModelError::Io {
        path: index.to_path_buf(),
        source,
    })?;
    let parsed: Index = serde_json::from_str(&text).map_err(|e| ModelError::Format {
        path: index.to_path_buf(),
        message: format!("invalid index: {e}"),
    })?;
    let names: BTreeSet<String> = parsed.weight_map.into_values().collect();
    Ok(names.into_iter().map(|name| dir.join(name)).collect())
}

fn read_safetensors_file(
    path: &Path,
    weights: &mut HashMap<String, Tensor>,
) -> Result<(), ModelError> {
    let io_error = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    // SAFETY: read-only map of a checkpoint nothing writes while premem loads it.
    let bytes = unsafe { Mmap::map(&file) }.map_err(io_error)?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| ModelError::Format {
        path: path.to_path_buf(),
        message: format!("invalid safetensors file: {e}"),
    })?;

    for (name, view) in tensors.tensors() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(unsupported(
                    path,
                    &format!("dtype of tensor `{name}`"),
                    format!("{other:?}"),
                    "F32, F16, BF16",
                ))
            }
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        weights.insert(name, Tensor::from_slice(&values).view(shape.as_slice()));
    }
    Ok(())
}
