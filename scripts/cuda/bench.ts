/**
 * CUDA backend bench at real Mamba shapes (run by scripts/cuda/check.sh on a GPU machine, bundled to plain JS).
 *
 *   node bench.mjs run CKPT_DIR NAME OUT_JSONL      one model (random bf16 checkpoint from make_bench_checkpoint.py)
 *   node bench.mjs table OUT_JSONL CEILINGS_JSON    the summary table
 *
 * Prefill: 64 segments × 512 tokens in one score() call, the last 32 rows of each scored (an lm-eval-like mix),
 * end to end through the addon (uploads, N-API and downloads included); median of 3 after 1 warm-up.
 * After the timed calls, one more prefill call runs with MAMBA_EVAL_CUDA_PROFILE=1 (per-phase GPU time to stderr).
 * The same is timed at 256 segments × 128 tokens (8 scored each), the seed bench's second shape.
 * Mamba-2 shapes: the chunked SSD's log-probs are compared with the same batch cut into two calls through state
 * slots: cut at 256 tokens (a multiple of the 64-token chunk: must be bit-identical to the uncut call) and at 200
 * (close, not bit-identical).
 * Decode: step() for 1 and 64 sequences, median per step of 20 / 10 after 3 warm-ups (eager, graph capture, replay),
 * logits downloaded each step.
 * The table relates prefill to the bf16 matmul rate and decode to the copy-bandwidth bound, both measured in the
 * same run by ceilings.py, and projects Table-3 time from 4.30M token-steps (lm-eval's way) and 2.40M (prefix tree).
 */
import { appendFile, readFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { NativeBackend } from "../../src/backend/NativeBackend.js";
import { readBenchCheckpoint } from "./benchCheckpoint.js";

const SEGMENTS = 64;
const SEGMENT_TOKENS = 512;
const SCORED_PER_SEGMENT = 32;
const TABLE3_TOKEN_STEPS = 4.3e6;
const TABLE3_TOKEN_STEPS_PREFIX_TREE = 2.4e6;


interface BenchResult {
    name: string;
    isa: string;
    weightBytes: number;
    stateBytes: number;
    prefillTokens: number;
    prefillScoredRows: number;
    prefillSeconds: number;
    ssdCut256Identical?: boolean;
    ssdCut200MaxRel?: number;
    prefillShortSeconds?: number;
    decode1Seconds: number;
    decode64Seconds: number;
    layerGemmParams: number;
    dModel: number;
    vocab: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** A deterministic pseudo-random token stream (xorshift), so runs are comparable. */
function tokens(n: number, vocab: number, seed: number): Int32Array {
    const out = new Int32Array(n);
    let x = seed >>> 0 || 1;
    for (let i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        out[i] = (x >>> 0) % 50277;
    }
    return out;
}

async function timeIt(reps: number, warmups: number, fn: () => Promise<unknown>): Promise<number> {
    for (let i = 0; i < warmups; i++) await fn();
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        await fn();
        times.push((performance.now() - t0) / 1e3);
    }
    return median(times);
}

/** A prefill batch of `segments` fresh segments × `length` tokens, the last `scored` rows of each scored. */
function prefillBatch(segments: number, length: number, scored: number, vocab: number) {
    const T = segments * length;
    const batchTokens = tokens(T, vocab, 7);
    const scoreRows = Int32Array.from({ length: segments * scored }, (_, i) =>
        Math.floor(i / scored) * length + length - 1 - (i % scored));
    return {
        tokens: batchTokens, segOffsets: Int32Array.from({ length: segments + 1 }, (_, s) => s * length),
        segInit: new Int32Array(segments).fill(-1), segSave: new Int32Array(segments).fill(-1),
        scoreRows, scoreTargets: Int32Array.from(scoreRows, (r) => batchTokens[(r + 1) % T] ?? 0),
    };
}

const maxRel = (a: Float64Array, b: Float64Array): number => {
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1e-30, Math.abs(b[i]!)));
    return worst;
};

