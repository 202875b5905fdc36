/**
 * Default data source: the Hugging Face datasets lm-eval loads, as parquet files in the standard HF cache
 * (downloaded through src/hub/hub.ts, which honours HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_CACHE/HF_HOME, HF_TOKEN and
 * falls back on the cache when the hub cannot be reached), read with hyparquet.
 *
 * Which files make a split: those HF `datasets` would load (dataFiles.ts) at `main`: the dataset card's
 * `configs:` data_files for the task's config, else the split inferred from the file layout (a `{split}/` folder,
 * `data/{split}-NNNNN-of-NNNNN.*`, or the split as a word in the file name; without a card, a named config is
 * looked for under `<config>/`). When those are not parquet files (a repo of jsonl files and a loading script),
 * or there are none, the hub's own parquet conversion is read instead: revision `refs/convert/parquet`,
 * `<config or "default">/<split>/*.parquet`. Files are read in that order and their rows concatenated.
 * EleutherAI/lambada_openai (converted to parquet on the hub in 2025) holds `default/test/*.parquet` at main beside
 * the original jsonl files; its card's configs name those parquet files for config `default`.
 *
 * API: `resolveSplitFiles(spec, lister, readText?)`, `loadHubRows(spec)` → rows in the HF schema (int64 → number).
 */
import { parquetMetadataAsync, parquetReadObjects, asyncBufferFromFile } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { readFile } from "node:fs/promises";
import { DataFormatError, TaskError } from "../errors.js";
import { hubDownloadFile, hubListFiles, type HubOptions } from "../hub/hub.js";
import { cardConfigsYaml } from "./cardYaml.js";
import { cardConfigs, dataFormat, inferSplitPatterns, resolvePatterns, selectConfig } from "./dataFiles.js";
import type { DatasetSpec, Doc, DocValue } from "./types.js";

/** The revision holding the hub's automatic parquet conversion. */
export const PARQUET_CONVERSION_REVISION = "refs/convert/parquet";

/** The files of one split, and the revision they are read at. */
export interface SplitFiles {
    revision: string;
    files: string[];
}

/** Lists a dataset repo's files at a revision (hub.ts's hubListFiles, or a stub over a fixed listing). */
export type DatasetLister = (repo: string, revision: string) => Promise<string[]>;
/** Reads a text file of a dataset repo at a revision (the card, README.md). */
export type DatasetReader = (repo: string, revision: string, file: string) => Promise<string>;

const describe = (spec: DatasetSpec): string => `dataset ${spec.path}${spec.name ? ` (config ${spec.name})` : ""}`;

/** The split's patterns at main by the card or the layout, or undefined when neither names the split. */
async function mainPatterns(spec: DatasetSpec, files: readonly string[], readText: DatasetReader | undefined): Promise<{ patterns: string[]; pool: readonly string[] } | undefined> {
    const where = describe(spec);
    const yaml = readText && files.includes("README.md") ? cardConfigsYaml(await readText(spec.path, "main", "README.md"), where) : undefined;
    if (yaml !== undefined && yaml !== null) {
        const config = selectConfig(cardConfigs(yaml, where), spec.name, where);
        const inDir = config.dataDir ? files.filter((f) => f.startsWith(`${config.dataDir}/`)).map((f) => f.slice(config.dataDir!.length + 1)) : files;
        const bySplit = config.dataFiles ?? inferSplitPatterns(inDir);
        const patterns = bySplit?.[spec.evalSplit];
        if (patterns === undefined) {
            throw new TaskError(`${where}: config ${config.name} has no split "${spec.evalSplit}" (it has: ${Object.keys(bySplit ?? {}).join(", ") || "none"})`);
        }
        const prefix = config.dataDir ? `${config.dataDir}/` : "";
        return { patterns: patterns.map((p) => prefix + p.replace(/^\.?\/+/, "")), pool: files };
    }
    const pool = spec.name !== null ? files.filter((f) => f.startsWith(`${spec.name}/`)) : files;
    const patterns = inferSplitPatterns(pool)?.[spec.evalSplit];
    return patterns ? { patterns, pool } : undefined;
}

