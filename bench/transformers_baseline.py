"""The workloads of `premem bench`, done with PyTorch and transformers.

Prints one JSON line with tokens per second for a training step, scoring
and sampling, with the same keys as `premem bench`. The model is the same
GGUF file, dequantized to f32 by transformers' GGUF support (which needs the
`gguf` package). Nothing is downloaded.

    python bench/transformers_baseline.py --model models/X.gguf --data gsm8k/train.jsonl
"""

import argparse
import json
import os
import sys
import time

import torch
import transformers

PROMPT = "{question}\nAnswer:"
TARGET = " {solution}\nDone."


def load_pairs(path, count):
    pairs = []
    with open(path) as f:
        for line in f:
            if len(pairs) == count:
                break
            row = json.loads(line)
            pairs.append((PROMPT.format(question=row["question"]), TARGET.format(solution=row["answer"])))
    return pairs


def tokenize_pair(tokenizer, prompt, target):
    """Token ids of prompt + target and the index of the first target token:
    the first token whose start offset is at or after the prompt's length."""
    text = prompt + target
    encoding = tokenizer(text, return_offsets_mapping=True)
    prompt_bytes = len(prompt.encode())
    starts = [len(text[:start].encode()) for start, _ in encoding["offset_mapping"]]
    target_start = next(i for i, start in enumerate(starts) if start >= prompt_bytes)
    return encoding["input_ids"], target_start


def right_padded(tokenized):
    width = max(len(ids) for ids, _ in tokenized)
    input_ids = torch.zeros(len(tokenized), width, dtype=torch.long)
    mask = torch.zeros(len(tokenized), width, dtype=torch.long)
    labels = torch.full((len(tokenized), width), -100, dtype=torch.long)
    for row, (ids, start) in enumerate(tokenized):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
        labels[row, start : len(ids)] = torch.tensor(ids[start:])
    return input_ids, mask, labels


def bench_train(model, tokenized):
    """Two AdamW steps on one batch of 8; times the second."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
    input_ids, mask, labels = right_padded(tokenized)
    tokens = sum(len(ids) for ids, _ in tokenized)

    def step():
        optimizer.zero_grad()
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step()
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    print(f"train: {tokens} tokens in {seconds:.2f} s", file=sys.stderr)
    model.eval()
    return tokens / seconds


def score(model, tokenized, batch_size=8):
    nlls = []
    with torch.no_grad():
        for first in range(0, len(tokenized), batch_size):
            batch = tokenized[first : first + batch_size]
            input_ids, mask, labels = right_padded(batch)
            logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
            targets = labels[:, 1:]
            losses = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), targets, ignore_index=-100, reduction="none"
            )
            counts = (targets != -100).sum(1)
            nlls.extend((losses.sum(1) / counts).tolist())
    return nlls


def bench_score(model, tokenized):
    """Scores 8 pairs untimed, then times all 64."""
    score(model, tokenized[:8])
    tokens = sum(len(ids) for ids, _ in tokenized)
    start = time.perf_counter()
    score(model, tokenized)
    seconds = time.perf_counter() - start
    print(f"score: {tokens} tokens in {seconds:.2f} s", file=sys.stderr)
    return tokens / seconds


def bench_sample(model, tokenizer, prompts):
    """4 samples of up to 64 new tokens for each of 8 prompts."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            **batch,
            do_sample=True,
            temperature=0.8,
            top_p=0.95,
            top_k=0,
            max_new_tokens=64,
            num_return_sequences=4,
            pad_token_id=tokenizer.pad_token_id,
        )
    seconds = time.perf_counter() - start

    generated = out[:, batch["input_ids"].shape[1] :]
    tokens = 0
    for row in generated.tolist():
        count = len(row)
        if tokenizer.eos_token_id in row:
            count = row.index(tokenizer.eos_token_id) + 1
        tokens += count
    print(f"sample: {tokens} generated tokens in {seconds:.2f} s", file=sys.stderr)
    return tokens / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="GGUF file")
    parser.add_argument("--data", required=True, help="GSM8k JSONL file")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    folder, name = os.path.split(os.path.abspath(args.model))
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()

    pairs = load_pairs(args.data, 64)
    tokenized = [tokenize_pair(tokenizer, prompt, target) for prompt, target in pairs]

    result = {
        "implementation": "transformers",
        "threads": torch.get_num_threads(),
        "train_tokens_per_s": bench_train(model, tokenized[:8]),
        "score_tokens_per_s": bench_score(model, tokenized),
        "sample_tokens_per_s": bench_sample(model, tokenizer, [prompt for prompt, _ in pairs[:8]]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
