/**
 * Creating folders one level at a time. Node's `mkdir(…, {recursive: true})` loops forever on some virtual file
 * systems (a path under /proc), so every folder mamba-eval creates goes through this, which fails with the errno.
 */
import { mkdirSync, rmdirSync, statSync } from "node:fs";
import path from "node:path";

/** Creates `dir` and any missing parents; throws the first filesystem error (with its `code`) unchanged. */
export function makeDirs(dir: string): void {
    const missing: string[] = [];
    let at = path.resolve(dir);
    for (;;) {
        try {
            const stat = statSync(at);
            if (!stat.isDirectory()) {
                throw Object.assign(new Error(`${at} is not a folder`), { code: "ENOTDIR" });
            }
            break;
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
            const parent = path.dirname(at);
            if (parent === at) throw e;
            missing.push(at);
            at = parent;
        }
    }
    for (const folder of missing.reverse()) {
        try {
            mkdirSync(folder);
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        }
    }
}

/** Whether `dir` exists as a folder. */
export function folderExists(dir: string): boolean {
    try {
        return statSync(dir).isDirectory();
    } catch {
        return false;
    }
}

/** Removes `dir` if it is an empty folder; anything else (files in it, already gone) is left as it is. */
export function removeIfEmpty(dir: string): void {
    try {
        rmdirSync(dir);
    } catch {
        // not empty, or not there: nothing to tidy
    }
}
