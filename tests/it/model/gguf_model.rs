//! A tiny fixture converted to GGUF here, the way llama.cpp lays models out
//! (renamed tensors, innermost-first dimensions, interleaved q/k rows,
//! tokenizer in metadata), must load back to the same logits and tokens.

use std::collections::HashMap;

use premem::model::{hf, LoadedModel, Precision};
use tch::{Kind, Tensor};

use super::gguf_file::GgufWriter;
use super::{expected, fixture_dir, ids_of};

const FIXTURE: &str = "tiny_llama_tied";

/// GGUF name of a Hugging Face tensor name of a Llama decoder.
fn gguf_name(hf_name: &str) -> String {
    let top = [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];
    if let Some((_, name)) = top.iter().find(|(hf, _)| *hf == hf_name) {
        return name.to_string();
    }
    let rest = hf_name.strip_prefix("model.layers.").unwrap();
    let (layer, part) = rest.split_once('.').unwrap();
    let parts = [
        ("input_layernorm.weight", "attn_norm.weight"),
        ("self_attn.q_proj.weight", "attn_q.weight"),
        ("self_attn.k_proj.weight", "attn_k.weight"),
        ("self_attn.v_proj.weight", "attn_v.weight"),
        ("self_attn.o_proj.weight", "attn_output.weight"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"),
        ("mlp.up_proj.weight", "ffn_up.weight"),
        ("mlp.down_proj.weight", "ffn_down.weight"),
    ];
    let (_, gguf_part) = parts.iter().find(|(hf, _)| *hf == part).unwrap();
    format!("blk.{layer}.{gguf_part}")
}

/// Interleaves the rows of each head as llama.cpp's converter does: GGUF row
/// `h*hd + 2j + s` takes Hugging Face row `h*hd + s*hd/2 + j`.
fn permute_rows(rows: &[Vec<f32>], heads: usize) -> Vec<Vec<f32>> {
    let head_dim = rows.len() / heads;
    let mut out = vec![Vec::new(); rows.len()];
    for h in 0..heads {
        for j in 0..head_dim / 2 {
            for s in 0..2 {
                out[h * head_dim + 2 * j + s] = rows[h * head_dim + s * head_dim / 2 + j].clone();
            }
        }
    }
    out
}

fn gguf_array_of_strings(items: &[String]) -> Vec<u8> {
    let mut bytes = 8u32.to_le_bytes().to_vec();
    bytes.extend((items.len() as u64).to_le_bytes());
    for item in items {
        GgufWriter::string(&mut bytes, item);
    }
    bytes
}

/// Tokens (by id), merges and token types of the fixture's tokenizer.json.
fn tokenizer_metadata() -> (Vec<String>, Vec<String>, Vec<i32>) {
    let text = std::fs::read_to_string(fixture_dir(FIXTURE).join("tokenizer.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vocab = json["model"]["vocab"].as_object().unwrap();
    let mut tokens = vec![String::new(); vocab.len()];
    for (token, id) in vocab {
        tokens[id.as_u64().unwrap() as usize] = token.clone();
    }
    let merges = json["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            format!(
                "{} {}",
                pair[0].as_str().unwrap(),
                pair[1].as_str().unwrap()
            )
        })
        .collect();
    let special: Vec<u64> = json["added_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    let types = (0..tokens.len() as u64)
        .map(|id| if special.contains(&id) { 3 } else { 1 })
        .collect();
    (tokens, merges, types)
}

fn write_gguf(path: &std::path::Path) {
    let config = hf::read_config(&fixture_dir(FIXTURE)).unwrap();
    let weights: HashMap<String, Tensor> = hf::read_weights(&fixture_dir(FIXTURE)).unwrap();
    let (tokens, merges, types) = tokenizer_metadata();

    let mut w = GgufWriter::new(3);
    w.kv_string("general.architecture", "llama")
        .kv_u32("llama.block_count", config.num_hidden_layers as u32)
        .kv_u32(
            "llama.context_length",
            config.max_position_embeddings as u32,
        )
        .kv_u32("llama.embedding_length", config.hidden_size as u32)
        .kv_u32("llama.feed_forward_length", config.intermediate_size as u32)
        .kv_u32(
            "llama.attention.head_count",
            config.num_attention_heads as u32,
        )
        .kv_u32(
            "llama.attention.head_count_kv",
            config.num_key_value_heads as u32,
        )
        .kv(
            "llama.attention.layer_norm_rms_epsilon",
            6,
            &(config.rms_norm_eps as f32).to_le_bytes(),
        )
        .kv(
            "llama.rope.freq_base",
            6,
            &(config.rope_theta as f32).to_le_bytes(),
        )
        .kv_string("tokenizer.ggml.model", "gpt2")
        .kv("tokenizer.ggml.tokens", 9, &gguf_array_of_strings(&tokens))
        .kv("tokenizer.ggml.merges", 9, &gguf_array_of_strings(&merges))
        .kv_u32("tokenizer.ggml.bos_token_id", 1)
        .kv_u32("tokenizer.ggml.eos_token_id", 2);
    let mut type_bytes = 5u32.to_le_bytes().to_vec();
    type_bytes.extend((types.len() as u64).to_le_bytes());
    type_bytes.extend(types.iter().flat_map(|t| t.to_le_bytes()));
    w.kv("tokenizer.ggml.token_type", 9, &type_bytes);

    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    for name in names {
        let tensor = &weights[name];
        let shape: Vec<usize> = tensor.size().iter().map(|&d| d as usize).collect();
        let flat = Vec::<f32>::try_from(tensor.view([-1])).unwrap();
        let mut rows: Vec<Vec<f32>> = flat
            .chunks(*shape.last().unwrap())
            .map(|r| r.to_vec())
            .collect();
        if name.ends_with("q_proj.weight") {
            rows = permute_rows(&rows, config.num_attention_heads);
        } else if name.ends_with("k_proj.weight") {
            rows = permute_rows(&rows, config.num_key_value_heads);
        }
        let data: Vec<u8> = rows
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        w.tensor(&gguf_name(name), &dims, 0, &data);
    }
    std::fs::write(path, w.bytes()).unwrap();
}

#[test]
fn gguf_conversion_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_gguf(&path);
    let from_gguf = LoadedModel::load(&path, Precision::F32).unwrap();
    let from_hf = LoadedModel::load(&fixture_dir(FIXTURE), Precision::F32).unwrap();

    let config = &from_gguf.llama.config;
    assert!(config.tie_word_embeddings);
    assert_eq!(config.num_key_value_heads, 2);
    assert_eq!(config.vocab_size, from_hf.llama.config.vocab_size);
    assert_eq!(config.eos_token_ids, vec![2]);

    let ids = ids_of(&expected(FIXTURE)["input_ids"]);
    let n = ids.len() as i64;
    let input = Tensor::from_slice(&ids).view([1, n]);
    let positions = Tensor::arange(n, (Kind::Int64, tch::Device::Cpu)).view([1, n]);
    let mask = Tensor::ones([1, n], (Kind::Bool, tch::Device::Cpu));
    let run =
        |model: &LoadedModel| tch::no_grad(|| model.llama.forward(&input, &positions, &mask, None));
    let diff = (run(&from_gguf) - run(&from_hf))
        .abs()
        .max()
        .double_value(&[]);
    assert!(diff < 1e-5, "max abs logit difference {diff}");

    for text in [
        "Question: Tom has 12 apples.\nAnswer: 12 + 30 = 42\nDone.",
        "héllo ✓ 東京",
        "<|im_start|>x<|im_end|>",
    ] {
        let want = from_hf.tokenizer.encode(text, false).unwrap();
        let got = from_gguf.tokenizer.encode(text, false).unwrap();
        assert_eq!(got.get_ids(), want.get_ids(), "{text:?}");
        assert_eq!(got.get_offsets(), want.get_offsets(), "{text:?}");
    }
}
