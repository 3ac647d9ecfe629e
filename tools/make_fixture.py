"""Build the model fixtures that premem's parity tests compare against.

Run with the project venv (transformers, tokenizers, torch; `smollm2` also
needs the gguf and accelerate packages):

    python tools/make_fixture.py tiny       # tests/fixtures/tiny_*/
    python tools/make_fixture.py smollm2    # tests/fixtures/smollm2_expected.json

`tiny` writes three random-weight Hugging Face folders (config.json,
safetensors weights, tokenizer.json) plus `expected.json` holding the
transformers logits for fixed input ids, greedy `generate` output ids and the
NLL of one (prompt, target) pair. `smollm2` loads the SmolLM2 GGUF file through
transformers' GGUF loader (dequantized to f32) and writes token ids for a set
of strings and a slice of the logits for one prompt.

Everything runs offline; the outputs are committed, so rerunning the script
is only needed when a fixture changes.
"""

import copy
import json
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
GGUF_PATH = REPO.parent.parent / "main" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

# Text the tiny tokenizer learns its merges from: arithmetic word problems in
# the prompt/target layout premem scores.
CORPUS = [
    "Question: Tom has 12 apples and buys 30 more. How many apples does he have?\nAnswer: 12 + 30 = 42\nDone.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "The answer is 72. Weng earns $12 an hour for babysitting.\nDone.",
    "Betty is saving money for a new wallet which costs $100. Answer: the total is 5 dollars.\nDone.",
    "Find the value of x such that x^2 = 49. The solution is \\boxed{7}.\nDone.",
    "héllo wörld — ünïcode ✓ 東京\nAnswer:\nDone.",
]

PROMPT_TEXT = "Question: Tom has 12 apples.\nAnswer:"
TARGET_TEXT = " 12 + 30 = 42\nDone."


def build_tokenizer(vocab_size):
    """Train a byte-level BPE with SmolLM2's pre-tokenizer layout: single digits, then ByteLevel."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    return tok


def make_config(kind, vocab_size):
    from transformers import LlamaConfig, Qwen2Config

    common = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        initializer_range=0.1,
        bos_token_id=1,
        eos_token_id=2,
    )
    if kind == "llama_tied":
        return LlamaConfig(tie_word_embeddings=True, rope_theta=10000.0, **common)
    if kind == "llama_untied_rope3":
        scaling = dict(
            rope_type="llama3",
            factor=8.0,
            low_freq_factor=1.0,
            high_freq_factor=4.0,
            original_max_position_embeddings=16,
            rope_theta=500000.0,
        )
        return LlamaConfig(tie_word_embeddings=False, rope_theta=500000.0, rope_scaling=scaling, **common)
    if kind == "qwen2_bias":
        return Qwen2Config(tie_word_embeddings=False, rope_theta=1000000.0, **common)
    raise ValueError(kind)


def round_weights(model, dtype):
    """Round every parameter to `dtype` so that saving in it loses nothing."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).to(torch.float32))


def target_nll(model, tok, prompt, target):
    """Mean NLL of the target tokens, boundary at the first token starting at or after len(prompt)."""
    enc = tok.encode(prompt + target)
    boundary = len(prompt.encode("utf-8"))
    first = next(i for i, (start, _) in enumerate(enc.offsets) if start >= boundary)
    ids = torch.tensor([enc.ids])
    with torch.no_grad():
        logits = model(ids).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    nll = [-logp[i - 1, enc.ids[i]].item() for i in range(first, len(enc.ids))]
    return {"prompt": prompt, "target": target, "ids": enc.ids, "target_start": first, "nll_mean": sum(nll) / len(nll)}


