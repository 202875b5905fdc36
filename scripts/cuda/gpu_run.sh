#!/usr/bin/env bash
# Everything a GPU machine is needed for, in one run within one time budget, most important first: each part starts
# only while enough of the budget is left for it, and is cut off at the budget's end.
#
# Prepare first (bash scripts/cuda/prepare.sh; for parts 5 and 6 the task data, for part 6 also the seed's mamba_ssm/
# folder), then on the GPU machine, from the repository root:
#   bash scripts/cuda/gpu_run.sh
# Environment: OUT (what comes back: summary.md, run.log, logs.tgz), BUDGET_S (seconds for the whole run, default 560),
# DATA (the task data folder, layout of fixtures/tasks; unset skips parts 5 and 6), SEED_DIR (a folder holding
# mamba_ssm/; unset runs part 6 without the seed), PARTS (which parts to run, default "1 2 3 4 5 6"), BENCH_SHAPES (part 3's
# shapes, default "transformerpp-2.7b mamba2attn-2.7b mamba-2.8b mamba2-2.7b"), TABLE3_MAMBA2_MODELS (part 5's models,
# default "transformerpp-2.7b mamba2-2.7b mamba2attn-2.7b"), AB_BASE (another revision to measure against, as check.sh
# takes it: a git revision, or a folder holding its native/ folder: part 1 also builds it and compares the fixtures'
# outputs of both builds bit for bit, and parts 3 and 5 run a second time on its addon right after this build's).
#
# Parts:
#   1. check.sh without bench or sanitizer: the CUDA build, then check.ts (every fixture, the hybrids included, against
#      its float64 reference; CUDA against the CPU backend; packing, splits, decode)
#   2. scripts/fixtures/check_hybrid_torch.py: the hybrid fixtures' numpy float64 reference against torch
#   3. check.sh CHECK=0: the decode GEMM alone (bench_gemv) and the bench at the real shapes of the attention
#      checkpoints, mamba-2.8b and mamba2-2.7b (prefill against the bf16 matmul rate, decode at 1 and 64 sequences)
#   4. compute-sanitizer memcheck on the hybrid fixtures, and racecheck on hybrid-mamba2attn-hd64 (the only fixture at
#      the real Mamba-2 head sizes, where the 64-row chunked scan runs)
#   5. table3_e2e.sh: the Mamba-2 paper's Table 3 (transformerpp-2.7b, mamba2-2.7b, mamba2attn-2.7b; seven tasks)
#   6. table3_e2e.sh: the five Mamba-1 sizes on the six tasks, in one table3 process, with the seed beside them
# Exit status: 0 when every part that ran passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/mamba-eval-gpu-run}
BUDGET_S=${BUDGET_S:-560}
DATA=${DATA:-}
SEED_DIR=${SEED_DIR:-}
PARTS=${PARTS:-"1 2 3 4 5 6"}
BENCH_SHAPES=${BENCH_SHAPES:-"transformerpp-2.7b mamba2attn-2.7b mamba-2.8b mamba2-2.7b"}
TABLE3_MAMBA2_MODELS=${TABLE3_MAMBA2_MODELS:-"transformerpp-2.7b mamba2-2.7b mamba2attn-2.7b"}
WORK=/tmp/mamba-eval-gpu-run-work
mkdir -p "$OUT" && rm -rf "$WORK" && mkdir -p "$WORK"
T0=$(date +%s)
status=0
summary=("| part | result | seconds | detail |" "|---|---|---|---|")
left() { echo $(( BUDGET_S - ($(date +%s) - T0) )); }
wants() { [[ " $PARTS " == *" $1 "* ]]; }

# part NUMBER NAME MIN_SECONDS CAP_SECONDS COMMAND...: runs COMMAND under a timeout of min(CAP, what is left) when at
# least MIN_SECONDS are left; its output goes to run.log; the summary gets one line.
part() {
    local n=$1 name=$2 min=$3 cap=$4
    shift 4
    wants "$n" || return 0
    local budget
    budget=$(left)
    if [ "$budget" -lt "$min" ]; then
        summary+=("| $n. $name | skipped | 0 | ${budget} s left, needs ${min} |")
        return 0
    fi
    [ "$budget" -gt "$cap" ] && budget=$cap
    local t=$(date +%s)
    echo "=== part $n: $name (timeout ${budget} s) ===" >> "$OUT/run.log"
    timeout "$budget" "$@" >> "$OUT/run.log" 2>&1
    local rc=$?
    local result=pass
    [ $rc = 0 ] || { result="FAIL (exit $rc$([ $rc = 124 ] && echo ', timed out'))"; status=1; }
    summary+=("| $n. $name | $result | $(( $(date +%s) - t )) | $(tail -1 "$OUT/run.log" | cut -c1-150 | tr '|' '/') |")
}

