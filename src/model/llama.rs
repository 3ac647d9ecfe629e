//! The Llama-family decoder on tch: embeddings, blocks of RMSNorm, grouped-query
//! attention with RoPE and a SwiGLU MLP, final norm and LM head.
//!
//! Parameters live in a [`tch::nn::VarStore`] under the Hugging Face tensor
//! names (`model.layers.0.self_attn.q_proj.weight`, ...), so loading and saving
//! safetensors is a name-for-name copy. Every forward takes explicit positions
//! and an attention mask, which lets callers left-pad prompts for generation
//! and right-pad pairs for scoring and training with one code path.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::config::LlamaConfig;

/// Root-mean-square layer norm, computed in f32 whatever the compute dtype,
/// because its reduction is the step most hurt by bf16.
#[derive(Debug)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    pub fn load(vs: nn::Path, size: usize, eps: f64) -> Self {
        let weight = vs.ones("weight", &[size as i64]);
        RmsNorm { weight, eps }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        let x32 = x.to_kind(Kind::Float);
        let variance = x32.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float);
        let normed = x32 * (variance + self.eps).rsqrt();
        (normed.to_kind(kind)) * self.weight.to_kind(kind)
    }
}

/// Key and value tensors of every layer for the sequences of one batch.
///
/// Shapes are `[batch, kv_heads, cached_len, head_dim]`. The cache grows by
/// concatenation; callers that fork sequences (k samples per prompt) expand it
/// with [`KvCache::repeat_interleave`].
#[derive(Debug, Default)]
pub struct KvCache {
    pub layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        KvCache {
            layers: (0..num_layers).map(|_| None).collect(),
        }
    }

    /// Number of cached positions (0 when empty).
    pub fn len(&self) -> i64 {
        match self.layers.first() {
            Some(Some((k, _))) => k.size()[2],
            _ => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Repeats every batch row `times` times in place: row r becomes rows
    /// r*times .. r*times+times-1.
    pub fn repeat_interleave(&mut self, times: i64) {
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.repeat_interleave_self_int(times, Some(0), None);
            *v = v.repeat_interleave_self_int(times, Some(0), None);
        }
    }

    /// Keeps only the batch rows listed in `rows` (an i64 index tensor).
    pub fn select_rows(&mut self, rows: &Tensor) {
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.index_select(0, rows);
            *v = v.index_select(0, rows);
        }
    }
}

/// Inverse RoPE frequencies, `[head_dim / 2]` f32, with Llama 3 scaling when
/// the config asks for it.
pub fn rope_inv_freq(cfg: &LlamaConfig) -> Vec<f32> {
    let half = cfg.head_dim / 2;
    let mut inv: Vec<f64> = (0..half)
        .map(|i| 1.0 / cfg.rope_theta.powf((2 * i) as f64 / cfg.head_dim as f64))
        .collect();
    if let Some(s) = &cfg.rope_scaling {
        let old = s.original_max_position_embeddings as f64;
        let low_wavelen = old / s.low_freq_factor;
        let high_wavelen = old / s.high_freq_factor;
        for f in inv.iter_mut() {
            let wavelen = 2.0 * std::f64::consts::PI / *f;
            if wavelen > low_wavelen {
                *f /= s.factor;
            } else if wavelen >= high_wavelen {
                let smooth = (old / wavelen - s.low_freq_factor)
                    / (s.high_freq_factor - s.low_freq_factor);
                *f = (1.0 - smooth) * *f / s.factor + smooth * *f;
            }
        }
    }
    inv.into_iter().map(|f| f as f32).collect()
}

fn rotate_half(x: &Tensor) -> Tensor {
    let half = x.size()[3] / 2;
    let x1 = x.narrow(3, 0, half);
    let x2 = x.narrow(3, half, half);
    Tensor::cat(&[-x2, x1], 3)
}

/// Self-attention with grouped-query heads.
#[derive(Debug)]
pub struct Attention {
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    o_proj: nn::Linear,
    num_heads: i64,
    num_kv_heads: i64,
    head_dim: i64,
}

