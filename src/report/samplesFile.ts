/**
 * Reads lm-eval per-sample logs (`--log_samples`) into normalised records, for request-by-request
 * comparison. Two layouts are accepted:
 *   - v0.4.3+/main/ours: `samples_<task>_<datetime>.jsonl` next to `results_<datetime>.json`, one JSON
 *     object per line; `arguments` = {"gen_args_0": {"arg_0": ctx, "arg_1": cont}, …}; resps leaves are
 *     strings ("-21.84375", "True").
 *   - v0.4.2: `<model_args with / and = → __>_<task>.jsonl` next to `results.json`, one indented JSON
 *     array; `arguments` = [[ctx, cont], …]; resps leaves are native numbers/booleans.
 */
import { FileAccessError, readSmallTextFileSync, SIZE_LIMITS } from "../io/safeFile.js";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { DataFormatError } from "../errors.js";
import { formatFieldPath } from "./fieldPath.js";
import { numberFromJson, parsePythonJson } from "../io/pythonJson.js";
import type { ResultsRun } from "./resultsFile.js";

/** One request of a document: its arguments and the model's answer. */
export interface SampleRequest {
    context: string;
    continuation: string;
    /** The log-likelihood, when the response is a (ll, is_greedy) pair. */
    logprob: number | undefined;
    isGreedy: boolean | undefined;
    /** The filtered response as canonical JSON, compared when it is not a (ll, is_greedy) pair. */
    response: string;
}

/** One document's record (one per doc and filter). */
export interface SampleRecord {
    task: string;
    docId: number;
    filter: string;
    target: string;
    requests: SampleRequest[];
    /** Per-document metric values (acc, acc_norm, perplexity …), numbers or canonical JSON text. */
    metrics: Map<string, number | string>;
    docHash: string | undefined;
    promptHash: string | undefined;
    targetHash: string | undefined;
    /** Where it was read: "file:line" (JSONL) or "file[index]" (JSON array). */
    location: string;
}

/** A task's samples file, found next to a results file. */
export interface SamplesFileRef {
    task: string;
    path: string;
}

const STRUCTURAL_KEYS = new Set([
    "doc_id", "doc", "target", "arguments", "resps", "filtered_resps",
    "doc_hash", "prompt_hash", "target_hash", "filter", "metrics",
]);

const argumentPairSchema = z.looseObject({ arg_0: z.string(), arg_1: z.unknown() });
const recordSchema = z.looseObject({
    doc_id: z.number().int(),
    target: z.unknown(),
    arguments: z.union([z.record(z.string(), argumentPairSchema), z.array(z.array(z.unknown()))]),
    filtered_resps: z.array(z.unknown()),
    resps: z.array(z.unknown()).optional(),
    doc_hash: z.string().optional(),
    prompt_hash: z.string().optional(),
    target_hash: z.string().optional(),
    filter: z.string().optional(),
    metrics: z.array(z.string()).optional(),
});

/**
 * The samples files that belong to a results file, one per task of the run that has one.
 * Returns an empty list when there are none.
 */
export function findSamplesFiles(run: ResultsRun): SamplesFileRef[] {
    const dir = dirname(run.path);
    const names = readdirSync(dir);
    const found: SamplesFileRef[] = [];
    for (const task of run.tasks.keys()) {
        let name: string | undefined;
        if (run.datetime !== undefined) {
            const wanted = `samples_${task}_${run.datetime}.jsonl`;
            if (names.includes(wanted)) name = wanted;
        } else {
            const prefix = legacySamplesPrefix(run.modelArgs);
            const exact = prefix === undefined ? undefined : `${prefix}_${task}.jsonl`;
            if (exact !== undefined && names.includes(exact)) name = exact;
            else {
                const candidates = names.filter((n) => n.endsWith(`_${task}.jsonl`) && !n.startsWith("samples_"));
                if (candidates.length === 1) name = candidates[0];
            }
        }
        if (name !== undefined && existsSync(join(dir, name))) found.push({ task, path: join(dir, name) });
    }
    return found;
}

/** v0.4.2 names samples files after model_args with '/' and '=' replaced by "__". */
function legacySamplesPrefix(modelArgs: ResultsRun["modelArgs"]): string | undefined {
    if (typeof modelArgs !== "string") return undefined;
    return modelArgs.replaceAll("/", "__").replaceAll("=", "__");
}