def make_tiny():
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    tok = build_tokenizer(300)
    vocab_size = tok.get_vocab_size()
    # kind -> (dtype stored in the safetensors file, max shard size)
    layouts = {
        "llama_tied": (torch.float32, None),
        "llama_untied_rope3": (torch.float16, "120KB"),
        "qwen2_bias": (torch.bfloat16, None),
    }
    for kind, (dtype, shard) in layouts.items():
        cfg = make_config(kind, vocab_size)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
        if kind == "qwen2_bias":
            with torch.no_grad():
                for layer in model.model.layers:
                    for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                        proj.bias.normal_(0.0, 0.1)
        round_weights(model, dtype)

        input_ids = [tok.token_to_id("<|im_start|>")] + tok.encode(PROMPT_TEXT + TARGET_TEXT).ids
        with torch.no_grad():
            logits = model(torch.tensor([input_ids])).logits[0]
        prompt_ids = tok.encode("Question: Tom has").ids
        with torch.no_grad():
            generated = model.generate(
                torch.tensor([prompt_ids]),
                max_new_tokens=12,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
            )[0].tolist()
        expected = {
            "input_ids": input_ids,
            "logits_shape": list(logits.shape),
            "logits": [round(float(v), 7) for v in logits.flatten()],
            "generate_prompt_ids": prompt_ids,
            "generate_new_ids": generated[len(prompt_ids):],
            "generate_note": "greedy, 12 new tokens, EOS not stopping generation",
            "score": target_nll(model, tok, PROMPT_TEXT, TARGET_TEXT),
            "weights_dtype": str(dtype).removeprefix("torch."),
        }
        out = FIXTURES / f"tiny_{kind}"
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("*.safetensors*"):
            old.unlink()
        # Save a converted copy: `Module.to` converts in place, and would
        # also round the model's RoPE frequency buffer.
        kwargs = {"max_shard_size": shard} if shard else {}
        copy.deepcopy(model).to(dtype).save_pretrained(out, safe_serialization=True, **kwargs)
        tok.save(str(out / "tokenizer.json"))
        (out / "generation_config.json").unlink(missing_ok=True)
        (out / "expected.json").write_text(json.dumps(expected) + "\n")

        reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
        with torch.no_grad():
            again = reloaded(torch.tensor([input_ids])).logits[0]
        assert (again - logits).abs().max() < 1e-5, f"{kind}: the saved folder does not reproduce the logits"
        print(kind, "vocab", vocab_size, "logit max", float(logits.abs().max()))


SMOLLM2_STRINGS = [
    "Hello, world!",
    "12345 + 678 = 13023",
    "line one\nline two\n\n  indented",
    "\nAnswer:",
    "\nDone.",
    " $1,000.50 costs 3.14159",
    "héllo wörld — ünïcode ✓ 東京 🙂",
    "<|im_start|>user\nHi<|im_end|>",
    "Natalia sold 48/2 = 24 clips in May.\n#### 72",
]

SMOLLM2_PROMPT = "Question: Natalia sold clips to 48 of her friends in April.\nAnswer: 48 / 2 = 24\nDone."


def make_smollm2():
    from tokenizers import pre_tokenizers as pt
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, name = str(GGUF_PATH.resolve().parent), GGUF_PATH.name
    tok = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    # transformers 5.25 has no split rule for the file's `tokenizer.ggml.pre = smollm`
    # and falls back to GPT-2's, which keeps a digit run in one pre-token.
    # SmolLM2's own tokenizer.json splits every digit first, so install that
    # pre-tokenizer on the GGUF vocabulary and merges. On SMOLLM2_STRINGS both
    # give the same ids, because the vocabulary has no multi-digit tokens.
    tok.backend_tokenizer.pre_tokenizer = pt.Sequence(
        [pt.Digits(individual_digits=True), pt.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)]
    )
    strings = [{"text": s, "ids": tok(s, add_special_tokens=False)["input_ids"]} for s in SMOLLM2_STRINGS]

    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32).eval()
    ids = tok(SMOLLM2_PROMPT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    columns = list(range(0, 49152, 997))
    expected = {
        "source": "transformers GGUF loader, weights dequantized to f32",
        "prompt": SMOLLM2_PROMPT,
        "input_ids": ids,
        "columns": columns,
        "logits_at_columns": [[round(float(row[c]), 6) for c in columns] for row in logits],
        "top5": [row.topk(5).indices.tolist() for row in logits],
        "strings": strings,
    }
    (FIXTURES / "smollm2_expected.json").write_text(json.dumps(expected) + "\n")
    print("smollm2 tokens", len(ids), "logit max", float(logits.abs().max()))


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "tiny"
    {"tiny": make_tiny, "smollm2": make_smollm2}[command]()
