#!/usr/bin/env bash
# The one GPU-machine script for the CUDA backend: build the addon with CUDA, check it against the committed
# fixtures (pure Mamba and fixtures/hybrid) and the CPU backend, optionally compare its outputs bit for bit with another
# revision's build, run compute-sanitizer on small fixtures, bench the real shapes; a pass/fail summary prints last.
#
# Prepare here first (bash scripts/cuda/prepare.sh), then on the device, from the repository root:
#   bash scripts/cuda/check.sh            (env: OUT = log folder; BENCH_MODELS = names, "" to skip the bench;
#                                          SANITIZE=0 to skip compute-sanitizer, SANITIZE_FIXTURES = its fixtures,
#                                          SANITIZE_TOOLS = its tools (default memcheck; racecheck finds
#                                          shared-memory races);
#                                          BENCH_GEMV=0 to skip native/bench/bench_gemv.cu (the decode GEMM alone);
#                                          AB_BASE = a git revision (or a folder holding a native/ folder, for a
#                                          copy without git history) whose native/ is built too, and the pure-Mamba
#                                          fixtures' CUDA outputs of both builds compared bit for bit
#                                          (scripts/cuda/abOutputs.ts); SEED_DIR = a folder holding mamba_ssm/ to time
#                                          the seed's path too, scripts/cuda/seed_bench.py; CHECK=0 skips check.ts,
#                                          for a second pass that only benches)
# with .node-bin, node_modules/node-addon-api and node_modules/node-api-headers present.
# Details under $OUT: check.json (every check), check-table.md (worst per kind), check.log, build.log, sanitize-*.log,
# ab-*.log, bench.log, bench-table.md. Exit status: 0 when the build and every step run passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/mamba-eval-cuda-check}
BENCH_MODELS=${BENCH_MODELS-"mamba-130m mamba-370m mamba-790m mamba-1.4b mamba-2.8b mamba2-2.7b"}
SANITIZE=${SANITIZE:-1}
CHECK=${CHECK:-1}
SEED_DIR=${SEED_DIR:-}
SANITIZE_FIXTURES=${SANITIZE_FIXTURES:-"mamba2-ssm hybrid-mamba2attn"}
SANITIZE_TOOLS=${SANITIZE_TOOLS:-memcheck}
AB_BASE=${AB_BASE:-}
BENCH_GEMV=${BENCH_GEMV:-1}
mkdir -p "$OUT"
status=0
summary=()
step() { summary+=("| $1 | $2 | $3 |"); [ "$2" = pass ] || status=1; }
export PYTHONUNBUFFERED=1

# Node: the binary prepare.sh packed (for a GPU machine without Node).
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
if [ "$CHECK" = 1 ]; then
    node .node-bin/check.mjs fixtures "$OUT/check.json" > "$OUT/check.log" 2>&1
    rc=$?
    step "check.ts: fixtures, hybrids, CPU vs CUDA, packing, splits, decode" "$([ $rc = 0 ] && echo pass || echo FAIL)" \
        "$(tail -1 "$OUT/check.log")"
fi