fn linear(vs: nn::Path, inputs: usize, outputs: usize, bias: bool) -> nn::Linear {
    let config = nn::LinearConfig {
        bias,
        ..Default::default()
    };
    nn::linear(vs, inputs as i64, outputs as i64, config)
}

impl Attention {
    pub fn load(vs: nn::Path, cfg: &LlamaConfig) -> Self {
        let hd = cfg.head_dim;
        let h = cfg.hidden_size;
        Attention {
            q_proj: linear(&vs / "q_proj", h, cfg.num_attention_heads * hd, cfg.attention_bias),
            k_proj: linear(&vs / "k_proj", h, cfg.num_key_value_heads * hd, cfg.attention_bias),
            v_proj: linear(&vs / "v_proj", h, cfg.num_key_value_heads * hd, cfg.attention_bias),
            o_proj: linear(&vs / "o_proj", cfg.num_attention_heads * hd, h, false),
            num_heads: cfg.num_attention_heads as i64,
            num_kv_heads: cfg.num_key_value_heads as i64,
            head_dim: hd as i64,
        }
    }

    /// `x`: `[batch, seq, hidden]`; `cos`/`sin`: `[batch, 1, seq, head_dim]`;
    /// `mask`: boolean `[batch, 1, seq, cached + seq]`, true where attending
    /// is allowed.
    pub fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Tensor {
        let (b, t, _) = x.size3().expect("attention input must be [batch, seq, hidden]");
        let q = self
            .q_proj
            .forward(x)
            .view([b, t, self.num_heads, self.head_dim])
            .transpose(1, 2);
        let k = self
            .k_proj
            .forward(x)
            .view([b, t, self.num_kv_heads, self.head_dim])
            .transpose(1, 2);
        let v = self
            .v_proj
            .forward(x)
            .view([b, t, self.num_kv_heads, self.head_dim])
            .transpose(1, 2);

        let q = &q * cos + rotate_half(&q) * sin;
        let k = &k * cos + rotate_half(&k) * sin;

        let (k, v) = match cache {
            Some(slot) => {
                let (k, v) = match slot.take() {
                    Some((old_k, old_v)) => (Tensor::cat(&[old_k, k], 2), Tensor::cat(&[old_v, v], 2)),
                    None => (k, v),
                };
                *slot = Some((k.shallow_clone(), v.shallow_clone()));
                (k, v)
            }
            None => (k, v),
        };

        let groups = self.num_heads / self.num_kv_heads;
        let (k, v) = if groups > 1 {
            (
                k.repeat_interleave_self_int(groups, Some(1), None),
                v.repeat_interleave_self_int(groups, Some(1), None),
            )
        } else {
            (k, v)
        };

        let y = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            Some(mask),
            0.0,
            false,
            None::<f64>,
            false,
        );
        let y = y.transpose(1, 2).contiguous().view([b, t, self.num_heads * self.head_dim]);
        self.o_proj.forward(&y)
    }
}

/// SwiGLU feed-forward block: down(silu(gate(x)) * up(x)).
#[derive(Debug)]
pub struct Mlp {
    gate_proj: nn::Linear,
    up_proj: nn::Linear,
    down_proj: nn::Linear,
}

impl Mlp {
    pub fn load(vs: nn::Path, cfg: &LlamaConfig) -> Self {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Mlp {
            gate_proj: linear(&vs / "gate_proj", h, i, false),
            up_proj: linear(&vs / "up_proj", h, i, false),
            down_proj: linear(&vs / "down_proj", i, h, false),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.down_proj
            .forward(&(self.gate_proj.forward(x).silu() * self.up_proj.forward(x)))
    }
}

/// One pre-norm decoder block.
#[derive(Debug)]
pub struct Block {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl Block {
    pub fn load(vs: nn::Path, cfg: &LlamaConfig) -> Self {
        Block {
            input_layernorm: RmsNorm::load(&vs / "input_layernorm", cfg.hidden_size, cfg.rms_norm_eps),
            self_attn: Attention::load(&vs / "self_attn", cfg),
            post_attention_layernorm: RmsNorm::load(
                &vs / "post_attention_layernorm",
                cfg.hidden_size,
                cfg.rms_norm_eps,
            ),
            mlp: Mlp::load(&vs / "mlp", cfg),
        }
    }

