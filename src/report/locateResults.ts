/**
 * Finds results files. A path is either a results JSON file or a folder that holds them: lm-eval
 * writes `<output_path>/<model_name_sanitized>/results_<datetime>.json` (v0.4.3+, ours) or
 * `<output_path>/results.json` (v0.4.2). In a folder the newest results file is taken (by the datetime
 * in its name, else by modification time); a folder without any looks one level down.
 */
import { readdirSync, statSync, type Stats } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../errors.js";
import { describeFileKind } from "../io/safeFile.js";

const RESULTS_NAME = /^results(_.+)?\.json$/;

/** The one results file a compare argument stands for. */
export function resolveResultsFile(path: string, flag: string): string {
    const stats = statOrThrow(path, flag);
    if (stats.isFile()) return path;
    const here = newestResultsIn(path);
    if (here !== undefined) return here;
    const below = subfolders(path)
        .map((dir) => newestResultsIn(dir))
        .filter((file): file is string => file !== undefined);
    if (below.length === 1) return below[0]!;
    if (below.length === 0) throw new UsageError(`${flag} ${path}: no results_*.json or results.json in this folder or its subfolders`);
    throw new UsageError(`${flag} ${path}: results for several models (${below.join(", ")}); name one file or model folder`);
}

/**
 * Every results file a table argument stands for: a file itself, or for a folder its own newest
 * results file and the newest one in each subfolder (one per model).
 */
export function resolveResultsFiles(path: string, flag: string): string[] {
    const stats = statOrThrow(path, flag);
    if (stats.isFile()) return [path];
    const found: string[] = [];
    const here = newestResultsIn(path);
    if (here !== undefined) found.push(here);
    for (const dir of subfolders(path)) {
        const file = newestResultsIn(dir);
        if (file !== undefined) found.push(file);
    }
    if (found.length === 0) throw new UsageError(`${flag} ${path}: no results_*.json or results.json in this folder or its subfolders`);
    return found;
}

/** The newest results file directly inside a folder, or undefined. */
export function newestResultsIn(dir: string): string | undefined {
    let best: { file: string; key: string } | undefined;
    for (const name of readdirSync(dir).sort()) {
        if (!RESULTS_NAME.test(name)) continue;
        const file = join(dir, name);
        const stats = statSync(file);
        if (!stats.isFile()) continue;
        const key = /^results_(.+)\.json$/.exec(name)?.[1] ?? stats.mtime.toISOString().replace(/:/g, "-");
        if (best === undefined || key > best.key) best = { file, key };
    }
    return best?.file;
}

function subfolders(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => join(dir, entry.name))
        .sort();
}

function statOrThrow(path: string, flag: string): Stats {
    let stats: Stats;
    try {
        stats = statSync(path);
    } catch {
        throw new UsageError(`${flag} ${path}: no such file or folder`);
    }
    if (!stats.isFile() && !stats.isDirectory()) throw new UsageError(`${flag} ${path}: is ${describeFileKind(stats)}; expected a results file or a folder`);
    return stats;
}
