//! A tiny random Llama and a byte-level tokenizer, built in code, for tests
//! of sampling and fine-tuning that must not need a downloaded model.

use std::collections::BTreeMap;
use std::path::PathBuf;

use premem::model::{Llama, LlamaConfig, LoadedModel, Precision};
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{nn, Device, Kind, Tensor};

/// Id of the end-of-sequence token: the first id after the 256 bytes.
pub const EOS_ID: i64 = 256;

/// Two layers, grouped-query attention (4 heads, 2 KV heads), tied embeddings.
pub fn tiny_config() -> LlamaConfig {
    LlamaConfig {
        model_type: "llama".into(),
        vocab_size: 257,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 8,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        rope_scaling: None,
        max_position_embeddings: 512,
        tie_word_embeddings: true,
        attention_bias: false,
        bos_token_id: None,
        eos_token_ids: vec![EOS_ID],
    }
}

/// Byte-level BPE without merges: one token per byte (ids 0-255 in the order
/// of the byte-level alphabet), plus `<eos>` as id 256.
pub fn byte_tokenizer() -> tokenizers::Tokenizer {
    let mut alphabet: Vec<char> = tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet()
        .into_iter()
        .collect();
    alphabet.sort_unstable();
    let vocab: BTreeMap<String, u32> = alphabet
        .iter()
        .enumerate()
        .map(|(id, c)| (c.to_string(), id as u32))
        .collect();

    let byte_level = serde_json::json!({
        "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true
    });
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [{
            "id": EOS_ID, "content": "<eos>", "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true
        }],
        "normalizer": null,
        "pre_tokenizer": byte_level,
        "post_processor": null,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": []
        }
    });
    json.to_string()
        .parse()
        .expect("the byte-level tokenizer JSON is valid")
}

/// Builds the tiny model with weights drawn uniformly from (-scale, scale) by
/// a stream seeded with `seed` and each tensor's name. It avoids libtorch's
/// global generator, so tests running in parallel build identical models.
pub fn tiny_model(seed: u64, scale: f64) -> LoadedModel {
    let vs = nn::VarStore::new(Device::Cpu);
    let llama = Llama::new(&vs.root(), &tiny_config());

    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (name, tensor) in &variables {
            // Norm weights (the 1-D tensors) stay near 1, as after training.
            let offset = if tensor.dim() == 1 { 1.0 } else { 0.0 };
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv(name));
            let values: Vec<f32> = (0..tensor.numel())
                .map(|_| (offset + rng.gen_range(-scale..scale)) as f32)
                .collect();
            let values = Tensor::from_slice(&values)
                .view(tensor.size().as_slice())
                .to_kind(Kind::Float);
            tensor.shallow_clone().copy_(&values);
        }
    });

    LoadedModel {
        vs,
        llama,
        tokenizer: byte_tokenizer(),
        source: PathBuf::from("tiny-random"),
        precision: Precision::F32,
    }
}

/// FNV-1a, to mix a tensor name into a seed.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3)
    })
}
