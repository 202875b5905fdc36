/**
 * A/B prefill of addon builds: `node --import tsx bench/prefillAB.ts [--tokens T] [--rounds R] A.node B.node ...`.
 *
 * Copy each build of native/build/Release/mamba_eval.node aside (e.g. /tmp/A.node before a change, /tmp/B.node
 * after), then run this while `uptime` shows a load below ~1.5. The builds run in turn, round after round, so a
 * load swing hits all of them alike. Each round: a fresh model on the random mamba-130m f32 checkpoint
 * (2 threads), one warm-up, then the median of 3 score() calls of one T-token sequence with the LM head on every
 * row. Prints per build the tok/s of every round, their median, and a hash of the log-probabilities, which must
 * be the same for all builds (a speed change must not move a bit).
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import type { NativeAddon } from "../src/addon/addonTypes.js";
import { checkedBuilds } from "./abArgs.js";
import { fullScoreBatch, median, tokenStream } from "./modelBench.js";
import { benchSpec, MAMBA_130M, randomCheckpoint } from "./randomCheckpoint.js";

const argv = yargs(hideBin(process.argv))
    .scriptName("bench/prefillAB.ts")
    .usage("$0 [--tokens T] [--rounds R] BUILD.node BUILD.node ...")
    .option("tokens", { type: "number", default: 512, describe: "sequence length T" })
    .option("rounds", { type: "number", default: 3, describe: "alternations of all builds" })
    .option("threads", { type: "number", default: 2, describe: "CPU threads of the backend" })
    .strictOptions()
    .parseSync();
const builds = checkedBuilds("bench/prefillAB.ts", argv._, { "--tokens": argv.tokens, "--rounds": argv.rounds, "--threads": argv.threads });

const require = createRequire(import.meta.url);
const tensors = randomCheckpoint(MAMBA_130M);
const batch = fullScoreBatch(tokenStream(argv.tokens, MAMBA_130M.vocab));
const warmUp = fullScoreBatch(tokenStream(Math.min(64, argv.tokens), MAMBA_130M.vocab));
const speeds = new Map<string, number[]>(builds.map((b) => [b, []]));
const hashes = new Map<string, string>();

for (let round = 0; round < argv.rounds; round++)
    for (const build of builds) {
        const addon = require(path.resolve(build)) as NativeAddon;
        const model = await addon.createModel(benchSpec(MAMBA_130M, tensors, argv.threads, "f32"));
        try {
            await model.score(warmUp);
            const seconds: number[] = [];
            let logprobs: Float64Array | undefined;
            for (let r = 0; r < 3; r++) {
                const t0 = performance.now();
                logprobs = (await model.score(batch)).logprobs;
                seconds.push((performance.now() - t0) / 1000);
            }
            hashes.set(build, createHash("sha256").update(new Uint8Array(logprobs!.buffer)).digest("hex").slice(0, 16));
            speeds.get(build)!.push(argv.tokens / median(seconds));
        } finally {
            model.dispose();
        }
    }

for (const build of builds) {
    const s = speeds.get(build)!;
    console.log(`${build}: tok/s ${s.map((x) => x.toFixed(0)).join(" ")}, median ${median(s).toFixed(0)}; log-prob hash ${hashes.get(build)}`);
}
if (new Set(hashes.values()).size > 1) {
    console.error("log-probabilities differ between builds");
    process.exitCode = 1;
}
