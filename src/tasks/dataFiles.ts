/**
 * Which files of a dataset repo make a split, by the rules of HF `datasets` (data_files.py, load.py):
 *  1. the card's `configs:` (README.md front matter): the config named by the task (else the one marked
 *     `default: true`, else the one named "default", else the only one); its `data_files` give glob patterns per
 *     split (a string or list means split "train"), relative to its `data_dir` when set; a config without
 *     data_files is inferred as in 2 inside its data_dir;
 *  2. otherwise inferred from the file names, first rule that matches any split wins:
 *     `data/{split}-NNNNN-of-NNNNN*.*` (sharded), then a `{split}/` folder anywhere (`**\/test/**`, also
 *     `test_x/`, `x-test/`), then the split as a word in the file name (`**\/test[-._ 0-9]*`,
 *     `**\/*[-._ 0-9]test[-._ 0-9]*`), where a split is also known by its other keywords (validation: valid, dev,
 *     val; test: testing, eval, evaluation; train: training).
 * Globs follow fsspec: `*` and `?` stay within a path segment, `**` as a whole segment spans any number of them,
 * `[...]` is a character class; hidden files and folders (".x") and `__x` folders match only when the pattern
 * names them; README.md and the other card files never match. Each pattern's matches are sorted, patterns are
 * concatenated in order, duplicates dropped.
 *
 * API: `cardConfigs`, `selectConfig`, `inferSplitPatterns`, `resolvePatterns`, `dataFormat`.
 */
import { TaskError } from "../errors.js";
import type { YamlValue } from "./cardYaml.js";

/** A config of the card: its name and how its files are found. */
export interface CardConfig {
    name: string;
    isDefault: boolean;
    /** Patterns per split, when the card gives data_files. */
    dataFiles?: Record<string, string[]>;
    /** The folder the patterns are relative to. */
    dataDir?: string;
}

const asStrings = (value: YamlValue, what: string): string[] => {
    const list = Array.isArray(value) ? value : [value];
    if (!list.every((p): p is string => typeof p === "string" && p !== "")) throw new TaskError(`${what}: expected a path pattern or a list of them`);
    return list;
};

/** data_files in any of datasets' forms → patterns per split. */
function splitPatterns(value: YamlValue, what: string): Record<string, string[]> {
    if (typeof value === "string") return { train: [value] };
    if (Array.isArray(value)) {
        if (!value.some((v) => typeof v === "object" && v !== null && !Array.isArray(v))) return { train: asStrings(value, what) };
        const out: Record<string, string[]> = {};
        for (const entry of value) {
            if (typeof entry !== "object" || entry === null || Array.isArray(entry) || typeof entry.split !== "string" || entry.path === undefined) {
                throw new TaskError(`${what}: each entry must be {split, path}`);
            }
            if (entry.split in out) throw new TaskError(`${what}: split ${JSON.stringify(entry.split)} is listed twice`);
            out[entry.split] = asStrings(entry.path, `${what} split ${entry.split}`);
        }
        return out;
    }
    if (typeof value === "object" && value !== null) {
        return Object.fromEntries(Object.entries(value).map(([split, paths]) => [split, asStrings(paths, `${what} split ${split}`)]));
    }
    throw new TaskError(`${what}: expected a pattern, a list, or {split, path} entries`);
}

/** The card's configs (the parsed `configs:` value) in a checked form. */
export function cardConfigs(value: YamlValue, where: string): CardConfig[] {
    if (!Array.isArray(value)) throw new TaskError(`${where}: README.md configs must be a list`);
    return value.map((entry, i) => {
        const what = `${where}: README.md configs[${i}]`;
        if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new TaskError(`${what}: expected a mapping`);
        const name = entry.config_name ?? "default";
        if (typeof name !== "string") throw new TaskError(`${what}: config_name must be a string`);
        const config: CardConfig = { name, isDefault: entry.default === true };
        if (entry.data_files !== undefined && entry.data_files !== null) config.dataFiles = splitPatterns(entry.data_files, `${what} data_files`);
        if (typeof entry.data_dir === "string") config.dataDir = entry.data_dir.replace(/^\.?\/+|\/+$/g, "");
        return config;
    });
}

/** The config a task asks for (`name`, or the card's default when null), as `datasets` picks it. */
export function selectConfig(configs: readonly CardConfig[], name: string | null, where: string): CardConfig {
    const names = configs.map((c) => c.name).join(", ");
    if (name !== null) {
        const found = configs.find((c) => c.name === name);
        if (!found) throw new TaskError(`${where}: the dataset card has no config ${JSON.stringify(name)} (it has: ${names})`);
        return found;
    }
    const chosen = configs.find((c) => c.isDefault) ?? configs.find((c) => c.name === "default") ?? (configs.length === 1 ? configs[0] : undefined);
    if (!chosen) throw new TaskError(`${where}: the dataset card has several configs and none is the default (${names}); the task must name one`);
    return chosen;
}