/** Reads one samples file (JSONL or a JSON array) of the given task. */
export function readSamplesFile(path: string, task: string): SampleRecord[] {
    let text: string;
    try {
        text = readSmallTextFileSync(path, { limit: SIZE_LIMITS.data, what: "a samples file" });
    } catch (error) {
        if (error instanceof FileAccessError && error.code !== "ENOENT") throw new DataFormatError(error.message);
        throw new DataFormatError(`${path}: cannot read samples file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
    const records: SampleRecord[] = [];
    if (text.trimStart().startsWith("[")) {
        let array: unknown;
        try {
            array = parsePythonJson(text);
        } catch (error) {
            throw new DataFormatError(`${path}: not valid JSON (${(error as Error).message})`);
        }
        if (!Array.isArray(array)) throw new DataFormatError(`${path}: expected a JSON array of sample records`);
        array.forEach((item, index) => records.push(parseSampleRecord(item, task, `${path}[${index}]`)));
        return records;
    }
    const lines = text.split("\n");
    lines.forEach((line, index) => {
        if (line.trim() === "") return;
        const location = `${path}:${index + 1}`;
        let item: unknown;
        try {
            item = parsePythonJson(line);
        } catch (error) {
            throw new DataFormatError(`${location}: not valid JSON (${(error as Error).message})`);
        }
        records.push(parseSampleRecord(item, task, location));
    });
    return records;
}

/** Validates and normalises one record; `location` names it in errors. */
export function parseSampleRecord(item: unknown, task: string, location: string): SampleRecord {
    const parsed = recordSchema.safeParse(item);
    if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new DataFormatError(`${location}: field ${formatFieldPath(issue?.path ?? [])}: ${issue?.message ?? "invalid"}`);
    }
    const rec = parsed.data;
    const args = normaliseArguments(rec.arguments, location);
    if (rec.filtered_resps.length !== args.length) {
        throw new DataFormatError(
            `${location}: field filtered_resps: ${rec.filtered_resps.length} responses for ${args.length} requests in arguments`,
        );
    }
    const requests = args.map(([context, continuation], i): SampleRequest => {
        const response = rec.filtered_resps[i];
        const pair = loglikelihoodPair(response);
        return { context, continuation, logprob: pair?.logprob, isGreedy: pair?.isGreedy, response: JSON.stringify(response) };
    });

    const metricNames = rec.metrics ?? Object.keys(rec).filter((k) => !STRUCTURAL_KEYS.has(k));
    const metrics = new Map<string, number | string>();
    for (const name of metricNames) {
        const raw = (rec as Record<string, unknown>)[name];
        if (raw === undefined) continue;
        const asNumber = typeof raw === "boolean" ? Number(raw) : numberFromJson(raw);
        metrics.set(name, asNumber ?? JSON.stringify(raw));
    }

    return {
        task,
        docId: rec.doc_id,
        filter: rec.filter ?? "none",
        target: typeof rec.target === "string" ? rec.target : JSON.stringify(rec.target),
        requests,
        metrics,
        docHash: rec.doc_hash,
        promptHash: rec.prompt_hash,
        targetHash: rec.target_hash,
        location,
    };
}

/** Both argument layouts → [context, continuation] pairs in request order. */
function normaliseArguments(args: Record<string, { arg_0: string; arg_1: unknown }> | unknown[][], location: string): Array<[string, string]> {
    if (Array.isArray(args)) {
        return args.map((pair, i) => {
            if (typeof pair[0] !== "string") {
                throw new DataFormatError(`${location}: field arguments[${i}][0]: expected the context string`);
            }
            return [pair[0], stringOf(pair[1])];
        });
    }
    const entries = Object.entries(args).map(([key, value]) => {
        const index = /^gen_args_(\d+)$/.exec(key)?.[1];
        if (index === undefined) throw new DataFormatError(`${location}: field ${formatFieldPath(["arguments", key])}: expected keys gen_args_<n>`);
        return { index: Number(index), value };
    });
    entries.sort((a, b) => a.index - b.index);
    return entries.map(({ value }) => [value.arg_0, stringOf(value.arg_1)]);
}

function stringOf(value: unknown): string {
    return typeof value === "string" ? value : JSON.stringify(value);
}

/** A filtered response [ll, is_greedy] (strings "-1.5"/"True" or native) → numbers; else undefined. */
function loglikelihoodPair(response: unknown): { logprob: number; isGreedy: boolean } | undefined {
    if (!Array.isArray(response) || response.length !== 2) return undefined;
    const [ll, greedy] = response as [unknown, unknown];
    const logprob = typeof ll === "string" ? pythonFloat(ll) : numberFromJson(ll);
    const isGreedy = typeof greedy === "boolean" ? greedy : greedy === "True" ? true : greedy === "False" ? false : undefined;
    if (logprob === undefined || isGreedy === undefined) return undefined;
    return { logprob, isGreedy };
}

/** Python's repr of a float → number (also "inf", "-inf", "nan"); undefined when it is not one. */
function pythonFloat(text: string): number | undefined {
    const special = numberFromJson(text);
    if (special !== undefined) return special;
    if (!/^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) return undefined;
    return Number(text);
}