# The pure-Mamba fixtures' outputs against another revision's build, bit for bit.
if [ -n "$AB_BASE" ]; then
    base=/tmp/ab-base
    rm -rf "$base" && mkdir -p "$base"
    if [ -d "$AB_BASE/native" ]; then  # a folder holding the other revision's native/ (no git history on the device)
        cp -r "$AB_BASE/native" "$base/"
    else
        git archive "$AB_BASE" native | tar -x -C "$base"
    fi
    ln -sfn "$PWD/node_modules" "$base/node_modules"
    if [ -z "${MAMBA_EVAL_CUBLAS_ROOT:-}" ] && [ ! -f /usr/local/cuda/include/cublasLt.h ]; then
        header=$(find / -name cublasLt.h -not -path '/proc/*' 2>/dev/null | head -1)
        [ -n "$header" ] && export MAMBA_EVAL_CUBLAS_ROOT=$(dirname "$(dirname "$header")")
    fi
    if { MAMBA_EVAL_CUDA=ON cmake -S "$base/native" -B "$base/build" -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$base/build/Release" && cmake --build "$base/build" -j "$(nproc)"; } > "$OUT/ab-build.log" 2>&1 \
        && node .node-bin/abOutputs.mjs fixtures /tmp/ab-new.bin > "$OUT/ab-new.log" 2>&1 \
        && MAMBA_EVAL_ADDON="$base/build/Release/mamba_eval.node" node .node-bin/abOutputs.mjs fixtures /tmp/ab-base.bin > "$OUT/ab-base.log" 2>&1; then
        if cmp -s /tmp/ab-new.bin /tmp/ab-base.bin; then
            step "outputs vs $AB_BASE (pure-Mamba fixtures)" pass "$(stat -c %s /tmp/ab-new.bin) bytes bit-identical"
        else
            step "outputs vs $AB_BASE (pure-Mamba fixtures)" FAIL "$(cmp /tmp/ab-new.bin /tmp/ab-base.bin 2>&1 | head -1)"
        fi
    else
        step "outputs vs $AB_BASE (pure-Mamba fixtures)" FAIL "build or run failed: $OUT/ab-*.log"
    fi
fi

if [ "$SANITIZE" = 1 ]; then
    for tool in $SANITIZE_TOOLS; do
        for fixture in $SANITIZE_FIXTURES; do
            log=$OUT/sanitize-$tool-$fixture.log
            timeout 300 compute-sanitizer --tool "$tool" --error-exitcode 9 \
                node .node-bin/check.mjs fixtures "$OUT/sanitize-$tool-$fixture.json" "$fixture" > "$log" 2>&1
            rc=$?
            step "compute-sanitizer $tool, $fixture" "$([ $rc = 0 ] && echo pass || echo FAIL)" \
                "exit $rc, $(grep -c 'Invalid\|ERROR\|Race reported' "$log") error lines"
        done
    done
fi

# The decode GEMM alone at the 2.8b shapes against the old GEMV (bandwidth, row invariance).
if [ "$BENCH_GEMV" = 1 ]; then
    if cmake --build native/build --target bench_gemv -j "$(nproc)" > "$OUT/bench_gemv-build.log" 2>&1 \
        && native/build/bench_gemv > "$OUT/bench_gemv.log" 2>&1; then
        cat "$OUT/bench_gemv.log"
        step "bench_gemv (decode GEMM alone)" "$(grep -q ' NO |' "$OUT/bench_gemv.log" && echo FAIL || echo pass)" \
            "row invariance: $(grep -c ' yes |' "$OUT/bench_gemv.log") yes, $(grep -c ' NO |' "$OUT/bench_gemv.log") NO; $OUT/bench_gemv.log"
    else
        step "bench_gemv (decode GEMM alone)" FAIL "$OUT/bench_gemv*.log"
    fi
fi

# The seed's own path (mamba_ssm + Triton), same machine, same run.
if [ -n "$SEED_DIR" ]; then
    PYTHONPATH="$SEED_DIR" timeout 150 python3 scripts/cuda/seed_bench.py "$OUT/seed.json" > "$OUT/seed.log" 2>&1
    rc=$?
    step "seed_bench.py" "$([ $rc = 0 ] && echo pass || echo FAIL)" "$(grep -E '^seed' "$OUT/seed.log" | tr '\n' ' ')"
fi

# Bench: ceilings, then one random real-shape checkpoint at a time.
if [ -n "$BENCH_MODELS" ]; then
    python3 scripts/cuda/ceilings.py "$OUT/ceilings.json" > "$OUT/bench.log" 2>&1 || step "ceilings.py" FAIL "$OUT/bench.log"
    rm -f "$OUT/bench.jsonl"
    for name in $BENCH_MODELS; do
        { python3 scripts/cuda/make_bench_checkpoint.py "$name" "/tmp/bench/$name" \
            && node .node-bin/bench.mjs run "/tmp/bench/$name" "$name" "$OUT/bench.jsonl"; } >> "$OUT/bench.log" 2>&1
        rc=$?
        step "bench $name" "$([ $rc = 0 ] && echo pass || echo FAIL)" "$(grep -E "^bench $name:" "$OUT/bench.log" | cut -c1-160)"
        rm -rf "/tmp/bench/$name"
    done
    grep -E '^bench |cuda profile|"gpu"' "$OUT/bench.log"
fi

echo "=== check (failures, then per model; every check: $OUT/check-table.md) ==="
[ "$CHECK" = 1 ] && sed -n '/^| model | weights |/,$p' "$OUT/check.log" | tail -n 80
if [ -n "$BENCH_MODELS" ] && [ -f "$OUT/bench.jsonl" ]; then
    echo "=== bench ==="
    node .node-bin/bench.mjs table "$OUT/bench.jsonl" "$OUT/ceilings.json" | tee "$OUT/bench-table.md"
fi
echo "=== summary ==="
echo "| step | result | detail |"
echo "|---|---|---|"
printf '%s\n' "${summary[@]}"
echo "check.sh status=$status"
exit $status
