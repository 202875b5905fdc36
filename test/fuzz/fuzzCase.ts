/**
 * What the fuzz tests check about one case: either a clean error (an instance of the src/errors.ts classes
 * with a one-line message) or a result; how many cases to run (FUZZ_CASES, FUZZ_SEED); where a long run's
 * failures go (FUZZ_REPORT, JSON lines).
 */
import { appendFileSync } from "node:fs";
import { MambaEvalError } from "../../src/errors.js";

/** Cases per fuzz test: a few hundred in CI; FUZZ_CASES=50000 for a long run. */
export const FUZZ_CASES = parseCount(process.env.FUZZ_CASES, 300);
/** Base seed; case k uses seed + k, so a failing case replays with FUZZ_SEED=<seed+k> FUZZ_CASES=1. */
export const FUZZ_SEED = parseCount(process.env.FUZZ_SEED, 20_261_128);

function parseCount(text: string | undefined, fallback: number): number {
    if (text === undefined || text === "") return fallback;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`FUZZ_CASES / FUZZ_SEED: expected a non-negative integer, got ${text}`);
    return n;
}

/** A test timeout that grows with the number of cases (≈ 25 ms each, at least 2 minutes). */
export function fuzzTimeout(cases: number, perCaseMs = 25): number {
    return Math.max(120_000, cases * perCaseMs * 4);
}

/** Why an error is not a clean one, or undefined when it is. */
export function uncleanError(error: unknown): string | undefined {
    if (!(error instanceof MambaEvalError)) {
        const name = error instanceof Error ? error.constructor.name : typeof error;
        const message = error instanceof Error ? error.message : String(error);
        return `not a MambaEvalError: ${name}: ${message.split("\n")[0]}`;
    }
    const message = error.message;
    if (message.trim() === "") return `${error.name} with an empty message`;
    if (message.includes("\n")) return `${error.name} with a multi-line message: ${JSON.stringify(message.slice(0, 200))}`;
    if (/\bat .+:\d+:\d+\)?$/m.test(message)) return `${error.name} message carries a stack frame: ${message}`;
    return undefined;
}

/** A failure found by a fuzz run, with what is needed to replay it. */
export interface FuzzFailure {
    seed: number;
    target: string;
    mutation: string;
    problem: string;
}

/** Appends failures as JSON lines to the file named by FUZZ_REPORT (for triage of long runs); no-op without it. */
export function saveFailures(failures: readonly FuzzFailure[]): void {
    const file = process.env.FUZZ_REPORT;
    if (!file || failures.length === 0) return;
    appendFileSync(file, failures.map((f) => JSON.stringify(f)).join("\n") + "\n");
}

/** Formats failures for an assertion message (the first `max` of them). */
export function describeFailures(failures: readonly FuzzFailure[], max = 25): string {
    const lines = failures.slice(0, max).map((f) => `seed ${f.seed} ${f.target} [${f.mutation}]: ${f.problem}`);
    if (failures.length > max) lines.push(`… and ${failures.length - max} more`);
    return lines.join("\n");
}

/** Counts outcomes per label, for the summary line a run prints. */
export class OutcomeTally {
    private readonly counts = new Map<string, number>();
    add(label: string): void {
        this.counts.set(label, (this.counts.get(label) ?? 0) + 1);
    }
    get(label: string): number {
        return this.counts.get(label) ?? 0;
    }
    toString(): string {
        return [...this.counts.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([k, v]) => `${k} ${v}`).join(", ");
    }
}
