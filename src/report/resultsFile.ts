/**
 * Reads one lm-eval results JSON — ours, lm-eval main / v0.4.3+ (`results_<datetime>.json`) or
 * v0.4.2 (`results.json`, no higher_is_better, stderr "N/A") — into a `ResultsRun`: per task, per
 * metric key ("acc,none"), the value and its standard error (null when missing or "N/A").
 * The file is validated with zod; a malformed one → DataFormatError naming the file and field.
 */
import { FileAccessError, readSmallTextFileSync, SIZE_LIMITS } from "../io/safeFile.js";
import { z } from "zod";
import { DataFormatError } from "../errors.js";
import { firstIssueLine, formatFieldPath } from "./fieldPath.js";
import { numberFromJson, parsePythonJson } from "../io/pythonJson.js";

/** A metric's aggregate value and standard error (null when the file has none or "N/A"). */
export interface MetricValue {
    value: number;
    stderr: number | null;
}

/** One results file, normalised. */
export interface ResultsRun {
    /** The file it was read from. */
    path: string;
    /** task → metric key ("acc,none") → value; tasks and keys in file order. */
    tasks: Map<string, Map<string, MetricValue>>;
    /** task → metric name ("acc", no filter) → higher is better, from the file's higher_is_better (v0.4.3+). */
    higherIsBetter: Map<string, Map<string, boolean>>;
    /** The model identifier the run names: config.model_args pretrained=, else model_name, else config.model. */
    modelId: string | undefined;
    /** The datetime suffix of a `results_<datetime>.json` name, if it has one (used to find its samples files). */
    datetime: string | undefined;
    /** config.model_args as written (string in v0.4.x, object in main), for v0.4.2 samples file names. */
    modelArgs: string | Record<string, unknown> | undefined;
    /** Our own provenance block (key `mamba_eval`, or `provenance`), when present. */
    provenance: Record<string, unknown> | undefined;
}

/** Keys of a task entry that are not metrics. */
const NON_METRIC_KEYS = new Set(["alias", "name", "sample_len", "samples", "sample_count"]);

const resultsSchema = z.looseObject({
    results: z.record(z.string(), z.record(z.string(), z.unknown())),
    higher_is_better: z.record(z.string(), z.record(z.string(), z.boolean().nullable())).optional(),
    config: z
        .looseObject({
            model: z.string().nullish(),
            model_args: z.union([z.string(), z.record(z.string(), z.unknown())]).nullish(),
        })
        .nullish(),
    model_name: z.string().nullish(),
    provenance: z.record(z.string(), z.unknown()).nullish(),
    mamba_eval: z.record(z.string(), z.unknown()).nullish(),
});

/** Reads and validates a results file. */
export function readResultsFile(path: string): ResultsRun {
    let text: string;
    try {
        text = readSmallTextFileSync(path, { limit: SIZE_LIMITS.data, what: "a results file" });
    } catch (error) {
        if (error instanceof FileAccessError && error.code !== "ENOENT") throw new DataFormatError(error.message);
        throw new DataFormatError(`${path}: cannot read results file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
    let json: unknown;
    try {
        json = parsePythonJson(text);
    } catch (error) {
        throw new DataFormatError(`${path}: not valid JSON (${(error as Error).message})`);
    }
    return parseResultsJson(json, path);
}

/** Validates an already parsed results object; `path` only names it in errors. */
export function parseResultsJson(json: unknown, path: string): ResultsRun {
    const parsed = resultsSchema.safeParse(json);
    if (!parsed.success) throw new DataFormatError(`${path}: ${firstIssueLine(parsed.error)}`);
    const data = parsed.data;

    const tasks = new Map<string, Map<string, MetricValue>>();
    for (const [task, entry] of Object.entries(data.results)) {
        tasks.set(task, readTaskMetrics(entry, path, task));
    }

    const higherIsBetter = new Map<string, Map<string, boolean>>();
    for (const [task, metrics] of Object.entries(data.higher_is_better ?? {})) {
        const map = new Map<string, boolean>();
        for (const [metric, hib] of Object.entries(metrics)) if (hib !== null) map.set(metric, hib);
        higherIsBetter.set(task, map);
    }

    const modelArgs = data.config?.model_args ?? undefined;
    return {
        path,
        tasks,
        higherIsBetter,
        modelId: pretrainedFromModelArgs(modelArgs) ?? data.model_name ?? data.config?.model ?? undefined,
        datetime: /results_(.+)\.json$/.exec(path)?.[1],
        modelArgs,
        provenance: data.mamba_eval ?? data.provenance ?? undefined,
    };
}

/** One task's entry → metric key → value/stderr. */
function readTaskMetrics(entry: Record<string, unknown>, path: string, task: string): Map<string, MetricValue> {
    const values = new Map<string, number>();
    const stderrs = new Map<string, number | null>();
    for (const [key, raw] of Object.entries(entry)) {
        if (NON_METRIC_KEYS.has(key)) continue;
        const { metric, filter } = splitMetricKey(key);
        const isStderr = metric.endsWith("_stderr");
        const field = () => formatFieldPath(["results", task, key]);
        if (isStderr) {
            const base = `${metric.slice(0, -"_stderr".length)},${filter}`;
            if (raw === "N/A" || raw === null) {
                stderrs.set(base, null);
                continue;
            }
            const se = numberFromJson(raw);
            if (se === undefined) throw new DataFormatError(`${path}: field ${field()}: expected a number or "N/A", got ${describe(raw)}`);
            // a standard error is never negative: one that is would make any difference look like noise
            if (se < 0) throw new DataFormatError(`${path}: field ${field()}: expected a standard error >= 0, got ${describe(raw)}`);
            stderrs.set(base, se);
            continue;
        }
        const value = numberFromJson(raw);
        if (value === undefined) {
            // Keys without a filter part that are not numbers are descriptive (older layouts); skip them.
            if (!key.includes(",")) continue;
            throw new DataFormatError(`${path}: field ${field()}: expected a number, got ${describe(raw)}`);
        }
        values.set(`${metric},${filter}`, value);
    }
    const metrics = new Map<string, MetricValue>();
    for (const [key, value] of values) metrics.set(key, { value, stderr: stderrs.get(key) ?? null });
    return metrics;
}

/** "acc_norm,none" → {metric: "acc_norm", filter: "none"}; a key without a filter (lm-eval 0.3) gets "none". */
export function splitMetricKey(key: string): { metric: string; filter: string } {
    const comma = key.indexOf(",");
    if (comma < 0) return { metric: key, filter: "none" };
    return { metric: key.slice(0, comma), filter: key.slice(comma + 1) };
}

/**
 * The `pretrained=` value of model_args: a "k=v,k2=v2" string (v0.4.x) or an object (main).
 */
export function pretrainedFromModelArgs(modelArgs: unknown): string | undefined {
    if (typeof modelArgs === "string") {
        for (const part of modelArgs.split(",")) {
            const eq = part.indexOf("=");
            if (eq > 0 && part.slice(0, eq).trim() === "pretrained") return part.slice(eq + 1).trim();
        }
        return undefined;
    }
    if (modelArgs !== null && typeof modelArgs === "object") {
        const value = (modelArgs as Record<string, unknown>)["pretrained"];
        return typeof value === "string" ? value : undefined;
    }
    return undefined;
}

function describe(value: unknown): string {
    if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
    if (value === null) return "null";
    if (Array.isArray(value)) return "an array";
    return typeof value === "object" ? "an object" : `${typeof value} ${String(value)}`;
}
