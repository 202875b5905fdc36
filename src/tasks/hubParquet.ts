/**
 * Default data source: the Hugging Face datasets lm-eval loads, as parquet files in the standard HF cache
 * (downloaded through src/model/hub.ts, which honours HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_CACHE/HF_HOME), read
 * with hyparquet.
 *
 * Which files make a split (explicit, in this order):
 *  1. the repo's own parquet files at `main`: files under `<config>/` when the task names a config (anywhere
 *     when it does not) whose name contains the split as a word (delimited by start/end or one of "-._ " and
 *     digits, as HF's data-file patterns do), e.g. `ARC-Easy/test-00000-of-00001.parquet`,
 *     `winogrande_xl/validation-00000-of-00001.parquet`, `data/validation-00000-of-00001.parquet`;
 *  2. otherwise the hub's parquet conversion, revision `refs/convert/parquet`, `<config or "default">/<split>/*.parquet`
 *     (EleutherAI/lambada_openai ships jsonl, so its `default/test/0000.parquet` comes from here).
 * Files are read in name order and their rows concatenated.
 *
 * API: `resolveSplitFiles(spec, lister)`, `loadHubRows(spec)` → rows in the HF schema (int64 → number).
 */
import { parquetMetadataAsync, parquetReadObjects, asyncBufferFromFile } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { DataFormatError, TaskError } from "../errors.js";
import { hubDownloadFile, hubListFiles, type HubOptions } from "../hub/hub.js";
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

/** Picks the parquet files of `spec.evalSplit` (rules in the file comment). */
export async function resolveSplitFiles(spec: DatasetSpec, list: DatasetLister): Promise<SplitFiles> {
    const mainFiles = await list(spec.path, "main");
    const own = mainFiles.filter((f) => f.endsWith(".parquet") && underConfig(f, spec.name) && namesSplit(f, spec.evalSplit)).sort();
    if (own.length > 0) return { revision: "main", files: own };

    const prefix = `${spec.name ?? "default"}/${spec.evalSplit}/`;
    const converted = (await list(spec.path, PARQUET_CONVERSION_REVISION))
        .filter((f) => f.startsWith(prefix) && f.endsWith(".parquet") && !f.slice(prefix.length).includes("/"))
        .sort();
    if (converted.length > 0) return { revision: PARQUET_CONVERSION_REVISION, files: converted };
    throw new TaskError(
        `dataset ${spec.path}${spec.name ? ` (config ${spec.name})` : ""}: no parquet files for split "${spec.evalSplit}" at main or ${PARQUET_CONVERSION_REVISION}`,
    );
}

function underConfig(file: string, config: string | null): boolean {
    return config === null || file.startsWith(`${config}/`);
}

function namesSplit(file: string, split: string): boolean {
    const base = file.slice(file.lastIndexOf("/") + 1).replace(/\.parquet$/, "");
    return base.split(/[-._ 0-9]+/).includes(split);
}

/** Downloads (or finds in the cache) the split's parquet files and returns their rows in the HF schema. */
export async function loadHubRows(spec: DatasetSpec, options: HubOptions = {}): Promise<Doc[]> {
    const hubOptions = (revision: string): HubOptions => ({ ...options, repoType: "dataset", revision });
    const lister: DatasetLister = async (repo, revision) => (await hubListFiles(repo, hubOptions(revision))).files;
    const { revision, files } = await resolveSplitFiles(spec, lister);
    const rows: Doc[] = [];
    for (const file of files) {
        const local = await hubDownloadFile(spec.path, file, hubOptions(revision));
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
