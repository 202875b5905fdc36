#!/usr/bin/env bash
# Converts the bench's random-weight checkpoints to GGUF for `npm run bench -- --llama-cpp DIR`, offline, with
# llama.cpp's own convert_hf_to_gguf.py and Debian's python3-torch (1.13):
#
#   bash bench/llamaCppConvert.sh /path/to/llama.cpp-source [mamba-130m mamba2-130m mamba-790m ...]
#
# Run `npm run bench` once before, so that the checkpoints exist in <tmpdir>/mamba-eval-bench. The converter
# imports three things this machine lacks or has too old; a throw-away folder of shims stands in for them:
# `transformers` (only AutoConfig is imported, and Mamba reads config.json itself), `tqdm` (a progress bar),
# and torch 1.13's missing float8/uint16+ dtype names (named in a table, never used for f32 Mamba).
# Writes <tmpdir>/mamba-eval-bench/<model>-f32.gguf next to the safetensors; the repository is not touched.
set -euo pipefail
src="${1:?usage: bash bench/llamaCppConvert.sh LLAMA_CPP_SOURCE_DIR [model ...]}"
shift
if [[ $# -gt 0 ]]; then models=("$@"); else models=(mamba-130m mamba2-130m mamba-790m); fi
[[ -f "$src/convert_hf_to_gguf.py" ]] || { echo "llamaCppConvert: no convert_hf_to_gguf.py in $src" >&2; exit 1; }
python=/usr/bin/python3
"$python" -c "import torch, numpy" 2>/dev/null || { echo "llamaCppConvert: $python cannot import torch and numpy (apt-get install python3-torch)" >&2; exit 1; }
cache="${TMPDIR:-/tmp}/mamba-eval-bench"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/shim/transformers" "$work/shim/tqdm"
cat >"$work/shim/transformers/__init__.py" <<'PY'
class AutoConfig:
    @staticmethod
    def from_pretrained(*args, **kwargs):
        raise RuntimeError("transformers is not installed (shim for llama.cpp's converter)")
PY
cat >"$work/shim/tqdm/__init__.py" <<'PY'
class tqdm:
    def __init__(self, *args, **kwargs): pass
    def update(self, *args, **kwargs): pass
    def set_description(self, *args, **kwargs): pass
    def write(self, *args, **kwargs): pass
    def close(self): pass
    def __enter__(self): return self
    def __exit__(self, *args): pass
PY
cat >"$work/shim/sitecustomize.py" <<'PY'
import torch
for _name in ("float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64"):
    if not hasattr(torch, _name):
        setattr(torch, _name, torch.uint8)
PY
for model in "${models[@]}"; do
    arch=MambaLMHeadModel ssm_cfg='{}'
    case "$model" in
    mamba-130m) d_model=768 n_layer=24 ;;
    mamba-370m) d_model=1024 n_layer=48 ;;
    mamba-790m) d_model=1536 n_layer=48 ;;
    mamba-1.4b) d_model=2048 n_layer=48 ;;
    mamba2-130m) d_model=768 n_layer=24 arch=Mamba2ForCausalLM ssm_cfg='{"layer": "Mamba2"}' ;;
    *) echo "llamaCppConvert: unknown model $model (expected mamba-130m, mamba-370m, mamba-790m, mamba-1.4b or mamba2-130m)" >&2; exit 1 ;;
    esac
    weights="$cache/$model-random-v1.safetensors"
    [[ -f "$weights" ]] || { echo "llamaCppConvert: no $weights (run npm run bench first)" >&2; exit 1; }
    hf="$work/$model"
    mkdir -p "$hf"
    ln -s "$weights" "$hf/model.safetensors"
    # mamba_ssm's config.json (Mamba-2: d_state 128, headdim 64, 1 group, the converter's defaults)
    printf '{"architectures": ["%s"], "d_model": %d, "n_layer": %d, "vocab_size": 50280, "ssm_cfg": %s, "rms_norm": true, "residual_in_fp32": true, "fused_add_norm": true, "pad_vocab_size_multiple": 8, "tie_embeddings": true}\n' \
        "$arch" "$d_model" "$n_layer" "$ssm_cfg" >"$hf/config.json"
    PYTHONPATH="$work/shim" "$python" "$src/convert_hf_to_gguf.py" "$hf" --outtype f32 --outfile "$cache/$model-f32.gguf" 2>&1 | tail -1
done