/** Mamba-2: the batch cut into two calls through state slots at `cut` tokens, compared with the uncut SSD call. */
async function ssdChecks(model: NativeBackend, batch: ReturnType<typeof prefillBatch>) {
    const uncut = await model.score(batch);

    const cutRun = async (cut: number): Promise<Float64Array> => {
        const n = SEGMENTS, L = SEGMENT_TOKENS;
        const head = new Int32Array(n * cut), tail = new Int32Array(n * (L - cut));
        for (let s = 0; s < n; s++) {
            head.set(batch.tokens.subarray(s * L, s * L + cut), s * cut);
            tail.set(batch.tokens.subarray(s * L + cut, (s + 1) * L), s * (L - cut));
        }
        const slots = Int32Array.from({ length: n }, (_, i) => 1000 + i);
        await model.score({
            tokens: head, segOffsets: Int32Array.from({ length: n + 1 }, (_, s) => s * cut),
            segInit: new Int32Array(n).fill(-1), segSave: slots, scoreRows: new Int32Array(0), scoreTargets: new Int32Array(0),
        });
        // The scored rows all lie in the tail (the last 32 of each segment).
        const scoreRows = Int32Array.from(batch.scoreRows, (r) => Math.floor(r / L) * (L - cut) + (r % L) - cut);
        const out = await model.score({
            tokens: tail, segOffsets: Int32Array.from({ length: n + 1 }, (_, s) => s * (L - cut)),
            segInit: slots, segSave: new Int32Array(n).fill(-1), scoreRows, scoreTargets: batch.scoreTargets,
        });
        for (const slot of slots) model.freeState(slot);
        return out.logprobs;
    };
    const cut256 = await cutRun(256);
    const cut200 = await cutRun(200);
    return {
        ssdCut256Identical: cut256.every((v, i) => Object.is(v, uncut.logprobs[i])),
        ssdCut200MaxRel: maxRel(cut200, uncut.logprobs),
    };
}

async function runOne(dir: string, name: string, outJsonl: string): Promise<void> {
    const { shape, spec } = await readBenchCheckpoint(dir);
    const t0 = performance.now();
    const model = await NativeBackend.fromSpec(spec);
    const loadSeconds = (performance.now() - t0) / 1e3;
    const info = model.info();

    if (process.env.BENCH_DECODE_ONLY) {
        // Profiling aid (ncu): only decode steps of BENCH_DECODE_ONLY sequences, no prefill, nothing recorded.
        const n = Number(process.env.BENCH_DECODE_ONLY);
        const slots = Int32Array.from({ length: n }, (_, i) => 100 + i);
        for (let step = 0; step < 8; step++) await model.step(slots, tokens(n, shape.vocab, 11 + step));
        model.dispose();
        return;
    }
    const T = SEGMENTS * SEGMENT_TOKENS;
    const batch = prefillBatch(SEGMENTS, SEGMENT_TOKENS, SCORED_PER_SEGMENT, shape.vocab);
    const scoreRows = batch.scoreRows;
    const prefillSeconds = await timeIt(3, 1, () => model.score(batch));
    // The seed bench's second shape: 256 segments × 128 tokens, 8 scored each (the same 2048 scored rows).
    const shortBatch = prefillBatch(256, 128, 8, shape.vocab);
    const prefillShortSeconds = await timeIt(3, 1, () => model.score(shortBatch));
    // One more call with the backend's per-phase GPU timer on (prints "cuda profile: ..." to stderr).
    process.env.MAMBA_EVAL_CUDA_PROFILE = "1";
    await model.score(batch);
    delete process.env.MAMBA_EVAL_CUDA_PROFILE;

    let ssd: Pick<BenchResult, "ssdCut256Identical" | "ssdCut200MaxRel"> = {};
    if (shape.family === 2) ssd = await ssdChecks(model, batch);

    const decode = async (n: number, reps: number): Promise<number> => {
        const slots = Int32Array.from({ length: n }, (_, i) => 100 + i);
        let step = 0;
        return timeIt(reps, 3, () => model.step(slots, tokens(n, shape.vocab, 11 + step++)));
    };
    const decode1Seconds = await decode(1, 20);
    const decode64Seconds = await decode(64, 10);
    // Per-phase GPU time of one decode step at 1 and 64 sequences (the profiler runs step() eagerly).
    process.env.MAMBA_EVAL_CUDA_PROFILE = "1";
    console.error("(decode step, 1 and 64 sequences)");
    await decode(1, 1);
    await decode(64, 1);
    delete process.env.MAMBA_EVAL_CUDA_PROFILE;
    model.dispose();

    const result: BenchResult = {
        name, isa: info.isa, weightBytes: info.weightBytes, stateBytes: (info.convStateFloats + info.ssmStateFloats) * 4,
        prefillTokens: T, prefillScoredRows: scoreRows.length, prefillSeconds, prefillShortSeconds, decode1Seconds, decode64Seconds,
        ...ssd, layerGemmParams: shape.layerGemmParams, dModel: shape.dModel, vocab: shape.vocab,
    };
    await appendFile(outJsonl, `${JSON.stringify(result)}\n`);
    const cuts = ssd.ssdCut256Identical !== undefined
        ? ` (SSD cut at 256 bit-identical: ${ssd.ssdCut256Identical}; cut at 200 max rel ${ssd.ssdCut200MaxRel?.toExponential(2)})`
        : "";
    console.log(`bench ${name}: load ${loadSeconds.toFixed(1)} s, prefill ${(T / prefillSeconds).toFixed(0)} tok/s${cuts}, ` +
        `256×128: ${(T / prefillShortSeconds).toFixed(0)} tok/s, ` +
        `decode B=1 ${(1 / decode1Seconds).toFixed(0)} tok/s, B=64 ${(64 / decode64Seconds).toFixed(0)} tok/s`);
}

