/**
 * Replays the scoring calls of a real Table-3 run on one random real-shape checkpoint (run by scripts/cuda/replay.sh
 * on a GPU machine, bundled to plain JS with `tokenizers` left external):
 *
 *   node replay.mjs CKPT_DIR NAME DATA_DIR TOKENIZER OUT_JSONL
 *
 * The six tasks' requests are built and tokenised exactly as the CLI does, and the prefix-tree scheduler plans them
 * against a recording engine (the GPU's tokens per call and state budget, as `--batch_size auto`); then the first
 * REPLAY_CALLS calls (default 16, with the slot frees between them) run on the checkpoint through the addon: wall
 * seconds (best of 2 after a warm-up) and token-steps/s; then three calls with MAMBA_EVAL_CUDA_PROFILE=1 (per-phase GPU
 * time, segments and levels on stderr). These calls are what the end-to-end run spends its GPU time on; the 64 × 512
 * bench call has one level of equal segments. An A/B of two builds of the addon: REPLAY_LOGPROBS=FILE writes the
 * log-probs (float64) there, REPLAY_COMPARE=FILE counts the log-probs that differ bit for bit from such a file (run
 * once per build, MAMBA_EVAL_ADDON naming the other build). REPLAY_DRY=1 only records the calls (no GPU, for a check
 * here).
 */
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { NativeBackend } from "../../src/backend/NativeBackend.js";
import type { ScoreBatch, ScoreOutput } from "../../src/addon/addonTypes.js";
import { readBenchCheckpoint } from "./benchCheckpoint.js";
import { loadTokenizerFile } from "../../src/model/tokenizer.js";
import { encodeTokenRequests } from "../../src/lm/MambaLM.js";
import { DEFAULT_TOKENS_PER_CALL, defaultStateBudgetBytes } from "../../src/lm/defaults.js";
import { scoreTokenRequests } from "../../src/lm/scheduler.js";
import { planTasks, pooledRequests } from "../../src/evaluator/evaluate.js";
import { DEFAULT_MAX_LENGTH } from "../../src/lm/encodePair.js";
import { resolveTaskNames } from "../../src/tasks/registry.js";
import { TABLE3_TASKS } from "../../src/report/table3Workflow.js";

type Event = { kind: "score"; batch: ScoreBatch } | { kind: "free"; slot: number };

/** The scheduler's calls and frees for the six tasks, recorded without a model. */
async function recordCalls(dataDir: string, tokenizerFile: string, maxSlots: number): Promise<Event[]> {
    const tokenizer = await loadTokenizerFile(tokenizerFile);
    const pooled = pooledRequests(await planTasks({ tasks: resolveTaskNames([...TABLE3_TASKS]), dataDir }));
    const requests = await encodeTokenRequests(tokenizer, pooled, DEFAULT_MAX_LENGTH);
    const events: Event[] = [];
    const engine = {
        async score(batch: ScoreBatch): Promise<ScoreOutput> {
            events.push({ kind: "score", batch });
            const n = batch.scoreRows.length;
            return { logprobs: new Float64Array(n), greedy: new Uint8Array(n), logits: new Float32Array(0) } as ScoreOutput;
        },
        freeState(slot: number): void {
            events.push({ kind: "free", slot });
        },
    };
    await scoreTokenRequests(engine, requests, { maxTokensPerCall: DEFAULT_TOKENS_PER_CALL.cuda, maxStateSlots: maxSlots });
    return events;
}

/** Runs the events; frees every slot still live at the end, so the next replay starts from nothing. */
async function replay(model: NativeBackend, events: Event[]): Promise<{ seconds: number; logprobs: number[]; tokens: number }> {
    const live = new Set<number>();
    const logprobs: number[] = [];
    let tokens = 0;
    const t0 = performance.now();
    for (const e of events) {
        if (e.kind === "free") {
            model.freeState(e.slot);
            live.delete(e.slot);
            continue;
        }
        const out = await model.score(e.batch);
        for (const v of out.logprobs) logprobs.push(v);
        for (const s of e.batch.segSave) if (s >= 0) live.add(s);
        tokens += e.batch.tokens.length;
    }
    const seconds = (performance.now() - t0) / 1e3;
    for (const s of live) model.freeState(s);
    return { seconds, logprobs, tokens };
}

/** The first `calls` score events and the frees between them. */
function firstCalls(events: Event[], calls: number): Event[] {
    const out: Event[] = [];
    let n = 0;
    for (const e of events) {
        if (e.kind === "score" && n++ === calls) break;
        out.push(e);
    }
    return out;
}

