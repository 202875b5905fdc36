/**
 * A/B decode of addon builds: `node --import tsx bench/decodeAB.ts [--model 130m|790m] [--weights f32|bf16]
 * [--steps S] [--rounds R] A.node B.node ...`.
 *
 * Copy each build of native/build/Release/mamba_eval.node aside (e.g. /tmp/A.node before a change, /tmp/B.node
 * after), then run this while `uptime` shows a load below ~1.5. The builds run in turn, round after round, so a
 * load swing hits all of them alike. Each round: a fresh model on the random checkpoint (2 threads), two warm-up
 * steps, then `steps` step() calls of one sequence; the figure is the median step's tok/s, also as a share of
 * the bandwidth bound (weight bytes per token over the read bandwidth bench_limits measures at the start).
 * Prints per build the tok/s of every round, their median, and a hash of all logits, which must be the same for
 * all builds (a speed change must not move a bit).
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import type { NativeAddon } from "../src/addon/addonTypes.js";
import { checkedBuilds } from "./abArgs.js";
import { measureLimits } from "./limits.js";
import { median, tokenStream } from "./modelBench.js";
import { benchSpec, MAMBA_130M, MAMBA_790M, randomCheckpoint } from "./randomCheckpoint.js";

const argv = yargs(hideBin(process.argv))
    .scriptName("bench/decodeAB.ts")
    .usage("$0 [--model 130m|790m] [--weights f32|bf16] [--steps S] [--rounds R] BUILD.node BUILD.node ...")
    .option("model", { choices: ["130m", "790m"] as const, default: "130m" as const, describe: "Mamba-1 shape" })
    .option("weights", { choices: ["f32", "bf16"] as const, default: "f32" as const, describe: "compute weight type" })
    .option("steps", { type: "number", default: 24, describe: "timed step() calls per round" })
    .option("rounds", { type: "number", default: 3, describe: "alternations of all builds" })
    .option("threads", { type: "number", default: 2, describe: "CPU threads of the backend" })
    .strictOptions()
    .parseSync();
const builds = checkedBuilds("bench/decodeAB.ts", argv._, { "--steps": argv.steps, "--rounds": argv.rounds, "--threads": argv.threads });

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const shape = argv.model === "790m" ? MAMBA_790M : MAMBA_130M;
const require = createRequire(import.meta.url);
const tensors = randomCheckpoint(shape);
const toks = tokenStream(argv.steps + 2, shape.vocab, 13);
const speeds = new Map<string, number[]>(builds.map((b) => [b, []]));
const hashes = new Map<string, string>();
let weightBytes = 0;
const bandwidths: number[] = [];

for (let round = 0; round < argv.rounds; round++) {
    const limits = measureLimits(repoRoot, argv.threads, 256);
    bandwidths.push(Math.max(...Object.values(limits.bandwidth)));
    for (const build of builds) {
        const addon = require(path.resolve(build)) as NativeAddon;
        const model = await addon.createModel(benchSpec(shape, tensors, argv.threads, argv.weights));
        try {
            weightBytes = model.info().weightBytes;
            const slots = Int32Array.from([0]);
            const hash = createHash("sha256");
            for (let s = 0; s < 2; s++) hash.update(new Uint8Array((await model.step(slots, Int32Array.from([toks[s]!]))).buffer));
            const seconds: number[] = [];
            for (let s = 2; s < toks.length; s++) {
                const t0 = performance.now();
                const logits = await model.step(slots, Int32Array.from([toks[s]!]));
                seconds.push((performance.now() - t0) / 1000);
                hash.update(new Uint8Array(logits.buffer));
            }
            hashes.set(build, hash.digest("hex").slice(0, 16));
            speeds.get(build)!.push(1 / median(seconds));
        } finally {
            model.dispose();
        }
    }
}

const bw = median(bandwidths);
const bound = (bw * 1e9) / weightBytes;
console.log(`mamba-${argv.model} ${argv.weights}: ${(weightBytes / 1e6).toFixed(0)} MB/token; bandwidth ${bandwidths.map((b) => b.toFixed(1)).join(" ")} GB/s (median ${bw.toFixed(1)}), bound ${bound.toFixed(1)} tok/s`);
for (const build of builds) {
    const s = speeds.get(build)!;
    const m = median(s);
    console.log(`${build}: tok/s ${s.map((x) => x.toFixed(1)).join(" ")}, median ${m.toFixed(1)} (${((100 * m) / bound).toFixed(0)}% of bound, ${((m * weightBytes) / 1e9).toFixed(1)} GB/s); logits hash ${hashes.get(build)}`);
}
if (new Set(hashes.values()).size > 1) {
    console.error("logits differ between builds");
    process.exitCode = 1;
}