async function table(outJsonl: string, ceilingsJson: string): Promise<void> {
    const ceilings = JSON.parse(await readFile(ceilingsJson, "utf8")) as { gpu: string; bf16_matmul_tflops: number; copy_gbps: number };
    const results = (await readFile(outJsonl, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as BenchResult);
    console.log(`${ceilings.gpu}: bf16 matmul 8192³ ${ceilings.bf16_matmul_tflops.toFixed(0)} TFLOP/s, ` +
        `copy ${ceilings.copy_gbps.toFixed(0)} GB/s (read + write)`);
    console.log("| shape | prefill tok/s | 256×128 tok/s | % of bf16 matmul | decode B=1 tok/s (bound) | decode B=64 tok/s (bound) | Table 3 (4.30M) | Table 3 (2.40M) |");
    console.log("|---|---|---|---|---|---|---|---|");
    let total = 0;
    let totalTree = 0;
    for (const r of results) {
        const prefill = r.prefillTokens / r.prefillSeconds;
        const flops = 2 * r.layerGemmParams * r.prefillTokens + 2 * r.dModel * r.vocab * r.prefillScoredRows;
        const fraction = flops / r.prefillSeconds / (ceilings.bf16_matmul_tflops * 1e12);
        const bw = ceilings.copy_gbps * 1e9;
        const bound = (b: number): number => (b * bw) / (r.weightBytes + 2 * b * r.stateBytes);
        if (r.name.startsWith("mamba-")) {
            total += TABLE3_TOKEN_STEPS / prefill;
            totalTree += TABLE3_TOKEN_STEPS_PREFIX_TREE / prefill;
        }
        const short = r.prefillShortSeconds === undefined ? "" : (r.prefillTokens / r.prefillShortSeconds).toFixed(0);
        console.log(`| ${r.name} | ${prefill.toFixed(0)} | ${short} | ${(100 * fraction).toFixed(1)}% | ${(1 / r.decode1Seconds).toFixed(0)} ` +
            `(${bound(1).toFixed(0)}) | ${(64 / r.decode64Seconds).toFixed(0)} (${bound(64).toFixed(0)}) | ` +
            `${(TABLE3_TOKEN_STEPS / prefill).toFixed(0)} s | ${(TABLE3_TOKEN_STEPS_PREFIX_TREE / prefill).toFixed(0)} s |`);
    }
    console.log(`| Mamba-1 sizes benched, together | | | | | | ${total.toFixed(0)} s | ${totalTree.toFixed(0)} s |`);
}

const [mode, a, b, c] = process.argv.slice(2);
const job = mode === "run" && a && b && c ? runOne(a, b, c) : mode === "table" && a && b ? table(a, b) : undefined;
if (!job) {
    console.error("usage: node bench.mjs run CKPT_DIR NAME OUT_JSONL | table OUT_JSONL CEILINGS_JSON");
    process.exit(2);
}
job.catch((e: unknown) => {
    console.error(`bench: ${(e as Error).message}`);
    process.exit(1);
});
