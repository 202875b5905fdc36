#!/usr/bin/env bash
# End-to-end Table 3 timing (issue 6): the unchanged CLI (`node bin/mamba-eval.js --model DIR --tasks <six>
# --data_dir DATA --device cuda --dtype bfloat16`) on the real task data, one random checkpoint at each real shape
# (scripts/cuda/make_bench_checkpoint.py: timing does not depend on weight values), timed as wall-clock seconds, with
# the token-steps the run printed ("token steps: X (lm-eval would run Y)"); and, in the same run, the seed's path
# (scripts/cuda/seed_bench.py: mamba_ssm's Triton Mamba-2 path) projected onto the same workload. Prints a markdown
# table (also $OUT/e2e.md).
#
# Prepare first (bash scripts/cuda/prepare.sh; the task data in a folder named by DATA; for the seed, the mamba_ssm/
# folder of a state-spaces/mamba checkout in a folder named by SEED_DIR), then on a GPU machine, from the repository root:
#   bash scripts/cuda/table3_e2e.sh
# with .node-bin, dist, node_modules/node-addon-api and node_modules/node-api-headers present.
# The addon is built with CUDA first (cmake as check.sh does; a no-op when native/build is already up to date).
#
# Knobs (environment):
#   E2E_MODELS   names of make_bench_checkpoint.py's SHAPES, or existing checkpoint folders (used as they are);
#                default: mamba-130m mamba-370m mamba-790m mamba-1.4b mamba-2.8b mamba2-2.7b
#   E2E_LIMIT    passes --limit (a shorter run); E2E_TASKS the --tasks value (default the six Table-3 tasks);
#                E2E_BATCH_SIZE the --batch_size value (default auto: 32768 tokens per native call on a GPU)
#   E2E_DEVICE   cuda (default) or cpu: cpu skips the build and the seed (the local dry run);
#                E2E_DTYPE bfloat16 (default) or float32
#   E2E_LOAD     1 (default): also time `mamba-eval score` on 8 token ids per model = node start + checkpoint open +
#                weight upload + one call (the "load s" column); 0 skips it
#   E2E_BUDGET_S stop starting models once this many seconds have passed since the script began (default 560;
#                the device allows 600 s per command); each run is also killed at the budget
#   DATA         the task data folder, laid out like fixtures/tasks (required). When it has HellaSwag only as the
#                derived text (hellaswag_val_full.txt.bz2), a timing-only hellaswag_val.jsonl is made from it in
#                E2E_WORK (contexts split at the first ": " into activity_label and ctx_a, ctx_b empty, so lm-eval's
#                query is the derived context line: token counts ≈ the real ones; accuracies mean nothing anyway)
#   E2E_MODE     runs (default): one `mamba-eval run` process per model (lm-eval's way); table3: one `mamba-eval table3
#                --models …` process for all of them (the table's rows are its per-model parts; load s not measured);
#                E2E_TABLE3_ARGS adds arguments to it, e.g. "--family mamba2" (seven tasks, average of seven)
#   E2E_REPLAY   names of SHAPES whose real Table-3 calls are replayed first (scripts/cuda/replay.ts: timings, profiles;
#                REPLAY_LOGPROBS / REPLAY_COMPARE for an A/B of two builds; $OUT/replay.log); default none
#   SEED_DIR     folder holding mamba_ssm/ (unset or "" skips the seed);
#                SEED_SIZES the Mamba-2 sizes it times (default all five; see seed_bench.py); SEED_TIMEOUT (200 s)
#   OUT          what comes back (default /tmp/mamba-eval-e2e): e2e.md, e2e.jsonl, runs.log, results.tar.gz,
#                seed.json, seed.log, env.txt (7 files); E2E_WORK scratch (checkpoints, raw logs; default /tmp/mamba-eval-e2e-work)
# Exit status: 0 when every model ran to the end (and the seed too, when asked for).
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${EPOCHREALTIME:-}" ]; then echo "table3_e2e.sh: needs bash 5 or later (EPOCHREALTIME)"; exit 1; fi
export LC_NUMERIC=C PYTHONIOENCODING=utf-8  # EPOCHREALTIME with a "." decimal point; the table's "×" and "–"
T0=$EPOCHREALTIME
E2E_MODELS=${E2E_MODELS-"mamba-130m mamba-370m mamba-790m mamba-1.4b mamba-2.8b mamba2-2.7b"}
E2E_TASKS=${E2E_TASKS:-lambada_openai,hellaswag,piqa,arc_easy,arc_challenge,winogrande}
E2E_LIMIT=${E2E_LIMIT:-}
E2E_BATCH_SIZE=${E2E_BATCH_SIZE:-auto}
E2E_DEVICE=${E2E_DEVICE:-cuda}
E2E_DTYPE=${E2E_DTYPE:-bfloat16}
E2E_LOAD=${E2E_LOAD:-1}
E2E_BUDGET_S=${E2E_BUDGET_S:-560}
DATA=${DATA:?set DATA to the task data folder (layout of fixtures/tasks)}
OUT=${OUT:-/tmp/mamba-eval-e2e}
WORK=${E2E_WORK:-/tmp/mamba-eval-e2e-work}
SEED_DIR=${SEED_DIR:-}
SEED_SIZES=${SEED_SIZES:-"mamba2-130m mamba2-370m mamba2-780m mamba2-1.3b mamba2-2.7b"}
SEED_TIMEOUT=${SEED_TIMEOUT:-200}
E2E_REPLAY=${E2E_REPLAY:-}
E2E_MODE=${E2E_MODE:-runs}
E2E_TABLE3_ARGS=${E2E_TABLE3_ARGS:-}
[ "$E2E_DEVICE" = cuda ] || SEED_DIR=""
mkdir -p "$OUT" "$WORK"
rm -f "$OUT/seed.json" "$OUT/seed.log" "$OUT/results.tar.gz" "$OUT/runs.log" "$WORK/runs.log" "$OUT/replay.log"
rm -rf "$WORK/res" "$WORK/logs" && mkdir -p "$WORK/res" "$WORK/logs"
: > "$WORK/models.jsonl"
status=0
export PYTHONUNBUFFERED=1

