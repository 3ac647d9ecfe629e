#!/usr/bin/env bash
# Runs `premem bench` and bench/transformers_baseline.py on the same GGUF
# model and GSM8k data, one after the other, and prints tokens/s of both and
# the ratio premem / transformers per workload.
#
# Usage: bench/run.sh MODEL.gguf GSM8K_TRAIN.jsonl
# Environment: THREADS (default: all CPUs) sets the CPU threads of both
# sides, which also share OMP_WAIT_POLICY (default PASSIVE);
# PYTHON (default python3) must have torch, transformers and gguf.
# Build first: cargo build --release.
set -euo pipefail

model=${1:?usage: bench/run.sh MODEL.gguf GSM8K_TRAIN.jsonl}
data=${2:?usage: bench/run.sh MODEL.gguf GSM8K_TRAIN.jsonl}
threads=${THREADS:-$(nproc)}
python=${PYTHON:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
premem=${PREMEM:-$root/target/release/premem}

# nproc honours OMP_NUM_THREADS, so count the CPUs before setting it.
echo "machine: $(uname -m), $(nproc) CPUs, $threads threads per side, $(date -u +%Y-%m-%dT%H:%MZ)" >&2
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

premem_json=$("$premem" --quiet bench --model "$model" --data "$data")
baseline_json=$("$python" "$root/bench/transformers_baseline.py" --model "$model" --data "$data" --threads "$threads")

"$python" - "$premem_json" "$baseline_json" <<'PY'
import json
import sys

premem, baseline = (json.loads(text) for text in sys.argv[1:3])
print(f"{'workload':<10} {'premem tok/s':>14} {'transformers tok/s':>20} {'ratio':>7}")
for workload in ("train", "score", "sample"):
    key = f"{workload}_tokens_per_s"
    print(f"{workload:<10} {premem[key]:>14.1f} {baseline[key]:>20.1f} {premem[key] / baseline[key]:>7.2f}")
PY
