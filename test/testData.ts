/**
 * What the tests read besides the repository: the full task data, only when a data folder is given.
 *
 * MAMBA_EVAL_DATA names a folder in the layout of the project's task data (arc/, hellaswag/, lambada_openai/,
 * openbookqa/, piqa/, winogrande/, paper_tables.md); CI passes it. Without it the groups that need it are skipped,
 * each saying so in one line. Everything else uses what the repository ships (fixtures/, the bundled tokenizer).
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe } from "vitest";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The GPT-NeoX-20B tokenizer.json the package ships (gzip-compressed). */
export const BUNDLED_TOKENIZER = path.join(repoRoot, "fixtures", "tokenizers", "gpt-neox-20b.tokenizer.json.gz");

function dataDirFromEnvironment(): string | undefined {
    const value = process.env.MAMBA_EVAL_DATA;
    if (value === undefined || value === "") return undefined;
    const dir = path.resolve(value);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`MAMBA_EVAL_DATA=${value}: no such folder`);
    return dir;
}

/** The task data folder, or undefined when MAMBA_EVAL_DATA is not set. */
export const taskDataDir: string | undefined = dataDirFromEnvironment();

/** The task data folder; only call it inside a group declared with describeWithData. */
export function requireTaskData(): string {
    if (taskDataDir === undefined) throw new Error("this test needs MAMBA_EVAL_DATA (see test/testData.ts)");
    return taskDataDir;
}

const announced = new Set<string>();

/** A describe block that runs only with the task data; without it, one line says what to provide. */
export function describeWithData(name: string, body: () => void): void {
    if (taskDataDir === undefined && !announced.has(name)) {
        announced.add(name);
        console.log(`skipped "${name}": needs the full task data; set MAMBA_EVAL_DATA to its folder (layout of fixtures/tasks)`);
    }
    describe.skipIf(taskDataDir === undefined)(name, body);
}
