/**
 * `npm run bench [-- --quick] [-- --llama-cpp DIR] [-- --threads N] [-- --json FILE]`: CPU performance of the
 * native backend against this machine's limits, measured in the same run (see docs/perf-notes.md).
 *
 *   1. limits: fp32 FMA peak per ISA (AVX2, AVX-512 where present), memory read bandwidth (1 and N threads)
 *   2. prefill: score() of one long sequence, LM head on every row: tok/s, GFLOP/s, % of peak
 *   3. eval workload on the real data: token-steps lm-eval's way vs the prefix tree's; a subset through the
 *      scheduler vs one call per request, log-likelihoods asserted bit-identical
 *   4. decode: step() of 1, 4, 16 sequences, f32 and bf16 weights, vs the bandwidth bound
 *   5. memory: peak RSS of a fresh process vs 1.15 × weights + activations
 *   6. llama.cpp side by side (when --llama-cpp is given)
 * Random-weight checkpoints at the real shapes are written once to os.tmpdir()/mamba-eval-bench.
 */
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { NativeBackend } from "../src/backend/NativeBackend.js";
import { countTokenSteps, loadAllPairs, runSubset, tokenRequests } from "./evalWorkload.js";
import { benchLlamaCpp } from "./llamaCpp.js";
import { bestPeak, measureLimits } from "./limits.js";
import { measureMemory } from "./memory.js";
import { benchDecode, benchPrefill, type DecodeResult, type PrefillResult } from "./modelBench.js";
import { MAMBA2_130M, MAMBA_130M, MAMBA_790M, benchSpec, randomCheckpoint } from "./randomCheckpoint.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dataDir = path.resolve(repoRoot, "../shared/data");
const tokenizerFile = path.join(dataDir, "tokenizers", "gpt-neox-20b", "20B_tokenizer.json");

const argv = yargs(hideBin(process.argv))
    .scriptName("npm run bench --")
    .option("quick", { type: "boolean", default: false, describe: "smaller sizes, 130m shapes only (under 2 minutes)" })
    .option("threads", { type: "number", default: os.availableParallelism(), describe: "CPU threads of the backend" })
    .option("llama-cpp", { type: "string", describe: "a llama.cpp build folder (with bin/llama-bench) to compare against" })
    .option("json", { type: "string", describe: "also write all figures to this JSON file" })
    .strict()
    .parseSync();
const threads = argv.threads;
if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads: expected a positive integer, got ${threads}`);
const quick = argv.quick;

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
const peak = bestPeak(limits, threads);
const avx2Peak = limits.fma.avx2?.[String(threads)] ?? NaN;
const bw = Math.max(...Object.values(limits.bandwidth));
console.log("## Machine limits (measured now)\n");
table(["quantity", "1 thread", `${threads} threads`], [
    ["fp32 FMA peak AVX2 (GFLOP/s)", f1(limits.fma.avx2?.["1"] ?? NaN), f1(avx2Peak)],
    ["fp32 FMA peak AVX-512 (GFLOP/s)", limits.fma.avx512 ? f1(limits.fma.avx512["1"]!) : "n/a", limits.fma.avx512 ? f1(limits.fma.avx512[String(threads)]!) : "n/a"],
    ["memory read bandwidth (GB/s)", f1(limits.bandwidth["1"]!), f1(limits.bandwidth[String(threads)]!)],
]);

mark("limits");

// 2. prefill
const prefills: PrefillResult[] = [];
const T = quick ? 256 : 1024;
const reps = quick ? 2 : 3;
prefills.push(await benchPrefill(MAMBA_130M, T, reps, threads, "f32"));
if (limits.fma.avx512) {
    process.env.MAMBA_EVAL_ISA = "avx2";
    prefills.push(await benchPrefill(MAMBA_130M, T, reps, threads, "f32"));
    delete process.env.MAMBA_EVAL_ISA;
}
prefills.push(await benchPrefill(MAMBA_130M, T, reps, threads, "bf16"));
prefills.push(await benchPrefill(MAMBA2_130M, T, quick ? 1 : 2, threads, "f32"));
if (!quick) prefills.push(await benchPrefill(MAMBA_790M, 512, 1, threads, "f32"));
report["prefill"] = prefills;
console.log(`## Prefill: score() of one sequence, LM head on every row (median of ${reps}); % of the ${peak.isa} peak ${f1(peak.gflops)} GFLOP/s\n`);
table(["model", "weights", "GEMM ISA", "tokens", "tok/s", "GFLOP/s", "% of best peak", "% of same-ISA peak"], prefills.map((p) => {
    const isaPeak = p.isa.startsWith("avx512") ? peak.gflops : avx2Peak;
    return [p.model, p.weightType, p.isa, p.tokens, f1(p.tokPerSec), f1(p.gflops), pct(p.gflops / peak.gflops), pct(p.gflops / isaPeak)];
}));

mark("prefill");

// 3. eval workload
console.log("## Evaluation workload (real data, GPT-NeoX tokenizer)\n");
const pairs = await loadAllPairs(dataDir);
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
if (!quick) mems.push(measureMemory(repoRoot, MAMBA_790M, "f32", 512, threads), measureMemory(repoRoot, MAMBA_790M, "bf16", 512, threads));
report["memory"] = mems;
console.log("## Memory: peak RSS of a fresh process (load + score 512 tokens)\n");
const mb = (b: number): string => (b / 1e6).toFixed(0);
table(["model", "weights", "weight MB", "activations MB", "node runtime MB", "peak RSS MB", "(peak − runtime) / (1.15·W + A)"], mems.map((m) => [
    m.model, m.weightType, mb(m.weightBytes), mb(m.activationBytes), mb(m.runtimeBytes), mb(m.peakBytes), m.ratio.toFixed(2),
]));

mark("memory");

// 6. llama.cpp
if (argv["llama-cpp"]) {
    const llama = benchLlamaCpp(argv["llama-cpp"], quick ? ["mamba-130m"] : ["mamba-130m", "mamba-790m"], 512, threads);
    report["llamaCpp"] = llama;
    console.log("## llama.cpp side by side\n");
    if (llama.rows.length) table(["model", "prefill tok/s (p512)", "decode tok/s"], llama.rows.map((r) => [r.model, f1(r.prefillTokPerSec), f1(r.decodeTokPerSec)]));
    for (const n of llama.notes) console.log(`- ${n}`);
    console.log("");
}

mark("llama.cpp");
report["sectionSeconds"] = sectionSeconds;
console.log("section seconds: " + Object.entries(sectionSeconds).map(([k, v]) => `${k} ${f1(v)}`).join(", "));
report["loadAtEnd"] = os.loadavg();
report["seconds"] = (performance.now() - started) / 1000;
console.log(`done in ${f1((performance.now() - started) / 1000)} s; load average ${load()} (numbers swing with other load: rerun when it is low)`);
if (argv.json) writeFileSync(argv.json, JSON.stringify(report, null, 2));
