/**
 * Side by side with llama.cpp (`npm run bench -- --llama-cpp /path/to/build`): runs its llama-bench on GGUF
 * conversions of the same random checkpoints when they exist in the bench cache folder
 * (<name>-f32.gguf), written by `bash bench/llamaCppConvert.sh LLAMA_CPP_SOURCE` (llama.cpp's own converter on
 * Debian's torch). When a file is missing the section says so instead of guessing numbers.
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

/** llama-bench prompt (T tokens) and generation speed for each model whose GGUF is in the cache. */
export function benchLlamaCpp(buildDir: string, models: readonly string[], promptTokens: number, threads: number): LlamaCppResult {
    const notes: string[] = [];
    const bench = findBinary(buildDir, "llama-bench");
    if (!bench) return { rows: [], notes: [`--llama-cpp ${buildDir}: no llama-bench in it (looked in bin/ and the folder itself)`] };
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
        const out = execFileSync(bench, ["-m", gguf, "-p", String(promptTokens), "-n", "32", "-t", String(threads), "-o", "json"], { encoding: "utf8" });
        const runs = JSON.parse(out) as { n_prompt: number; n_gen: number; avg_ts: number }[];
        rows.push({
            model,
            prefillTokPerSec: runs.find((r) => r.n_prompt > 0)?.avg_ts ?? NaN,
            decodeTokPerSec: runs.find((r) => r.n_gen > 0)?.avg_ts ?? NaN,
        });
    }
    return { rows, notes };
}
