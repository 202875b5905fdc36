#!/usr/bin/env bash
# The CI accuracy baselines: the bundled tiny checkpoints evaluated on the bundled task samples.
#
#   scripts/baselines.sh check    re-evaluate and compare with results/baselines/ (compare --exact, samples
#                                 included): any moved number, log-likelihood bit or per-document metric fails
#   scripts/baselines.sh update   re-evaluate and replace results/baselines/ (after an intended change; commit it)
#
# Runs the built CLI (npm run build), offline. The baselines are made on 1 thread and checked on 2, so the check
# also proves the results do not depend on the thread count.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-check}"
models=(neox-mamba1 neox-mamba2)
run() { # model output_dir threads; the run's own output is shown only when it fails
    local log
    log="$(mktemp)"
    if ! node bin/mamba-eval.js --model "fixtures/$1" --tokenizer fixtures/tokenizers/gpt-neox-20b.tokenizer.json.gz \
        --data_dir fixtures/tasks --tasks lambada_openai,hellaswag,piqa,arc_easy,arc_challenge,winogrande \
        --threads "$3" --output_path "$2" --log_samples >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}
case "$mode" in
check)
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
    for m in "${models[@]}"; do
        run "$m" "$out" 2
        node bin/mamba-eval.js compare "results/baselines/fixtures__$m" "$out/fixtures__$m" --exact
    done
    ;;
update)
    for m in "${models[@]}"; do
        rm -rf "results/baselines/fixtures__$m"
        run "$m" results/baselines 1
    done
    ;;
*)
    echo "usage: scripts/baselines.sh check|update" >&2
    exit 2
    ;;
esac
