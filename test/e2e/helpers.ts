/**
 * Shared pieces of the end-to-end tests: paths, the real GPT-NeoX-20B tokenizer, the two neox fixture models on
 * the native backend, and the CLI as a child process (the built dist/ when it is up to date, else the sources
 * through tsx, which is slower to start).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { NativeBackend } from "../../src/backend/NativeBackend.js";
import { MambaLM } from "../../src/lm/MambaLM.js";
import { loadCheckpoint } from "../../src/model/loadModel.js";
import { loadTokenizerFile, type TextTokenizer } from "../../src/model/tokenizer.js";
import { BUNDLED_TOKENIZER, taskDataDir } from "../testData.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The real task data (MAMBA_EVAL_DATA), for groups declared with describeWithData (test/testData.ts). */
export const sharedData = taskDataDir ?? "(MAMBA_EVAL_DATA not set)";
export const neoxTokenizerPath = BUNDLED_TOKENIZER;

let tokenizer: Promise<TextTokenizer> | undefined;

/** The GPT-NeoX-20B tokenizer the package ships (loaded once per test file). */
export function neoxTokenizer(): Promise<TextTokenizer> {
    tokenizer ??= loadTokenizerFile(neoxTokenizerPath);
    return tokenizer;
}

/** A MambaLM on fixtures/<name> (float32 compute, one thread); dispose the backend when done. */
export async function openFixtureLM(name: "neox-mamba1" | "neox-mamba2"): Promise<{ lm: MambaLM; backend: NativeBackend }> {
    const checkpoint = await loadCheckpoint(path.join(repoRoot, "fixtures", name));
    const backend = await NativeBackend.create(checkpoint, { device: "cpu", threads: 1, weightType: "f32" });
    return { lm: new MambaLM(backend, await neoxTokenizer()), backend };
}

function newestMtime(dir: string): number {
    let newest = 0;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, entry.name);
        newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
    }
    return newest;
}

/** Whether dist/ (npm run build) is at least as new as every source file. */
export function distIsFresh(): boolean {
    const dist = path.join(repoRoot, "dist", "cli", "main.js");
    const sources = newestMtime(path.join(repoRoot, "src"));
    return existsSync(dist) && statSync(dist).mtimeMs >= sources && newestMtime(path.join(repoRoot, "dist")) >= sources;
}

/** Builds dist/ when it is older than the sources (what `npm run build` does). */
export function ensureDist(): void {
    if (distIsFresh()) return;
    const r = spawnSync(process.execPath, [path.join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"], { cwd: repoRoot, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`npm run build failed: ${r.stdout}${r.stderr}`);
}

/** node arguments that start the CLI: bin/mamba-eval.js when dist/ is newer than every source file, else tsx. */
export function cliEntry(): string[] {
    if (distIsFresh()) return [path.join(repoRoot, "bin", "mamba-eval.js")];
    // tsx by file URL, so the child finds it from any working directory.
    const tsx = pathToFileURL(path.join(repoRoot, "node_modules", "tsx", "dist", "loader.mjs")).href;
    return ["--import", tsx, path.join(repoRoot, "test", "cli", "runCli.ts")];
}

export interface ChildResult {
    code: number | null;
    stdout: string;
    stderr: string;
}

/** Runs `mamba-eval args…` to completion in `cwd` (default: the repository root). */
export function runCliChild(args: string[], cwd: string = repoRoot): ChildResult {
    const r = spawnSync(process.execPath, [...cliEntry(), ...args], { cwd, encoding: "utf8", timeout: 120_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `mamba-eval args…` and resolves with its exit status and output. */
export function startCliChild(args: string[], cwd: string = repoRoot): { child: ChildProcess; done: Promise<ChildResult> } {
    const child = spawn(process.execPath, [...cliEntry(), ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    const done = new Promise<ChildResult>((resolve, reject) => {
        child.on("error", reject);
        child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
    return { child, done };
}
