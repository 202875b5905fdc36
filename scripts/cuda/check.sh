#!/usr/bin/env bash
# The one GPU-machine script for the CUDA backend: build the addon with CUDA, check it against the committed
# fixtures and the CPU backend, run compute-sanitizer on one small fixture, bench the real shapes, print tables.
#
# Prepare here first (bash scripts/cuda/prepare.sh), then on the device, from the repository root:
#   bash scripts/cuda/check.sh            (env: OUT = log folder; BENCH_MODELS = names, "" to skip the bench;
#                                          SANITIZE=0 to skip compute-sanitizer, SANITIZE_FIXTURE = its fixture; SEED_DIR = a folder holding
#                                          mamba_ssm/ to time the seed's path too, scripts/cuda/seed_bench.py)
# carrying .node-bin, node_modules/node-addon-api and node_modules/node-api-headers.
# Exit status: 0 when the build and every check passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/mamba-eval-cuda-check}
BENCH_MODELS=${BENCH_MODELS-"mamba-130m mamba-370m mamba-790m mamba-1.4b mamba-2.8b mamba2-2.7b"}
SANITIZE=${SANITIZE:-1}
SEED_DIR=${SEED_DIR:-}
SANITIZE_FIXTURE=${SANITIZE_FIXTURE:-mamba2-ssm}
mkdir -p "$OUT"
status=0
export PYTHONUNBUFFERED=1

# Node (the GPU machine has none): the binary prepare.sh packed.
mkdir -p /tmp/node-bin
xz -dc .node-bin/node.xz > /tmp/node-bin/node && chmod +x /tmp/node-bin/node
export PATH=/tmp/node-bin:$PATH
echo "node $(node --version); $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader)" | tee "$OUT/env.txt"
nvcc --version | tail -1 | tee -a "$OUT/env.txt"

# Build (scripts/cuda/build_addon.sh: cmake with the CUDA backend, cuBLASLt found on the machine).
t0=$(date +%s)
bash scripts/cuda/build_addon.sh "$OUT/build.log" | tee -a "$OUT/env.txt" || { echo "check.sh: BUILD FAILED"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"

# Checks against fixtures and the CPU backend.
node .node-bin/check.mjs fixtures "$OUT/check.json" > "$OUT/check.log" 2>&1 || status=1
if [ "$SANITIZE" = 1 ]; then
    timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 \
        node .node-bin/check.mjs fixtures "$OUT/sanitize.json" "$SANITIZE_FIXTURE" > "$OUT/sanitize.log" 2>&1
    echo "compute-sanitizer memcheck ($SANITIZE_FIXTURE fixture): exit $? ($(grep -c 'Invalid\|ERROR' "$OUT/sanitize.log") error lines)"
fi

# The seed's own path (mamba_ssm + Triton), same machine, same run.
if [ -n "$SEED_DIR" ]; then
    PYTHONPATH="$SEED_DIR" timeout 150 python3 scripts/cuda/seed_bench.py "$OUT/seed.json" > "$OUT/seed.log" 2>&1 \
        || { status=1; tail -20 "$OUT/seed.log"; }
    grep -E '^seed' "$OUT/seed.log"
fi

# Bench: ceilings, then one random real-shape checkpoint at a time.
if [ -n "$BENCH_MODELS" ]; then
    python3 scripts/cuda/ceilings.py "$OUT/ceilings.json" > "$OUT/bench.log" 2>&1 || status=1
    rm -f "$OUT/bench.jsonl"
    for name in $BENCH_MODELS; do
        { python3 scripts/cuda/make_bench_checkpoint.py "$name" "/tmp/bench/$name" \
            && node .node-bin/bench.mjs run "/tmp/bench/$name" "$name" "$OUT/bench.jsonl"; } >> "$OUT/bench.log" 2>&1 || status=1
        rm -rf "/tmp/bench/$name"
    done
    grep -E '^bench |cuda profile|"gpu"' "$OUT/bench.log"
fi

echo "=== check ==="
tail -n 60 "$OUT/check.log"
if [ -n "$BENCH_MODELS" ] && [ -f "$OUT/bench.jsonl" ]; then
    echo "=== bench ==="
    node .node-bin/bench.mjs table "$OUT/bench.jsonl" "$OUT/ceilings.json" | tee "$OUT/bench-table.md"
fi
echo "check.sh status=$status"
exit $status
