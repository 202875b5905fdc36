/**
 * `npm run bench [-- --quick] [-- --llama-cpp DIR] [-- --threads N] [-- --shapes LIST] [-- --tokens T] [-- --json FILE]`:
 * CPU performance of the native backend against this machine's limits, measured in the same run (docs/performance.md).
 *
 *   1. limits: fp32 FMA peak per ISA (AVX2, AVX-512 where present), memory read bandwidth (1 and N threads)
 *   2. prefill: score() of one sequence, LM head on every row, per shape and ISA: tok/s, GFLOP/s, % of that ISA's
 *      peak (the larger of the peaks measured before and after), and llama.cpp's prompt rate on the same shape
 *      in the same run when --llama-cpp is given (pure Mamba shapes only). The shapes include two hybrids of the
 *      130m size, mamba2attn-130m (mamba2-130m with 3 attention layers) and transformerpp-130m (every layer
 *      attention + GatedMLP), to set beside mamba2-130m
 *   3. eval workload on the real data (only with MAMBA_EVAL_DATA, the task data folder): token-steps lm-eval's way
 *      vs the prefix tree's; a subset through the scheduler vs one call per request, log-likelihoods asserted
 *      bit-identical
 *   4. decode: step() of 1, 4, 16 sequences, f32 and bf16 weights, vs the bandwidth bound (and of 1 sequence of each
 *      hybrid shape among the prefill shapes)
 *   5. memory: peak RSS of a fresh process vs 1.15 × weights + activations (and each hybrid prefill shape's, f32)
 *   6. llama.cpp decode side by side (when --llama-cpp is given)
 * Random-weight checkpoints at the real shapes are written once to os.tmpdir()/mamba-eval-bench.
 */
import { existsSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { NativeBackend } from "../src/backend/NativeBackend.js";
import { countTokenSteps, loadAllPairs, runSubset, tokenRequests } from "./evalWorkload.js";
import { benchLlamaCpp, llamaBench, type LlamaCppRow } from "./llamaCpp.js";
import { BenchSetupError, isaPeak, maxLimits, measureLimits, peakLooksShared } from "./limits.js";
import { measureMemory } from "./memory.js";
import { benchDecode, benchPrefill, type DecodeResult, type PrefillResult } from "./modelBench.js";
import {
    MAMBA2ATTN_130M, MAMBA2_130M, MAMBA_130M, MAMBA_1_4B, MAMBA_370M, MAMBA_790M, TRANSFORMERPP_130M, benchSpec, randomCheckpoint, type BenchShape,
} from "./randomCheckpoint.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** The GPT-NeoX-20B tokenizer the package ships. */
const tokenizerFile = path.join(repoRoot, "fixtures", "tokenizers", "gpt-neox-20b.tokenizer.json.gz");
/** The prefill shapes in table order: the hybrids right after mamba2-130m, the pure Mamba-2 model of their size. */
const SHAPES: readonly BenchShape[] = [MAMBA_130M, MAMBA2_130M, MAMBA2ATTN_130M, TRANSFORMERPP_130M, MAMBA_370M, MAMBA_790M, MAMBA_1_4B];
const DEFAULT_SHAPES = { quick: "mamba-130m,mamba2-130m", full: "mamba-130m,mamba2-130m,mamba2attn-130m,mamba-790m" };

const argv = yargs(hideBin(process.argv))
    .scriptName("npm run bench --")
    .option("quick", { type: "boolean", default: false, describe: "smaller sizes, 130m shapes only (under 2 minutes)" })
    .option("shapes", { type: "string", describe: `prefill shapes, comma-separated (${SHAPES.map((x) => x.name).join(", ")}) or "all"; default ${DEFAULT_SHAPES.quick} (quick) or ${DEFAULT_SHAPES.full}` })
    .option("tokens", { type: "number", describe: "prefill sequence length (default 256 quick, 512 full; llama-bench -p uses the same)" })
    .option("threads", { type: "number", default: os.availableParallelism(), describe: "CPU threads of the backend" })
    .option("llama-cpp", { type: "string", describe: "a llama.cpp build folder (with bin/llama-bench) to compare against" })
    .option("json", { type: "string", describe: "also write all figures to this JSON file" })
    .strict()
    .parseSync();
/** Prints `npm run bench: <message>` and exits with status 2 (a usage or setup problem, no stack trace). */
function fail(message: string): never {
    console.error(`npm run bench: ${message}`);
    process.exit(2);
}
process.on("uncaughtException", (e) => fail(e instanceof BenchSetupError ? e.message : `${(e as Error).message ?? e}`));
process.on("unhandledRejection", (e) => fail(e instanceof BenchSetupError ? e.message : `${(e as Error)?.message ?? e}`));

const threads = argv.threads;
if (!Number.isInteger(threads) || threads < 1) fail(`--threads: expected a positive integer, got ${threads}`);
const quick = argv.quick;
const T = argv.tokens ?? (quick ? 256 : 512);
if (!Number.isInteger(T) || T < 2) fail(`--tokens: expected an integer ≥ 2, got ${argv.tokens}`);
const shapeNames = argv.shapes === "all" ? SHAPES.map((x) => x.name)
    : (argv.shapes ?? (quick ? DEFAULT_SHAPES.quick : DEFAULT_SHAPES.full)).split(",").map((x) => x.trim()).filter((x) => x);
const shapes = shapeNames.map((n) => SHAPES.find((x) => x.name === n) ?? fail(`--shapes: unknown shape "${n}" (expected ${SHAPES.map((x) => x.name).join(", ")} or all)`));
/** The hybrid shapes among the prefill shapes: they also get a decode row (1 sequence) and a memory row (f32). */
const hybridShapes = shapes.filter((x) => x.hybrid !== undefined);
const llamaDir = argv["llama-cpp"];
if (llamaDir !== undefined && !llamaBench(llamaDir).bench) fail(llamaBench(llamaDir).note!);
const taskData = process.env.MAMBA_EVAL_DATA ? path.resolve(process.env.MAMBA_EVAL_DATA) : undefined;
if (taskData !== undefined && !existsSync(taskData)) fail(`MAMBA_EVAL_DATA=${process.env.MAMBA_EVAL_DATA}: no such folder`);

const pct = (x: number): string => `${(100 * x).toFixed(0)}%`;
const f1 = (x: number): string => x.toFixed(1);
function table(headers: string[], rows: (string | number)[][]): void {
    const cells = [headers, ...rows.map((r) => r.map(String))];
    const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
    const line = (r: string[]): string => "| " + r.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |";
    console.log(line(cells[0]!));
    console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
    for (const r of cells.slice(1)) console.log(line(r));
    console.log("");
}
const load = (): string => os.loadavg().map((x) => x.toFixed(2)).join(" ");
const started = performance.now();
const report: Record<string, unknown> = { quick, threads, loadAtStart: os.loadavg() };
const sectionSeconds: Record<string, number> = {};
let sectionStart = performance.now();
/** Records the seconds since the previous mark under `name`. */
function mark(name: string): void {
    const now = performance.now();
    sectionSeconds[name] = (now - sectionStart) / 1000;
    sectionStart = now;
}

console.log(`mamba-eval CPU bench (${quick ? "quick" : "full"}), ${threads} threads, ${os.cpus()[0]?.model ?? "?"}, load average ${load()}\n`);

// 1. limits
const limits = measureLimits(repoRoot, threads, quick ? 256 : 512);
report["limits"] = limits;
const avx2Peak = limits.fma.avx2?.[String(threads)] ?? NaN;
const bw = Math.max(...Object.values(limits.bandwidth));
console.log("## Machine limits (measured now)\n");
table(["quantity", "1 thread", `${threads} threads`], [
    ["fp32 FMA peak AVX2 (GFLOP/s)", f1(limits.fma.avx2?.["1"] ?? NaN), f1(avx2Peak)],
    ["fp32 FMA peak AVX-512 (GFLOP/s)", limits.fma.avx512 ? f1(limits.fma.avx512["1"]!) : "n/a", limits.fma.avx512 ? f1(limits.fma.avx512[String(threads)]!) : "n/a"],
    ["memory read bandwidth (GB/s)", f1(limits.bandwidth["1"]!), f1(limits.bandwidth[String(threads)]!)],
]);

mark("limits");

// 2. prefill, per shape and ISA, with llama.cpp on the same shape right after ours (the same minutes' load)
const prefills: PrefillResult[] = [];
const llamaRows = new Map<string, LlamaCppRow>();
const llamaNotes: string[] = [];
const isas: ("avx512" | "avx2")[] = limits.fma.avx512 ? ["avx512", "avx2"] : ["avx2"];
const repsOf = (s: BenchShape): number => (quick ? 2 : s.dModel >= 2048 ? 2 : 3);
for (const shape of shapes) {
    for (const isa of isas) prefills.push(await benchPrefill(shape, T, repsOf(shape), threads, "f32", isa));
    if (llamaDir !== undefined && shape.hybrid) {
        llamaNotes.push(`${shape.name}: not run (bench/llamaCppConvert.sh converts the pure Mamba shapes only)`);
    } else if (llamaDir !== undefined) {
        const r = benchLlamaCpp(llamaDir, [shape.name], T, threads);
        for (const row of r.rows) llamaRows.set(row.model, row);
        llamaNotes.push(...r.notes);
    }
}
prefills.push(await benchPrefill(MAMBA_130M, T, repsOf(MAMBA_130M), threads, "bf16"));
report["prefill"] = prefills;
report["llamaCpp"] = { rows: [...llamaRows.values()], notes: llamaNotes };
// The peaks again after the prefills; each ISA's reference is the larger of the two measurements.
const peaks = maxLimits(limits, measureLimits(repoRoot, threads, 64));
report["peaksForPrefill"] = peaks.fma;
const peakOf = (p: PrefillResult): number => isaPeak(peaks, p.isa.startsWith("avx512") ? "avx512" : "avx2", threads);
console.log(`## Prefill: score() of one ${T}-token sequence, LM head on every row (median of the timed calls, range slowest–fastest)\n`);
console.log(`% of peak: GFLOP/s over the fp32 FMA peak of the ISA in use on ${threads} threads (${isas.map((i) => `${i} ${f1(isaPeak(peaks, i, threads))}`).join(", ")} GFLOP/s: the largest of the figures measured before and after the prefills and ${threads} × the 1-thread figure).` +
    ` GFLOP/s: 2 × the multiply-adds of every weight matrix product (the LM head included; GatedMLP fc1, fc2 and attention in_proj, out_proj where a model has them)` +
    (hybridShapes.length ? `, and in attention layers QKᵀ and A·V, counted as 2·T·d flops per attention layer per token (T/2 keys per query on average under the causal mask, d = heads × head_dim, T = ${T})` : "") +
    `; scans, convs, norms and softmax not counted.` +
    (llamaDir !== undefined ? ` llama.cpp: llama-bench -p ${T} -t ${threads} on the same random weights (f32 GGUF), run right after ours on each shape; it computes logits for the last row only.` : "") + "\n");
table(["model", "weights", "ISA", "tok/s", "range", "GFLOP/s", "% of ISA peak", ...(llamaDir !== undefined ? ["llama.cpp tok/s", "ours ÷ llama.cpp"] : [])], prefills.map((p) => {
    const llama = llamaRows.get(p.model);
    const ours = [p.model, p.weightType, p.isa.startsWith("avx512") ? "avx512" : "avx2", f1(p.tokPerSec), `${f1(p.minTokPerSec)}–${f1(p.maxTokPerSec)}`, f1(p.gflops), pct(p.gflops / peakOf(p))];
    if (llamaDir === undefined) return ours;
    return [...ours, llama && p.weightType === "f32" ? f1(llama.prefillTokPerSec) : "-", llama && p.weightType === "f32" ? (p.tokPerSec / llama.prefillTokPerSec).toFixed(2) + "×" : "-"];
}));
for (const n of llamaNotes) console.log(`- llama.cpp ${n}`);
if (peakLooksShared(limits, threads) || peakLooksShared(peaks, threads))
    console.log(`- the ${threads}-thread FMA peak measured below ${threads} × the 1-thread one: other work held the cores, so these rates are low; rerun when the load average is below ${threads}`);
if (llamaNotes.length || peakLooksShared(limits, threads) || peakLooksShared(peaks, threads)) console.log("");

mark("prefill");

// 3. eval workload (the real task data: only with MAMBA_EVAL_DATA)
if (taskData === undefined) {
    console.log("## Evaluation workload: skipped (set MAMBA_EVAL_DATA to the task data folder, in the layout of fixtures/tasks, to run it)\n");
} else {
    console.log("## Evaluation workload (real data, GPT-NeoX tokenizer)\n");
    const pairs = await loadAllPairs(taskData);
    const allRequests = await tokenRequests(tokenizerFile, pairs);
    const counts = countTokenSteps(allRequests);
    const total = counts.reduce((a, c) => ({ requests: a.requests + c.requests, lmEval: a.lmEval + c.lmEval, tree: a.tree + c.tree }), { requests: 0, lmEval: 0, tree: 0 });
    report["tokenSteps"] = { perTask: counts, total };
    table(["task", "requests", "token-steps lm-eval", "token-steps prefix tree", "ratio"], [
        ...counts.map((c) => [c.task, c.requests, c.lmEval, c.tree, (c.lmEval / c.tree).toFixed(2) + "×"]),
        ["all", total.requests, total.lmEval, total.tree, (total.lmEval / total.tree).toFixed(2) + "×"],
    ]);
    mark("tokenize all data + token-step counts");
    const docsPerTask = quick ? 4 : 40;
    const subsetRequests = [...(await tokenRequests(tokenizerFile, pairs, docsPerTask)).values()].flat();
    const evalModel = await NativeBackend.fromSpec(benchSpec(MAMBA_130M, randomCheckpoint(MAMBA_130M), threads, "f32"));
    const subset = await runSubset(evalModel, subsetRequests);
    await evalModel[Symbol.asyncDispose]();
    report["subset"] = { docsPerTask, ...subset };
    table(["subset (first docs/task)", "requests", "tokens run", "scored rows", "calls", "seconds", "tok/s (of tokens run)"], [
        [`prefix tree + scheduler (${docsPerTask})`, subset.requests, subset.treeTokens, subset.scoredRows, subset.calls, f1(subset.treeSeconds), f1(subset.treeTokens / subset.treeSeconds)],
        [`one call per request (${docsPerTask})`, subset.requests, subset.aloneTokens, subset.scoredRows, subset.requests, f1(subset.aloneSeconds), f1(subset.aloneTokens / subset.aloneSeconds)],
    ]);
    console.log(`speed-up ${(subset.aloneSeconds / subset.treeSeconds).toFixed(2)}× (target ≥ 1.7×); log-likelihoods bit-identical: ${subset.bitIdentical ? "yes" : "NO"}\n`);
    if (!subset.bitIdentical) {
        process.exitCode = 1;
        console.error("FAIL: the scheduler's log-likelihoods differ from scoring each request alone");
    }

    mark("eval subset");
}

// 4. decode
// The bandwidth swings by ±30% from minute to minute on this shared host, so it is measured again right
// before decode, and the bound takes the larger of the two figures (the stricter bound).
const bwDecode = Math.max(bw, ...Object.values(measureLimits(repoRoot, threads, 256).bandwidth));
report["decodeBandwidth"] = bwDecode;
const decodes: DecodeResult[] = [];
const steps = quick ? 4 : 12;
decodes.push(await benchDecode(MAMBA_130M, "f32", [1, 4, 16], steps, threads));
decodes.push(await benchDecode(MAMBA_130M, "bf16", [1, 4, 16], steps, threads));
decodes.push(await benchDecode(MAMBA2_130M, "f32", [1], steps, threads));
for (const shape of hybridShapes) decodes.push(await benchDecode(shape, "f32", [1], steps, threads));
if (!quick) {
    decodes.push(await benchDecode(MAMBA_790M, "f32", [1], steps, threads));
    decodes.push(await benchDecode(MAMBA_790M, "bf16", [1], steps, threads));
}
report["decode"] = decodes;
console.log(`## Decode: step() (median of ${steps}); bandwidth bound = ${f1(bwDecode)} GB/s (the larger of the figures measured at the start and just before decode) / weight bytes per token\n`);
table(["model", "weights", "MB/token", "bound tok/s", "1 seq tok/s", "% of bound", "4 seqs tok/s", "16 seqs tok/s"], decodes.map((d) => {
    const bound = (bwDecode * 1e9) / d.weightBytes;
    const one = d.tokPerSec[1]!;
    return [d.model, d.weightType, f1(d.weightBytes / 1e6), f1(bound), f1(one), pct(one / bound), d.tokPerSec[4] ? f1(d.tokPerSec[4]) : "-", d.tokPerSec[16] ? f1(d.tokPerSec[16]) : "-"];
}));

mark("decode");

// 5. memory
const mems = [measureMemory(repoRoot, MAMBA_130M, "f32", 512, threads), measureMemory(repoRoot, MAMBA_130M, "bf16", 512, threads)];
for (const shape of hybridShapes) mems.push(measureMemory(repoRoot, shape, "f32", 512, threads));
if (!quick) mems.push(measureMemory(repoRoot, MAMBA_790M, "f32", 512, threads), measureMemory(repoRoot, MAMBA_790M, "bf16", 512, threads));
report["memory"] = mems;
console.log("## Memory: peak RSS of a fresh process (load + score 512 tokens)\n");
const mb = (b: number): string => (b / 1e6).toFixed(0);
table(["model", "weights", "weight MB", "activations MB", "node runtime MB", "peak RSS MB", "(peak − runtime) / (1.15·W + A)"], mems.map((m) => [
    m.model, m.weightType, mb(m.weightBytes), mb(m.activationBytes), mb(m.runtimeBytes), mb(m.peakBytes), m.ratio.toFixed(2),
]));

mark("memory");

// 6. llama.cpp decode (its prompt rate is in the prefill table)
if (llamaDir !== undefined) {
    console.log(`## llama.cpp side by side (llama-bench -p ${T} -n 32 -t ${threads}, run during the prefill section)\n`);
    if (llamaRows.size) table(["model", `prefill tok/s (p${T})`, "decode tok/s (n32)"], [...llamaRows.values()].map((r) => [r.model, f1(r.prefillTokPerSec), f1(r.decodeTokPerSec)]));
    for (const n of llamaNotes) console.log(`- ${n}`);
    console.log("");
}

mark("llama.cpp");
report["sectionSeconds"] = sectionSeconds;
console.log("section seconds: " + Object.entries(sectionSeconds).map(([k, v]) => `${k} ${f1(v)}`).join(", "));
report["loadAtEnd"] = os.loadavg();
report["seconds"] = (performance.now() - started) / 1000;
console.log(`done in ${f1((performance.now() - started) / 1000)} s; load average ${load()} (numbers swing with other load: rerun when it is low)`);
if (argv.json) writeFileSync(argv.json, JSON.stringify(report, null, 2));