    pub fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Tensor {
        let h = x + self
            .self_attn
            .forward(&self.input_layernorm.forward(x), cos, sin, mask, cache);
        &h + self.mlp.forward(&self.post_attention_layernorm.forward(&h))
    }
}

/// The whole decoder. Construct it inside a VarStore, then fill the variables
/// from a checkpoint (see the loaders in this module's parent).
#[derive(Debug)]
pub struct Llama {
    pub config: LlamaConfig,
    embed_tokens: nn::Embedding,
    layers: Vec<Block>,
    norm: RmsNorm,
    /// `None` when the embeddings are tied to the output projection.
    lm_head: Option<nn::Linear>,
    inv_freq: Tensor,
}

impl Llama {
    pub fn new(vs: &nn::Path, cfg: &LlamaConfig) -> Self {
        let model = vs / "model";
        let embed_tokens = nn::embedding(
            &model / "embed_tokens",
            cfg.vocab_size as i64,
            cfg.hidden_size as i64,
            Default::default(),
        );
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Block::load(&model / "layers" / i, cfg))
            .collect();
        let norm = RmsNorm::load(&model / "norm", cfg.hidden_size, cfg.rms_norm_eps);
        let lm_head = if cfg.tie_word_embeddings {
            None
        } else {
            Some(linear(vs / "lm_head", cfg.hidden_size, cfg.vocab_size, false))
        };
        let inv_freq = Tensor::from_slice(&rope_inv_freq(cfg)).to_device(vs.device());
        Llama {
            config: cfg.clone(),
            embed_tokens,
            layers,
            norm,
            lm_head,
            inv_freq,
        }
    }

    /// Hidden states after the final norm, `[batch, seq, hidden]`.
    ///
    /// `input_ids` and `positions` are `[batch, seq]` i64; `key_mask` is a
    /// boolean `[batch, cached + seq]` that is false at padding keys. The
    /// causal part of the mask is added here. With a cache, the new keys
    /// are appended to it.
    pub fn hidden_states(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        key_mask: &Tensor,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor {
        let (b, t) = input_ids.size2().expect("input_ids must be [batch, seq]");
        let past = cache.as_ref().map(|c| c.len()).unwrap_or(0);
        let x = self.embed_tokens.forward(input_ids);
        let dtype = x.kind();
        let device = x.device();

        // RoPE tables for these positions, computed in f32.
        let freqs = positions.to_kind(Kind::Float).unsqueeze(-1) * self.inv_freq.view([1, 1, -1]);
        let emb = Tensor::cat(&[&freqs, &freqs], -1).unsqueeze(1);
        let cos = emb.cos().to_kind(dtype);
        let sin = emb.sin().to_kind(dtype);

        // Causal mask over cached + new keys, combined with key padding.
        let total = past + t;
        let query_pos = Tensor::arange_start(past, total, (Kind::Int64, device)).view([t, 1]);
        let key_pos = Tensor::arange(total, (Kind::Int64, device)).view([1, total]);
        let causal = key_pos.le_tensor(&query_pos).view([1, 1, t, total]);
        let mask = causal.logical_and(&key_mask.view([b, 1, 1, total]));

        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            h = layer.forward(&h, &cos, &sin, &mask, slot);
        }
        self.norm.forward(&h)
    }

    /// Projects hidden states to vocabulary logits.
    pub fn logits(&self, hidden: &Tensor) -> Tensor {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => hidden.matmul(&self.embed_tokens.ws.tr()),
        }
    }

    /// Logits `[batch, seq, vocab]` for every input position.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        key_mask: &Tensor,
        cache: Option<&mut KvCache>,
    ) -> Tensor {
        self.logits(&self.hidden_states(input_ids, positions, key_mask, cache))
    }
}
