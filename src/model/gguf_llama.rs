//! A Llama model from a GGUF file: hyperparameters from the `llama.*`
//! metadata keys and weights renamed to Hugging Face names, with the
//! llama.cpp row order of the query and key projections undone.

use std::collections::HashMap;

use tch::Tensor;

use super::config::LlamaConfig;
use super::gguf::GgufFile;
use super::ModelError;

/// Builds the config from the file's metadata. The vocabulary size is the
/// length of `tokenizer.ggml.tokens`; the embeddings are tied when the file
/// has no `output.weight`.
pub fn read_config(file: &GgufFile) -> Result<LlamaConfig, ModelError> {
    let architecture = file
        .require("general.architecture")?
        .as_str()
        .unwrap_or_default()
        .to_string();
    if architecture != "llama" {
        return Err(ModelError::Unsupported {
            path: file.path.clone(),
            what: "metadata `general.architecture`".into(),
            value: architecture,
            supported: "llama".into(),
        });
    }
    if let Some(kind) = file
        .metadata
        .get("llama.rope.scaling.type")
        .and_then(|v| v.as_str())
    {
        if kind != "none" {
            return Err(ModelError::Unsupported {
                path: file.path.clone(),
                what: "metadata `llama.rope.scaling.type`".into(),
                value: kind.into(),
                supported: "none".into(),
            });
        }
    }

    let usize_key = |key: &str| file.require_u64(key).map(|v| v as usize);
    let hidden_size = usize_key("llama.embedding_length")?;
    let num_attention_heads = usize_key("llama.attention.head_count")?;
    if num_attention_heads == 0 || hidden_size % num_attention_heads != 0 {
        return Err(ModelError::Format {
            path: file.path.clone(),
            message: format!("llama.attention.head_count {num_attention_heads} does not divide llama.embedding_length {hidden_size}"),
        });
    }
    // `attention.key_length` overrides hidden / heads when present. RoPE
    // must rotate the whole head, as premem's decoder always does.
    let head_dim = file
        .metadata
        .get("llama.attention.key_length")
        .and_then(|v| v.as_u64())
        .map(|v| v as usize)
        .unwrap_or(hidden_size / num_attention_heads);
    if let Some(rotated) = file
        .metadata
        .get("llama.rope.dimension_count")
        .and_then(|v| v.as_u64())
    {
        if rotated as usize != head_dim {
            return Err(ModelError::Unsupported {
                path: file.path.clone(),
                what: "metadata `llama.rope.dimension_count` (partial RoPE)".into(),
                value: rotated.to_string(),
                supported: format!("the head size {head_dim}"),
            });
        }
    }

    let vocab_size = file
        .require("tokenizer.ggml.tokens")?
        .as_array()
        .map(|tokens| tokens.len())
        .ok_or_else(|| ModelError::Format {
            path: file.path.clone(),
            message: "metadata `tokenizer.ggml.tokens` is not an array".into(),
        })?;
    let float_key = |key: &str, default: f64| {
        file.metadata
            .get(key)
            .and_then(|v| v.as_f64())
            .unwrap_or(default)
    };
    let id_key = |key: &str| {
        file.metadata
            .get(key)
            .and_then(|v| v.as_u64())
            .map(|v| v as i64)
    };

    Ok(LlamaConfig {
        model_type: "llama".into(),
        vocab_size,
        hidden_size,
        intermediate_size: usize_key("llama.feed_forward_length")?,
        num_hidden_layers: usize_key("llama.block_count")?,
        num_attention_heads,
        num_key_value_heads: file
            .metadata
            .get("llama.attention.head_count_kv")
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .unwrap_or(num_attention_heads),
        head_dim,
        rms_norm_eps: float_key("llama.attention.layer_norm_rms_epsilon", 1e-5),
        rope_theta: float_key("llama.rope.freq_base", 10000.0),
        rope_scaling: None,
        max_position_embeddings: usize_key("llama.context_length")?,
        tie_word_embeddings: file.tensor("output.weight").is_none(),
        attention_bias: false,
        bos_token_id: id_key("tokenizer.ggml.bos_token_id"),
        eos_token_ids: id_key("tokenizer.ggml.eos_token_id").into_iter().collect(),
    })
}

/// Hugging Face name of a GGUF tensor name, or `None` for tensors the
/// decoder has no use for (such as `rope_freqs.weight`).
pub fn hf_name(gguf_name: &str) -> Option<String> {
    let (stem, suffix) = gguf_name.rsplit_once('.')?;
    let top = match stem {
        "token_embd" => Some("model.embed_tokens"),
        "output_norm" => Some("model.norm"),
        "output" => Some("lm_head"),
        _ => None,
    };
    if let Some(top) = top {
        return Some(format!("{top}.{suffix}"));
    }

    let rest = stem.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let hf_part = match part {
        "attn_norm" => "input_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_norm" => "post_attention_layernorm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf_part}.{suffix}"))
}

/// Undoes llama.cpp's per-head row interleaving of a q or k projection
/// `[heads * head_dim, ...]`: GGUF row `h*hd + 2j + s` is Hugging Face row
/// `h*hd + s*hd/2 + j`.
pub fn unpermute_rows(tensor: &Tensor, heads: i64) -> Tensor {
    let size = tensor.size();
    let rows = size[0];
    let head_dim = rows / heads;
    let mut grouped = vec![heads, head_dim / 2, 2];
    grouped.extend_from_slice(&size[1..]);
    tensor
        .reshape(grouped.as_slice())
        .transpose(1, 2)
        .reshape(size.as_slice())
}

/// Dequantizes every tensor the decoder uses, under Hugging Face names and
/// in Hugging Face row order.
pub fn read_weights(
    file: &GgufFile,
    cfg: &LlamaConfig,
) -> Result<HashMap<String, Tensor>, ModelError> {
    let mut weights = HashMap::new();
    for info in &file.tensors {
        let Some(name) = hf_name(&info.name) else {
            continue;
        };
        let values = file.dequantize(info)?;
        let mut tensor = Tensor::from_slice(&values).view(info.shape().as_slice());

        // A tensor of the wrong shape is left as it is, so that loading
        // reports the mismatch by name.
        let heads = if info.name.ends_with("attn_q.weight") {
            Some(cfg.num_attention_heads as i64)
        } else if info.name.ends_with("attn_k.weight") {
            Some(cfg.num_key_value_heads as i64)
        } else {
            None
        };
        if let Some(heads) = heads {
            let shape = info.shape();
            if shape.len() == 2
                && shape[0] == heads * cfg.head_dim as i64
                && cfg.head_dim.is_multiple_of(2)
            {
                tensor = unpermute_rows(&tensor, heads);
            }
        }
        weights.insert(name, tensor);
    }
    Ok(weights)
}