elapsed() { echo $(( ${EPOCHREALTIME/./} / 1000000 - ${T0/./} / 1000000 )); }
left() { local s=$(( E2E_BUDGET_S - $(elapsed) )); echo $(( s > 1 ? s : 1 )); }  # for timeout (0 would mean none)
# Prefixes every line read with the wall clock (seconds since the epoch, microseconds).
stamp() { local line; while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done; }

# Node (for a GPU machine without it) and the CLI's runtime packages (ESM resolves bare imports through ./node_modules).
if ! command -v node >/dev/null; then
    mkdir -p /tmp/node-bin
    xz -dc .node-bin/node.xz > /tmp/node-bin/node && chmod +x /tmp/node-bin/node
    export PATH=/tmp/node-bin:$PATH
fi
if [ -d .node-bin/runtime/node_modules ]; then
    mkdir -p node_modules
    for pkg in .node-bin/runtime/node_modules/*; do
        name=$(basename "$pkg")
        [ -e "node_modules/$name" ] || ln -s "$PWD/$pkg" "node_modules/$name"
    done
fi
for need in dist/cli/main.js "$DATA"; do
    if [ ! -e "$need" ]; then echo "table3_e2e.sh: $need is missing (run scripts/cuda/prepare.sh and set DATA)"; exit 1; fi
done
{
    echo "node $(node --version); device $E2E_DEVICE, dtype $E2E_DTYPE, limit ${E2E_LIMIT:-none}, batch_size $E2E_BATCH_SIZE, tasks $E2E_TASKS"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    echo "cpus $(nproc)"
} | tee "$OUT/env.txt"

# The addon with CUDA, as check.sh builds it (cuBLASLt from the toolkit or the nvidia-cublas wheel).
if [ "$E2E_DEVICE" = cuda ]; then
    t=$(elapsed)
    bash scripts/cuda/build_addon.sh "$WORK/build.log" || { echo "table3_e2e.sh: BUILD FAILED"; exit 1; }
    echo "build: $(( $(elapsed) - t )) s" | tee -a "$OUT/env.txt"
elif [ ! -f native/build/Release/mamba_eval.node ]; then
    echo "table3_e2e.sh: native/build/Release/mamba_eval.node is missing (npm run build:native here)"; exit 1
fi

# HellaSwag: the original jsonl if DATA has it, else a timing-only one made from the derived text.
data=$DATA
if [ ! -f "$DATA/hellaswag/hellaswag_val.jsonl" ] && [ -f "$DATA/hellaswag/hellaswag_val_full.txt.bz2" ] && [[ ",$E2E_TASKS," == *,hellaswag,* ]]; then
    data=$WORK/data
    rm -rf "$data" && mkdir -p "$data/hellaswag"
    for entry in "$DATA"/*; do
        [ "$(basename "$entry")" = hellaswag ] || ln -s "$(realpath "$entry")" "$data/$(basename "$entry")"
    done
    python3 - "$DATA/hellaswag/hellaswag_val_full.txt.bz2" "$data/hellaswag/hellaswag_val.jsonl" <<'PY' || exit 1
import bz2, json, sys
lines = bz2.open(sys.argv[1], "rt", encoding="utf-8").read().split("\n")
if lines and lines[-1] == "":
    lines.pop()
if len(lines) % 6:
    sys.exit(f"{sys.argv[1]}: expected 6 lines per item, got {len(lines)} lines")
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for i in range(0, len(lines), 6):
        label, sep, ctx = lines[i].partition(": ")
        if not sep:
            label, ctx = "", lines[i]
        f.write(json.dumps({"ind": i // 6, "activity_label": label, "ctx_a": ctx, "ctx_b": "", "ctx": ctx,
                            "endings": lines[i + 2:i + 6], "source_id": "", "split": "val",
                            "split_type": "timing-only", "label": int(lines[i + 1])}) + "\n")
print(f"hellaswag: timing-only {sys.argv[2]} from the derived text ({len(lines) // 6} items)")
PY
fi

# Replays of real Table-3 calls (scripts/cuda/replay.ts), per model.
if [ -n "$E2E_REPLAY" ] && [ "$E2E_DEVICE" = cuda ]; then
    rm -f "$WORK/replay.jsonl"
    for model in $E2E_REPLAY; do
        t=$(elapsed)
        dir=$WORK/ckpt/replay-$model
        { timeout "$(left)" python3 scripts/cuda/make_bench_checkpoint.py "$model" "$dir" \
            && timeout "$(left)" node .node-bin/replay.mjs "$dir" "$model" "$data" fixtures/tokenizers/gpt-neox-20b.tokenizer.json.gz \
                "$WORK/replay.jsonl"; } > "$WORK/logs/replay-$model.log" 2>&1 || { status=1; tail -5 "$WORK/logs/replay-$model.log"; }
        grep -E '^replay |cuda profile' "$WORK/logs/replay-$model.log" | head -40
        cat "$WORK/logs/replay-$model.log" >> "$OUT/replay.log"
        rm -rf "$dir"
        echo "replay $model: $(( $(elapsed) - t )) s"
    done
    [ -f "$WORK/replay.jsonl" ] && cat "$WORK/replay.jsonl" >> "$OUT/replay.log"
fi

# The seed's own path (mamba_ssm + Triton), same machine, same run; first, so a long run cannot crowd it out.
if [ -n "$SEED_DIR" ]; then
    t=$(elapsed)
    SEED_SIZES="$SEED_SIZES" PYTHONPATH="$SEED_DIR" timeout "$SEED_TIMEOUT" python3 scripts/cuda/seed_bench.py "$OUT/seed.json" \
        > "$OUT/seed.log" 2>&1 || { status=1; tail -5 "$OUT/seed.log"; }
    grep -E '^seed' "$OUT/seed.log"
    echo "seed: $(( $(elapsed) - t )) s"
fi

limit_args=()
[ -n "$E2E_LIMIT" ] && limit_args=(--limit "$E2E_LIMIT")
if [ "$E2E_MODE" = table3 ]; then
    # One `mamba-eval table3` process over every model (documents read and requests tokenised once for all of them):
    # checkpoints are made first (not timed), then the command is timed as a whole and per model (its stderr lines
    # "table3: [i/n] MODEL" and "table3: MODEL → FILE" bound each model's part; each part goes to logs/<tag>.err so the
    # table below reads it as it reads a lone run's log).
    dirs=()
    for model in $E2E_MODELS; do
        tag=$(basename "$model")
        if [ -d "$model" ]; then dirs+=("$model"); continue; fi
        timeout "$(left)" python3 scripts/cuda/make_bench_checkpoint.py "$model" "$WORK/ckpt/$tag" > "$WORK/logs/$tag.ckpt.log" 2>&1 \
            || { echo "$model: checkpoint failed: $(tail -1 "$WORK/logs/$tag.ckpt.log")"; status=1; }
        dirs+=("$WORK/ckpt/$tag")
    done
    start=$EPOCHREALTIME
    # shellcheck disable=SC2086  # E2E_TABLE3_ARGS is split into words on purpose
    timeout "$(left)" node bin/mamba-eval.js table3 --models "$(IFS=,; echo "${dirs[*]}")" $E2E_TABLE3_ARGS \
        --tokenizer fixtures/tokenizers/gpt-neox-20b.tokenizer.json.gz --data_dir "$data" --device "$E2E_DEVICE" \
        --dtype "$E2E_DTYPE" --batch_size "$E2E_BATCH_SIZE" --output_path "$WORK/res" 2>&1 > "$WORK/logs/table3.out" \
        | stamp > "$WORK/logs/table3.err"
    rc=${PIPESTATUS[0]}
    end=$EPOCHREALTIME
    [ "$rc" = 0 ] || { status=1; echo "table3: exited $rc: $(tail -2 "$WORK/logs/table3.err")"; }
    python3 - "$WORK/logs/table3.err" "$WORK/logs" "$WORK/models.jsonl" "$start" "$end" "$rc" $E2E_MODELS <<'PY'
import json, os, sys
err, logs, models_file, start, end, rc, *models = sys.argv[1:]
lines = [l.rstrip("\n").partition(" ") for l in open(err, encoding="utf-8", errors="replace")]
marks = [i for i, (_, _, msg) in enumerate(lines) if msg.startswith("table3: [")]
with open(models_file, "a") as out:
    for k, model in enumerate(models):
        if k >= len(marks):
            out.write(json.dumps({"name": model, "failed": "not reached"}) + "\n")
            continue
        a = marks[k]
        b = marks[k + 1] if k + 1 < len(marks) else len(lines)
        part = lines[a:b]
        # The model's own "→ results" line ends its part (found by name; its part ends at the next model's start at the latest).
        done = [float(t) for t, _, msg in lines if msg.startswith("table3: ") and " → " in msg
                and os.path.basename(msg[len("table3: "):].split(" → ")[0]) == os.path.basename(model)]
        t0 = float(start) if k == 0 else float(part[0][0])
        t1 = done[0] if done else float(end)
        if k + 1 < len(marks):
            t1 = min(t1, float(lines[marks[k + 1]][0]))
        with open(os.path.join(logs, os.path.basename(model) + ".err"), "w", encoding="utf-8") as f:
            f.writelines(f"{t} {msg}\n" for t, _, msg in part)
        out.write(json.dumps({"name": model, "dir": model, "made": 1, "checkpoint_s": None, "load_s": None,
                              "start": t0, "end": t1, "rc": int(rc) if done else 1}) + "\n")
print(f"table3 command: {float(end) - float(start):.1f} s wall for {len(models)} models (exit {rc})")
PY
    cp "$WORK/logs/table3.err" "$WORK/runs.log"
    grep '^|' "$WORK/logs/table3.out" >> "$WORK/runs.log"
    rm -rf "$WORK/ckpt"
    E2E_MODELS=""
fi
for model in $E2E_MODELS; do
    if [ "$(left)" -lt 15 ]; then
        echo "$model: skipped (less than 15 s of E2E_BUDGET_S $E2E_BUDGET_S s left after $(elapsed) s)"
        printf '{"name":"%s","skipped":true}\n' "$model" >> "$WORK/models.jsonl"
        status=1
        continue
    fi
    made=0
    tag=$(basename "$model")
    if [ -d "$model" ]; then
        dir=$model; ckpt_s=0
    else
        dir=$WORK/ckpt/$tag; made=1
        t=$EPOCHREALTIME
        if ! timeout "$(left)" python3 scripts/cuda/make_bench_checkpoint.py "$model" "$dir" > "$WORK/logs/$tag.ckpt.log" 2>&1; then
            echo "$model: checkpoint failed: $(tail -1 "$WORK/logs/$tag.ckpt.log")"
            printf '{"name":"%s","failed":"checkpoint"}\n' "$model" >> "$WORK/models.jsonl"
            rm -rf "$dir"; status=1; continue
        fi
        ckpt_s=$(python3 -c "print(round($EPOCHREALTIME - $t, 2))")
    fi
    load_s=null
    if [ "$E2E_LOAD" = 1 ]; then
        t=$EPOCHREALTIME
        if timeout "$(left)" node bin/mamba-eval.js score --model "$dir" --device "$E2E_DEVICE" --dtype "$E2E_DTYPE" \
                --ids 0,1,2,3,4,5,6,7 > "$WORK/logs/$tag.load.log" 2>&1; then
            load_s=$(python3 -c "print(round($EPOCHREALTIME - $t, 3))")
        else
            echo "$model: load run failed: $(tail -1 "$WORK/logs/$tag.load.log")"
        fi
    fi
    start=$EPOCHREALTIME
    timeout "$(left)" node bin/mamba-eval.js --model "$dir" --tokenizer fixtures/tokenizers/gpt-neox-20b.tokenizer.json.gz \
        --tasks "$E2E_TASKS" --data_dir "$data" --device "$E2E_DEVICE" --dtype "$E2E_DTYPE" "${limit_args[@]}" \
        --batch_size "$E2E_BATCH_SIZE" --output_path "$WORK/res/$tag" 2>&1 > "$WORK/logs/$tag.out" | stamp > "$WORK/logs/$tag.err"
    rc=${PIPESTATUS[0]}
    end=$EPOCHREALTIME
    [ "$rc" = 0 ] || { status=1; echo "$model: the run exited $rc: $(tail -2 "$WORK/logs/$tag.err")"; }
    printf '{"name":"%s","dir":"%s","made":%s,"checkpoint_s":%s,"load_s":%s,"start":%s,"end":%s,"rc":%s}\n' \
        "$model" "$dir" "$made" "$ckpt_s" "$load_s" "$start" "$end" "$rc" >> "$WORK/models.jsonl"
    { echo "=== $model (exit $rc)"; cat "$WORK/logs/$tag.err"; grep '^|' "$WORK/logs/$tag.out"; } >> "$WORK/runs.log"
    echo "$model: wall $(python3 -c "print(round($end - $start, 1))") s, exit $rc; $(grep -ho 'token steps:.*' "$WORK/logs/$tag.err")"
    [ "$made" = 1 ] && rm -rf "$dir"
done

# The table: our measured runs next to the seed's projection (its best tok/s at the paired size × lm-eval's steps).
python3 - "$WORK/models.jsonl" "$WORK/logs" "$OUT/seed.json" "$OUT/e2e.jsonl" "$OUT/e2e.md" <<'PY'
import json, os, re, sys
models_file, logs, seed_file, jsonl_out, md_out = sys.argv[1:6]
SEED_PAIR = {"mamba-130m": "mamba2-130m", "mamba-370m": "mamba2-370m", "mamba-790m": "mamba2-780m",
             "mamba-1.4b": "mamba2-1.3b", "mamba-2.8b": "mamba2-2.7b", "mamba2-2.7b": "mamba2-2.7b"}
MAMBA1 = ["mamba-130m", "mamba-370m", "mamba-790m", "mamba-1.4b", "mamba-2.8b"]
seed_best = {}
if os.path.exists(seed_file):
    for run in json.load(open(seed_file))["runs"]:
        if run["tok_per_s"] > seed_best.get(run["name"], {"tok_per_s": 0})["tok_per_s"]:
            seed_best[run["name"]] = run
rows = []
for line in open(models_file):
    m = json.loads(line)
    if m.get("skipped") or m.get("failed"):
        rows.append(m)
        continue
    err = os.path.join(logs, os.path.basename(m["name"]) + ".err")
    first_call = steps = None
    for text in open(err, encoding="utf-8", errors="replace"):
        stamp, _, msg = text.rstrip("\n").partition(" ")
        if first_call is None and msg.startswith("loglikelihood: "):
            first_call = float(stamp)
        hit = re.match(r"token steps: (\d+) \(lm-eval would run (\d+)\), (\d+) native calls", msg)
        if hit:
            steps = dict(run=int(hit[1]), lmeval=int(hit[2]), calls=int(hit[3]), at=float(stamp))
    m["wall_s"] = round(m["end"] - m["start"], 2)
    if first_call is not None:
        m["to_first_call_s"] = round(first_call - m["start"], 2)
    if steps:
        m.update(steps_run=steps["run"], steps_lmeval=steps["lmeval"], native_calls=steps["calls"])
        if first_call is not None and steps["calls"] > 1:
            # The first progress line comes after the first of `calls` nearly equal calls (the scheduler fills each
            # to the token budget but the last): scale the time after it to include that call.
            m["scoring_s"] = round((steps["at"] - first_call) * steps["calls"] / (steps["calls"] - 1), 2)
    seed = seed_best.get(SEED_PAIR.get(m["name"], ""))
    if seed and steps:
        m["seed"] = dict(size=seed["name"], shape=f"{seed['batch']}x{seed['length']}", tok_per_s=round(seed["tok_per_s"]),
                         projected_s=round(steps["lmeval"] / seed["tok_per_s"], 2))
    del m["start"], m["end"]
    rows.append(m)
with open(jsonl_out, "w") as f:
    for m in rows:
        f.write(json.dumps(m) + "\n")

def num(x, digits=1):
    return "–" if x is None else f"{x:,.{digits}f}".replace(",", " ")

out = ["| model | wall s | load s | to 1st call s | scoring s | token-steps run | lm-eval's token-steps | tok/s (run / scoring s) "
       "| seed: size, best shape, tok/s | seed projected s (lm-eval's steps / its tok/s) | seed ÷ ours (wall) |",
       "|---|---|---|---|---|---|---|---|---|---|---|"]
for m in rows:
    if "wall_s" not in m:
        out.append(f"| {m['name']} | {'skipped (budget)' if m.get('skipped') else 'failed: ' + m['failed']} |" + " |" * 9)
        continue
    rate = m["steps_run"] / m["scoring_s"] if m.get("scoring_s") else None
    seed = m.get("seed")
    ok = "" if m["rc"] == 0 else f" (exit {m['rc']})"
    out.append(f"| {m['name']}{ok} | {num(m['wall_s'])} | {num(m.get('load_s'))} | {num(m.get('to_first_call_s'))} | {num(m.get('scoring_s'))} "
               f"| {num(m.get('steps_run'), 0)} | {num(m.get('steps_lmeval'), 0)} | {num(rate, 0)} "
               f"| {seed['size'] + ', ' + seed['shape'] + ', ' + num(seed['tok_per_s'], 0) if seed else '–'} "
               f"| {num(seed['projected_s']) if seed else '–'} | {num(seed['projected_s'] / m['wall_s'], 2) + '×' if seed else '–'} |")
done = {m["name"]: m for m in rows if m.get("rc") == 0 and "steps_run" in m}
if all(n in done for n in MAMBA1):
    five = [done[n] for n in MAMBA1]
    wall = sum(m["wall_s"] for m in five)
    seeds = [m.get("seed") for m in five]
    seed_s = sum(s["projected_s"] for s in seeds) if all(seeds) else None
    load = sum(m["load_s"] for m in five) if all(m.get("load_s") is not None for m in five) else None
    out.append(f"| **five Mamba-1 sizes** | **{num(wall)}** | {num(load)} | | {num(sum(m.get('scoring_s', 0) for m in five))} "
               f"| {num(sum(m['steps_run'] for m in five), 0)} | {num(sum(m['steps_lmeval'] for m in five), 0)} | "
               f"| Mamba-2 at the paired sizes | {num(seed_s)} | {num(seed_s / wall, 2) + '×' if seed_s else '–'} |")
notes = [
    "",
    "wall: the CLI run (node start → exit: load, checksum, data, tokenisation, scoring, metrics, results file). load: a separate "
    "`mamba-eval score` on 8 ids (node start, checkpoint open, weight upload, one call). to 1st call: run start → the first "
    "progress line (load + data + tokenisation + one native call). scoring: first progress line → the token-steps line "
    "(printed once every request is scored), × calls / (calls − 1) for the first call; – with a single call.",
    "seed projected: lm-eval's token-steps of this run / the seed's best tok/s over seed_bench.py's shapes (full logits + "
    "log_softmax, fp16, Triton SSD) at the paired Mamba-2 size (the seed's Mamba-1 path cannot run without its compiled "
    "selective_scan). It leaves out the seed's loading, tokenisation and lm-eval's padding, so it favours the seed.",
]
text = "\n".join(out + notes) + "\n"
open(md_out, "w", encoding="utf-8").write(text)
print(text)
PY
[ $? = 0 ] || status=1
cp "$WORK/runs.log" "$OUT/runs.log" 2>/dev/null
results=$(cd "$WORK/res" && find . -name 'results_*.json' | sort)
[ -n "$results" ] && tar -czf "$OUT/results.tar.gz" -C "$WORK/res" $results
echo "table3_e2e.sh: $(elapsed) s in all, status=$status"
exit $status
