/**
 * The CLI as a user meets it, in a child process (bin/mamba-eval.js when dist/ is up to date, else the sources
 * through tsx: test/e2e/helpers.ts cliEntry), for the reliability tests: run to completion (with a timeout, so a hang fails the test instead of the run), or start and
 * drive it (signals at chosen moments), and the one-line error contract.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncOptions } from "node:child_process";
import path from "node:path";
import { expect } from "vitest";
import { cliEntry } from "../e2e/helpers.js";

export const REPO = path.resolve(import.meta.dirname, "../..");
/** node arguments that start the CLI (from any working directory). */
const ENTRY_ARGS = cliEntry();
/** Fixtures every clone has. */
export const TINY_MODEL = path.join(REPO, "fixtures/neox-mamba1");
export const SMALL_HF_MODEL = path.join(REPO, "fixtures/mamba1-hf");
export const SHARDED_MODEL = path.join(REPO, "fixtures/mamba2-hf-sharded");
export const TASK_DATA = path.join(REPO, "fixtures/tasks");
export const TOKENIZER = path.join(REPO, "fixtures/tokenizers/gpt-neox-20b.tokenizer.json.gz");

export interface CliRun {
    status: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
}

/** The environment of a child: offline, no colours, none of the caller's HF_* / MAMBA_EVAL_* settings. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("HF_") && !k.startsWith("MAMBA_EVAL_")) env[k] = v;
    return { ...env, HF_HUB_OFFLINE: "1", NO_COLOR: "1", ...extra };
}

/** Runs `mamba-eval args…` to completion (killed after `timeout` ms: a hang shows as a null status). */
export function cli(args: string[], options: SpawnSyncOptions & { env?: NodeJS.ProcessEnv } = {}): CliRun {
    const r = spawnSync(process.execPath, [...ENTRY_ARGS, ...args], {
        cwd: REPO,
        encoding: "utf8",
        timeout: 30_000,
        killSignal: "SIGKILL",
        ...options,
        env: options.env ?? cleanEnv(),
    });
    return { status: r.status, signal: r.signal, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
}

/** Starts `mamba-eval args…`; `exited` resolves with the run once the child is gone. */
export function startCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { child: ChildProcess; exited: Promise<CliRun>; stderrSoFar: () => string } {
    const child = spawn(process.execPath, [...ENTRY_ARGS, ...args], { cwd: options.cwd ?? REPO, env: options.env ?? cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += String(d)));
    child.stderr!.on("data", (d) => (stderr += String(d)));
    const exited = new Promise<CliRun>((resolve) => child.on("close", (status, signal) => resolve({ status, signal, stdout, stderr })));
    return { child, exited, stderrSoFar: () => stderr };
}

/** Resolves once `test()` holds (polled every 10 ms), or rejects after `timeoutMs`. */
export async function waitFor(test: () => boolean, timeoutMs = 20_000, what = "a condition"): Promise<void> {
    const start = Date.now();
    while (!test()) {
        if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
    }
}

/**
 * Asserts the one-line error contract: a non-zero exit status, exactly one stderr line starting with
 * "mamba-eval:" after any notes (the last line), matching `mentions`, no stack trace, no "internal error".
 */
export function expectOneLineError(r: CliRun, mentions: RegExp): string {
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("mamba-eval: using ") && !l.startsWith("note: "));
    const context = `exit ${r.status} (signal ${r.signal}), stderr:\n${r.stderr}`;
    expect(r.status, context).not.toBeNull();
    expect(r.status, context).not.toBe(0);
    const errorLines = lines.filter((l) => l.startsWith("mamba-eval:"));
    expect(errorLines, context).toHaveLength(1);
    expect(lines[lines.length - 1], context).toBe(errorLines[0]);
    expect(lines.filter((l) => /^\s+at /.test(l)), context).toEqual([]);
    expect(errorLines[0], context).not.toMatch(/internal error/);
    expect(errorLines[0], context).toMatch(mentions);
    return errorLines[0]!;
}
