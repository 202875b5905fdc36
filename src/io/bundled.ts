/**
 * Files that ship with the package and make the bare `mamba-eval` run work offline: a tiny checkpoint with the
 * real GPT-NeoX-20B vocabulary, that tokenizer (gzip-compressed), and invented sample documents of every task in
 * the tasks' original file layout. Paths are absolute, resolved from this module (src/cli or dist/cli).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The package's root folder (where package.json is). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The default checkpoint: fixtures/neox-mamba1 (random weights, GPT-NeoX-20B vocabulary). */
export const BUNDLED_MODEL_DIR = path.join(PACKAGE_ROOT, "fixtures", "neox-mamba1");
/** The GPT-NeoX-20B tokenizer.json, gzip-compressed. */
export const BUNDLED_TOKENIZER = path.join(PACKAGE_ROOT, "fixtures", "tokenizers", "gpt-neox-20b.tokenizer.json.gz");
/** Sample documents of every task, in the --data_dir layout. */
export const BUNDLED_TASKS_DIR = path.join(PACKAGE_ROOT, "fixtures", "tasks");
/** The Mamba paper's Table-3 zero-shot tasks, in the paper's column order. */
export const TABLE3_TASKS = ["lambada_openai", "hellaswag", "piqa", "arc_easy", "arc_challenge", "winogrande"] as const;
/** The Mamba-2 paper's zero-shot tasks (its Tables 3 and 10): the six and OpenBookQA, in its column order. */
export const MAMBA2_TASKS = [...TABLE3_TASKS, "openbookqa"] as const;

/** `p` relative to the working directory when it lies below it (shorter to print), else absolute. */
export function displayPath(p: string, cwd: string = process.cwd()): string {
    const rel = path.relative(cwd, p);
    return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : path.resolve(p);
}

/**
 * Whether `dir` is one of the checkpoints the package ships (a folder under fixtures/): they have the GPT-NeoX-20B
 * vocabulary and random weights, and are run offline with the bundled tokenizer and sample documents.
 */
export function isBundledCheckpoint(dir: string): boolean {
    const rel = path.relative(path.join(PACKAGE_ROOT, "fixtures"), path.resolve(dir));
    return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) && existsSync(path.join(dir, "config.json"));
}
