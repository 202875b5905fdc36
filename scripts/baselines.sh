#!/usr/bin/env bash
# The CI accuracy baselines: the bundled tiny checkpoints evaluated on the bundled task samples.
#
#   scripts/baselines.sh check    re-evaluate and compare with results/baselines/ (compare --exact, samples
#                                 included): any moved number, log-likelihood bit or per-document metric fails
#   scripts/baselines.sh update   re-evaluate and replace results/baselines/ (after an intended change; commit it)
#
# Runs the built CLI (npm run build), offline, on 1 thread (results do not depend on it: determinism is tested).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-check}"
models=(neox-mamba1 neox-mamba2)
run() { # model output_dir
    node bin/mamba-eval.js --model "fixtures/$1" --tokenizer fixtures/tokenizers/gpt-neox-20b.tokenizer.json.gz \
        --data_dir fixtures/tasks --tasks lambada_openai,hellaswag,piqa,arc_easy,arc_challenge,winogrande \
        --threads 1 --output_path "$2" --log_samples >/dev/null
}
case "$mode" in
check)
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
    for m in "${models[@]}"; do
        run "$m" "$out"
        node bin/mamba-eval.js compare "results/baselines/fixtures__$m" "$out/fixtures__$m" --exact
    done
    ;;
update)
    for m in "${models[@]}"; do
        rm -rf "results/baselines/fixtures__$m"
        run "$m" results/baselines
    done
    ;;
*)
    echo "usage: scripts/baselines.sh check|update" >&2
    exit 2
    ;;
esac
