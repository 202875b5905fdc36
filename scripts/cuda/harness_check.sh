#!/usr/bin/env bash
# End-to-end harness check on a GPU machine: the unchanged CLI (bin/mamba-eval.js → dist/) runs the six Table-3
# tasks on the bundled fixture model and task samples with --device cpu and --device cuda, in float32 and
# bfloat16, and the CUDA runs must match the CPU runs request by request (relative log-likelihood difference
# ≤ 1e-4 in float32, ≤ 2e-2 in bfloat16; is_greedy flips are reported). `mamba-eval compare --k 0 --floor 0.02`
# is printed too (informational: the random fixture model's perplexities are ~1e17, so any rounding difference
# exceeds an absolute floor; the per-request gate is the real one).
#
# Prepare here first (bash scripts/cuda/prepare.sh: Node binary, bundled programs, trimmed runtime packages,
# dist/), then on the device, after the addon is built with CUDA (scripts/cuda/check.sh does that):
#   bash scripts/cuda/harness_check.sh     (env: OUT = log folder)
# with .node-bin, dist, node_modules/node-addon-api and node_modules/node-api-headers present.
# Exit status: 0 when every comparison passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/mamba-eval-cuda-check}
mkdir -p "$OUT/harness"
status=0

if ! command -v node >/dev/null; then
    mkdir -p /tmp/node-bin
    xz -dc .node-bin/node.xz > /tmp/node-bin/node && chmod +x /tmp/node-bin/node
    export PATH=/tmp/node-bin:$PATH
fi
for need in dist/cli/main.js native/build/Release/mamba_eval.node .node-bin/runtime/node_modules .node-bin/compareSamples.mjs; do
    if [ ! -e "$need" ]; then echo "harness_check.sh: $need is missing (run scripts/cuda/prepare.sh first)"; exit 1; fi
done
# The CLI's runtime packages (ESM resolves bare imports through ./node_modules only): link the trimmed ones in.
mkdir -p node_modules
for pkg in .node-bin/runtime/node_modules/*; do
    name=$(basename "$pkg")
    [ -e "node_modules/$name" ] || ln -s "$PWD/$pkg" "node_modules/$name"
done

TASKS=lambada_openai,hellaswag,piqa,arc_easy,arc_challenge,winogrande
run_cli() {  # device dtype
    local t0=$(date +%s%N)
    node bin/mamba-eval.js --device "$1" --dtype "$2" --model fixtures/neox-mamba1 \
        --tokenizer fixtures/tokenizers/gpt-neox-20b.tokenizer.json.gz --data_dir fixtures/tasks --tasks "$TASKS" \
        --output_path "$OUT/harness/res-$1-$2" --log_samples > "$OUT/harness/run-$1-$2.log" 2>&1
    local rc=$?
    echo "harness run --device $1 --dtype $2: exit $rc, $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    return $rc
}
for dtype in float32 bfloat16; do
    run_cli cpu "$dtype" || status=1
    run_cli cuda "$dtype" || { status=1; tail -5 "$OUT/harness/run-cuda-$dtype.log"; }
    tol=1e-4; [ "$dtype" = bfloat16 ] && tol=2e-2
    echo "--- per-request log-likelihoods, cuda vs cpu, $dtype"
    node .node-bin/compareSamples.mjs "$OUT/harness/res-cpu-$dtype" "$OUT/harness/res-cuda-$dtype" "$tol" || status=1
    node bin/mamba-eval.js compare "$OUT/harness/res-cpu-$dtype" "$OUT/harness/res-cuda-$dtype" --k 0 --floor 0.02 \
        > "$OUT/harness/compare-$dtype.log" 2>&1
    echo "mamba-eval compare --k 0 --floor 0.02 ($dtype, informational): exit $? (log: harness/compare-$dtype.log)"
done
grep -h "^|" "$OUT/harness/run-cuda-float32.log" | head -20
echo "harness_check.sh status=$status"
exit $status