AB_BASE=${AB_BASE:-}
BASE_ADDON=/tmp/ab-base/build/Release/mamba_eval.node  # where check.sh builds AB_BASE
part 1 "build and check.ts$([ -n "$AB_BASE" ] && echo ", outputs vs $AB_BASE")" 60 300 env OUT="$WORK/check" SANITIZE=0 \
    BENCH_GEMV=0 BENCH_MODELS="" AB_BASE="$AB_BASE" bash scripts/cuda/check.sh
export PATH=/tmp/node-bin:$PATH  # check.sh unpacked Node there
part 2 "hybrid reference vs torch" 20 60 python3 scripts/fixtures/check_hybrid_torch.py fixtures/hybrid/*
part 3 "bench at the real shapes" 90 240 env OUT="$WORK/bench" CHECK=0 SANITIZE=0 BENCH_GEMV=1 \
    BENCH_MODELS="$BENCH_SHAPES" bash scripts/cuda/check.sh
[ -n "$AB_BASE" ] && part 3 "bench at the real shapes, $AB_BASE" 90 240 env OUT="$WORK/bench-base" CHECK=0 SANITIZE=0 \
    BENCH_GEMV=0 BENCH_MODELS="$BENCH_SHAPES" MAMBA_EVAL_ADDON="$BASE_ADDON" bash scripts/cuda/check.sh
part 4 "compute-sanitizer, hybrids" 60 240 env OUT="$WORK/sanitize" CHECK=0 SANITIZE=1 BENCH_GEMV=0 BENCH_MODELS="" \
    SANITIZE_FIXTURES="hybrid-mamba2attn transformerpp-tiny hybrid-mamba2attn-hd64" bash scripts/cuda/check.sh
part 4 "compute-sanitizer racecheck, 64-row chunked scan" 60 200 env OUT="$WORK/racecheck" CHECK=0 SANITIZE=1 \
    SANITIZE_TOOLS=racecheck BENCH_GEMV=0 BENCH_MODELS="" SANITIZE_FIXTURES="hybrid-mamba2attn-hd64" bash scripts/cuda/check.sh
if [ -n "$DATA" ]; then
    e2e_budget() { echo $(( $(left) - 10 )); }
    part 5 "Mamba-2 Table 3 end to end" 150 360 env OUT="$WORK/e2e-mamba2" E2E_WORK="$WORK/e2e-work" DATA="$DATA" \
        E2E_MODE=table3 E2E_TABLE3_ARGS="--family mamba2" E2E_MODELS="$TABLE3_MAMBA2_MODELS" \
        E2E_BUDGET_S="$(e2e_budget)" bash scripts/cuda/table3_e2e.sh
    [ -n "$AB_BASE" ] && part 5 "Mamba-2 Table 3 end to end, $AB_BASE" 150 360 env OUT="$WORK/e2e-mamba2-base" \
        E2E_WORK="$WORK/e2e-work" DATA="$DATA" E2E_MODE=table3 E2E_TABLE3_ARGS="--family mamba2" \
        E2E_MODELS="$TABLE3_MAMBA2_MODELS" E2E_BUDGET_S="$(e2e_budget)" MAMBA_EVAL_ADDON="$BASE_ADDON" \
        bash scripts/cuda/table3_e2e.sh
    part 6 "Mamba-1 Table 3 end to end, seed beside" 200 560 env OUT="$WORK/e2e-mamba1" E2E_WORK="$WORK/e2e-work" \
        DATA="$DATA" SEED_DIR="$SEED_DIR" E2E_MODE=table3 E2E_MODELS="mamba-130m mamba-370m mamba-790m mamba-1.4b mamba-2.8b" \
        E2E_BUDGET_S="$(e2e_budget)" bash scripts/cuda/table3_e2e.sh
else
    summary+=("| 5, 6. Table 3 end to end | skipped | 0 | DATA not set |")
fi

printf '%s\n' "${summary[@]}" | tee "$OUT/summary.md"
echo "gpu_run.sh: $(( $(date +%s) - T0 )) s, status=$status" | tee -a "$OUT/summary.md"
rm -rf "$WORK/e2e-work"
tar -czf "$OUT/logs.tgz" -C "$WORK" . 2>/dev/null
exit $status
