/**
 * Child process of the memory benchmark: loads one model, scores one sequence of T tokens (LM head on every
 * row), and prints {baselineKiB, peakKiB, weightBytes} from /proc/self/status (VmRSS before, VmHWM after).
 *   node --import tsx bench/memoryProbe.ts <spec.json> <T>
 */
import { readFileSync } from "node:fs";
import { NativeBackend } from "../src/backend/NativeBackend.js";
import type { NativeModelSpec } from "../src/addon/addonTypes.js";
import { fullScoreBatch, tokenStream } from "./modelBench.js";

function statusKiB(field: string): number {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
    if (!m) throw new Error(`/proc/self/status has no ${field}`);
    return Number(m[1]);
}

const [specFile, tArg] = process.argv.slice(2);
if (!specFile || !tArg) throw new Error("usage: memoryProbe.ts <spec.json> <T>");
const spec = JSON.parse(readFileSync(specFile, "utf8")) as NativeModelSpec;
const baselineKiB = statusKiB("VmRSS");
const model = await NativeBackend.fromSpec(spec);
await model.score(fullScoreBatch(tokenStream(Number(tArg), spec.vocab)));
const weightBytes = model.info().weightBytes;
await model[Symbol.asyncDispose]();
process.stdout.write(JSON.stringify({ baselineKiB, peakKiB: statusKiB("VmHWM"), weightBytes }) + "\n");