/** Segments per call and their lengths: what the chunked SSD pays a whole chunk and a state load/save for. */
function segmentStats(events: Event[]): string {
    const lengths: number[] = [];
    let inits = 0, saves = 0, tokens = 0;
    for (const e of events) {
        if (e.kind !== "score") continue;
        const { segOffsets, segInit, segSave } = e.batch;
        for (let s = 0; s + 1 < segOffsets.length; s++) {
            lengths.push(segOffsets[s + 1]! - segOffsets[s]!);
            if (segInit[s]! >= 0) inits++;
            if (segSave[s]! >= 0) saves++;
        }
        tokens += e.batch.tokens.length;
    }
    lengths.sort((a, b) => a - b);
    const at = (q: number): number => lengths[Math.min(lengths.length - 1, Math.floor(q * lengths.length))] ?? 0;
    const chunks = lengths.reduce((n, l) => n + Math.ceil(l / 64), 0);
    return `segments ${lengths.length} (from a saved state ${inits}, saving ${saves}), tokens ${tokens}; ` +
        `length p10/p50/p90/max ${at(0.1)}/${at(0.5)}/${at(0.9)}/${lengths.at(-1) ?? 0}; ` +
        `64-row chunks ${chunks} (${(tokens / (chunks * 64)).toFixed(2)} of their rows used)`;
}

async function main(): Promise<void> {
    const [dir, name, dataDir, tokenizerFile, outJsonl] = process.argv.slice(2);
    if (!dir || !name || !dataDir || !tokenizerFile || !outJsonl) {
        throw new Error("usage: node replay.mjs CKPT_DIR NAME DATA_DIR TOKENIZER OUT_JSONL");
    }
    if (process.env.REPLAY_DRY === "1") {  // here: only the recording (no GPU), to check the data and scheduler side
        const slots = Number(process.env.REPLAY_SLOTS ?? 4096);
        const events = await recordCalls(dataDir, tokenizerFile, slots);
        console.log(`replay (dry, ${slots} slots): ${events.filter((e) => e.kind === "score").length} calls, ${events.length} events`);
        console.log(segmentStats(events));
        return;
    }
    const { spec } = await readBenchCheckpoint(dir);
    const model = await NativeBackend.fromSpec(spec);
    try {
        const info = model.info();
        const slotBytes = (info.convStateFloats + info.ssmStateFloats) * 4;
        const maxSlots = Math.max(2, Math.min(4096, Math.floor(defaultStateBudgetBytes(info) / slotBytes)));
        const t0 = performance.now();
        const all = await recordCalls(dataDir, tokenizerFile, maxSlots);
        const recordSeconds = (performance.now() - t0) / 1e3;
        const events = firstCalls(all, Number(process.env.REPLAY_CALLS ?? 16));
        const calls = events.filter((e) => e.kind === "score").length;
        const totalCalls = all.filter((e) => e.kind === "score").length;
        await replay(model, firstCalls(events, 5));  // warm-up: scratch buffers, cuBLASLt plans, state pool
        const first = await replay(model, events);
        const second = await replay(model, events);
        const seconds = Math.min(first.seconds, second.seconds);
        const logprobs = Float64Array.from(first.logprobs);
        const result: Record<string, unknown> = {
            name, calls, totalCalls, tokens: first.tokens, recordSeconds, maxSlots, seconds,
            tokPerS: Math.round(first.tokens / seconds),
        };
        if (process.env.REPLAY_LOGPROBS) await writeFile(process.env.REPLAY_LOGPROBS, new Uint8Array(logprobs.buffer));
        let compared = "";
        if (process.env.REPLAY_COMPARE) {
            const bytes = await readFile(process.env.REPLAY_COMPARE);
            const other = new Float64Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 8));
            let mismatches = Math.abs(other.length - logprobs.length);
            for (let i = 0; i < Math.min(other.length, logprobs.length); i++) if (!Object.is(other[i], logprobs[i])) mismatches++;
            result.mismatchesVsCompare = mismatches;
            compared = `, log-probs differing from ${process.env.REPLAY_COMPARE}: ${mismatches}`;
        }
        console.log(`replay ${name}: ${calls} calls, ${first.tokens} tokens, ${seconds.toFixed(3)} s, ` +
            `${Math.round(first.tokens / seconds)} tok/s${compared}`);
        console.error("(replay profile)");
        process.env.MAMBA_EVAL_CUDA_PROFILE = "1";
        await replay(model, firstCalls(events, 3));
        delete process.env.MAMBA_EVAL_CUDA_PROFILE;
        await appendFile(outJsonl, JSON.stringify(result) + "\n");
    } finally {
        model.dispose();
    }
}

main().catch((e: unknown) => {
    console.error(`replay: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
});
