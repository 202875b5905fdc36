import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cliEntry } from "../e2e/helpers.js";
import { BUNDLED_TOKENIZER, taskDataDir } from "../testData.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The real task data (MAMBA_EVAL_DATA), for groups declared with describeWithData (test/testData.ts). */
export const sharedData = taskDataDir ?? "(MAMBA_EVAL_DATA not set)";
export const neoxTokenizer = BUNDLED_TOKENIZER;
export const tinyNeoxModel = path.join(repoRoot, "fixtures/neox-mamba1");

export interface CliResult {
    code: number | null;
    stdout: string;
    stderr: string;
}

/** Runs `mamba-eval args…` to completion (the built dist/ when up to date, else the sources through tsx). */
export function runCli(args: string[], env: Record<string, string> = {}): CliResult {
    const r = spawnSync(process.execPath, [...cliEntry(), ...args], { cwd: repoRoot, encoding: "utf8", timeout: 120_000, env: { ...process.env, ...env } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `mamba-eval args…` and returns the child. */
export function startCli(args: string[]) {
    return spawn(process.execPath, [...cliEntry(), ...args], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
}