/** Files `datasets` never takes as data. */
const CARD_FILES = new Set(["README.md", "config.json", "dataset_info.json", "dataset_infos.json", "dummy_data.zip", "dataset_dict.json"]);

function globToRegExp(pattern: string): RegExp {
    const segments = pattern.split("/");
    let source = "";
    segments.forEach((segment, i) => {
        const last = i === segments.length - 1;
        if (segment === "**") {
            source += last ? ".*" : "(?:[^/]*/)*";
            return;
        }
        let part = "";
        for (let j = 0; j < segment.length; j++) {
            const c = segment[j]!;
            if (c === "*") {
                part += "[^/]*";
                if (segment[j + 1] === "*") j++;
            } else if (c === "?") {
                part += "[^/]";
            } else if (c === "[") {
                const close = segment.indexOf("]", j + 2);
                if (close < 0) {
                    part += "\\[";
                    continue;
                }
                let body = segment.slice(j + 1, close);
                const negate = body.startsWith("!");
                if (negate) body = body.slice(1);
                part += `[${negate ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
                j = close;
            } else {
                part += c.replace(/[.+^${}()|\\]/g, "\\$&");
            }
        }
        source += part + (last ? "" : "/");
    });
    return new RegExp(`^${source}$`);
}

/** Hidden parts (".x") or "__x" folders of `file` that the pattern does not name explicitly. */
function isUnrequested(file: string, pattern: string): boolean {
    const hidden = (parts: string[]): number => parts.filter((p) => p.startsWith(".") && !/^\.+$/.test(p)).length;
    const special = (parts: string[]): number => parts.slice(0, -1).filter((p) => p.startsWith("__")).length;
    const fileParts = file.split("/");
    const patternParts = pattern.split("/");
    return hidden(fileParts) !== hidden(patternParts) || special(fileParts) !== special(patternParts);
}

/** The repo files one pattern matches, sorted. */
export function matchPattern(pattern: string, files: readonly string[]): string[] {
    const clean = pattern.replace(/^\.?\/+/, "");
    const regexp = globToRegExp(clean);
    const base = (f: string): string => f.slice(f.lastIndexOf("/") + 1);
    return files.filter((f) => regexp.test(f) && !(CARD_FILES.has(base(f)) && base(f) !== base(clean)) && !isUnrequested(f, clean)).sort();
}

/** The files of a split's patterns, in pattern order without duplicates. */
export function resolvePatterns(patterns: readonly string[], files: readonly string[]): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const pattern of patterns) {
        for (const file of matchPattern(pattern, files)) {
            if (!seen.has(file)) {
                seen.add(file);
                out.push(file);
            }
        }
    }
    return out;
}

const SPLIT_KEYWORDS: Record<string, string[]> = {
    train: ["train", "training"],
    validation: ["validation", "valid", "dev", "val"],
    test: ["test", "testing", "eval", "evaluation"],
};
const SEP = "[-._ 0-9]";
const IN_FOLDER = ["**/{k}/**", `**/{k}${SEP}*/**`, `**/*${SEP}{k}/**`, `**/*${SEP}{k}${SEP}*/**`];
const IN_NAME = [`**/{k}${SEP}*`, `**/*${SEP}{k}${SEP}*`];
const SHARDED = "data/{split}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]*.*";

/** Patterns per split inferred from the file names (rule 2 of the module comment), or undefined when none match. */
export function inferSplitPatterns(files: readonly string[]): Record<string, string[]> | undefined {
    const sharded = matchPattern(SHARDED.replace("{split}", "*"), files);
    if (sharded.length > 0) {
        const splits = new Set(sharded.map((f) => /^data\/(.+)-\d{5}-of-\d{5}/.exec(f)![1]!));
        return Object.fromEntries([...splits].map((split) => [split, [SHARDED.replace("{split}", split)]]));
    }
    for (const templates of [IN_FOLDER, IN_NAME]) {
        const bySplit: Record<string, string[]> = {};
        for (const [split, keywords] of Object.entries(SPLIT_KEYWORDS)) {
            const patterns = keywords.flatMap((k) => templates.map((t) => t.replaceAll("{k}", k)));
            if (patterns.some((p) => matchPattern(p, files).length > 0)) bySplit[split] = patterns;
        }
        if (Object.keys(bySplit).length > 0) return bySplit;
    }
    return undefined;
}

const FORMATS: Array<[RegExp, string]> = [
    [/\.parquet$/, "parquet"], [/\.arrow$/, "arrow"], [/\.(jsonl|json|ndjson)(\.(gz|bz2|xz|zst))?$/, "json"],
    [/\.(csv|tsv)(\.(gz|bz2|xz|zst))?$/, "csv"], [/\.txt(\.(gz|bz2|xz|zst))?$/, "text"],
];

/** The data format of a file name (undefined for files `datasets` would not read as data here). */
export function dataFormat(file: string): string | undefined {
    return FORMATS.find(([pattern]) => pattern.test(file))?.[1];
}
