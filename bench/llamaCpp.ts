/**
 * Side by side with llama.cpp (`npm run bench -- --llama-cpp /path/to/build`): runs its llama-bench on GGUF
 * conversions of the same random checkpoints when they exist in the bench cache folder
 * (<name>-f32.gguf), written by `bash bench/llamaCppConvert.sh LLAMA_CPP_SOURCE` (llama.cpp's own converter on
 * Debian's torch). When a file is missing, or llama-bench fails, the result is a note saying so instead of numbers.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { benchCacheDir } from "./randomCheckpoint.js";

export interface LlamaCppRow {
    model: string;
    prefillTokPerSec: number;
    decodeTokPerSec: number;
}

export interface LlamaCppResult {
    rows: LlamaCppRow[];
    notes: string[];
}

function findBinary(buildDir: string, name: string): string | undefined {
    return [path.join(buildDir, "bin", name), path.join(buildDir, name)].find((p) => existsSync(p));
}

function pythonHas(module: string): boolean {
    try {
        execFileSync("/usr/bin/python3", ["-c", `import ${module}`], { stdio: "ignore" });
        return true;
    } catch {
        return false;
    }
}

/** The llama-bench binary of a build folder, or a note saying it is missing. */
export function llamaBench(buildDir: string): { bench?: string; note?: string } {
    const bench = findBinary(buildDir, "llama-bench");
    return bench ? { bench } : { note: `--llama-cpp ${buildDir}: no llama-bench in it (looked in bin/ and the folder itself)` };
}

/** llama-bench prompt (T tokens) and generation speed for each model whose GGUF is in the cache. */
export function benchLlamaCpp(buildDir: string, models: readonly string[], promptTokens: number, threads: number): LlamaCppResult {
    const { bench, note } = llamaBench(buildDir);
    if (!bench) return { rows: [], notes: [note!] };
    const notes: string[] = [];
    const rows: LlamaCppRow[] = [];
    for (const model of models) {
        const gguf = path.join(benchCacheDir(), `${model}-f32.gguf`);
        if (!existsSync(gguf)) {
            notes.push(
                `${model}: no ${gguf}; write it with \`bash bench/llamaCppConvert.sh LLAMA_CPP_SOURCE ${model}\`` +
                    (pythonHas("torch") ? "" : " (needs python3-torch, which /usr/bin/python3 cannot import here)"),
            );
            continue;
        }
        let out: string;
        try {
            out = execFileSync(bench, ["-m", gguf, "-p", String(promptTokens), "-n", "32", "-t", String(threads), "-o", "json"], {
                encoding: "utf8", stdio: ["ignore", "pipe", "pipe"],
            });
        } catch (e) {
            const err = e as { stderr?: string; message?: string };
            const lines = (err.stderr || err.message || "").trim().split("\n");
            notes.push(`${model}: llama-bench failed (${lines[lines.length - 1]})`);
            continue;
        }
        const runs = JSON.parse(out) as { n_prompt: number; n_gen: number; avg_ts: number }[];
        rows.push({
            model,
            prefillTokPerSec: runs.find((r) => r.n_prompt > 0)?.avg_ts ?? NaN,
            decodeTokPerSec: runs.find((r) => r.n_gen > 0)?.avg_ts ?? NaN,
        });
    }
    return { rows, notes };
}