/** Picks the parquet files of `spec.evalSplit` (rules in the file comment). */
export async function resolveSplitFiles(spec: DatasetSpec, list: DatasetLister, readText?: DatasetReader): Promise<SplitFiles> {
    const mainFiles = await list(spec.path, "main");
    const found = await mainPatterns(spec, mainFiles, readText);
    if (found) {
        const data = resolvePatterns(found.patterns, found.pool).filter((f) => dataFormat(f) !== undefined);
        // As datasets does, the most common format among the split's files is the one read.
        const counts = new Map<string, number>();
        for (const f of data) counts.set(dataFormat(f)!, (counts.get(dataFormat(f)!) ?? 0) + 1);
        const top = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
        if (top === "parquet") return { revision: "main", files: data.filter((f) => dataFormat(f) === "parquet") };
    }
    const prefix = `${spec.name ?? "default"}/${spec.evalSplit}/`;
    const converted = (await list(spec.path, PARQUET_CONVERSION_REVISION))
        .filter((f) => f.startsWith(prefix) && f.endsWith(".parquet") && !f.slice(prefix.length).includes("/"))
        .sort();
    if (converted.length > 0) return { revision: PARQUET_CONVERSION_REVISION, files: converted };
    throw new TaskError(`${describe(spec)}: no parquet files for split "${spec.evalSplit}" at main or ${PARQUET_CONVERSION_REVISION}`);
}

/** Downloads (or finds in the cache) the split's parquet files and returns their rows in the HF schema. */
export async function loadHubRows(spec: DatasetSpec, options: HubOptions = {}): Promise<Doc[]> {
    const hubOptions = (revision: string, offline: boolean): HubOptions => ({ ...options, repoType: "dataset", revision, ...(offline ? { offline } : {}) });
    // Each listed revision is pinned to the commit it resolved to, so the card and the files come from one commit;
    // a listing answered from the cache (hub unreachable) makes the reads cache-only too.
    const pinned = new Map<string, { commit: string; fromCache: boolean }>();
    const lister: DatasetLister = async (repo, revision) => {
        const listing = await hubListFiles(repo, hubOptions(revision, false));
        pinned.set(revision, { commit: listing.commit, fromCache: listing.fromCache });
        return listing.files;
    };
    const pinnedOptions = (revision: string): HubOptions => {
        const pin = pinned.get(revision);
        return hubOptions(pin?.commit ?? revision, pin?.fromCache ?? false);
    };
    const readText: DatasetReader = async (repo, revision, file) => readFile(await hubDownloadFile(repo, file, pinnedOptions(revision)), "utf8");
    const { revision, files } = await resolveSplitFiles(spec, lister, readText);
    const rows: Doc[] = [];
    for (const file of files) {
        const local = await hubDownloadFile(spec.path, file, pinnedOptions(revision));
        rows.push(...(await readParquetRows(local)));
    }
    return rows;
}

/** Reads every row of a parquet file as an object in column order, with int64 values as numbers. */
export async function readParquetRows(file: string): Promise<Doc[]> {
    try {
        const buffer = await asyncBufferFromFile(file);
        const metadata = await parquetMetadataAsync(buffer);
        const rows = await parquetReadObjects({ file: buffer, metadata, compressors });
        return rows.map((row, i) => toDoc(row, `${file} row ${i}`));
    } catch (error) {
        if (error instanceof DataFormatError) throw error;
        throw new DataFormatError(`${file}: not a readable parquet file (${error instanceof Error ? error.message : String(error)})`);
    }
}

function toDoc(row: Record<string, unknown>, where: string): Doc {
    const out: Doc = {};
    for (const [key, value] of Object.entries(row)) out[key] = toDocValue(value, `${where} column ${key}`);
    return out;
}

function toDocValue(value: unknown, where: string): DocValue {
    if (value === null || value === undefined) return null;
    if (typeof value === "string" || typeof value === "boolean") return value;
    if (typeof value === "number") return value;
    if (typeof value === "bigint") {
        if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
            throw new DataFormatError(`${where}: integer ${value} is too large`);
        }
        return Number(value);
    }
    if (Array.isArray(value)) return value.map((v, i) => toDocValue(v, `${where}[${i}]`));
    if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number | bigint>, (v, i) => toDocValue(v, `${where}[${i}]`));
    if (typeof value === "object") return toDoc(value as Record<string, unknown>, where);
    throw new DataFormatError(`${where}: unsupported value of type ${typeof value}`);
}
