/**
 * lm-eval's per-sample log (`--log_samples`, main/v0.4.3+ JSONL layout): one record per document with doc_id,
 * doc, target, arguments {"gen_args_i": {"arg_0": context, "arg_1": continuation}}, resps [[["<ll>", "<True|False>"]]],
 * filtered_resps [["<ll>", "<True|False>"]] (Python str() of each leaf), filter "none", metrics, the three
 * hashes, then each metric's per-document value.
 *
 * API: `docHash(doc)`, `sha256Hex(text)`, `buildSampleRecord(…)`, `taskHash(records)` (results' task_hashes),
 * `samplesFileName(task, dateId)`, `writeSamplesFile(file, records)` (JSONL, atomically).
 */
import { createHash } from "node:crypto";
import type { Doc, TaskSpec } from "../tasks/types.js";
import type { LoglikelihoodResult } from "../lm/LM.js";
import type { Instance } from "./requests.js";
import { writeFileAtomic } from "../io/atomicWrite.js";
import { pyFloat, pyFloatRepr, pyJsonDumps, type JsonLike } from "../io/pyjson.js";

/** sha256 of the UTF-8 text, hex (lm-eval's `hash_string`). */
export function sha256Hex(text: string): string {
    return createHash("sha256").update(text, "utf8").digest("hex");
}

/** lm-eval's doc_hash: sha256 of `json.dumps(doc, indent=2, ensure_ascii=False)`. */
export function docHash(doc: Doc): string {
    return sha256Hex(pyJsonDumps(doc, 2));
}

/** One logged sample, keys in lm-eval's order. */
export type SampleRecord = Record<string, JsonLike> & { doc_hash: string; prompt_hash: string; target_hash: string };

/**
 * The record lm-eval logs for one document. `requests` and `results` are the document's requests in idx order
 * and their answers; `metrics` is processResults' output.
 */
export function buildSampleRecord(
    task: TaskSpec,
    docId: number,
    doc: Doc,
    requests: readonly Instance[],
    results: readonly LoglikelihoodResult[],
    metrics: Readonly<Record<string, number>>,
): SampleRecord {
    if (requests.length === 0 || requests.length !== results.length) {
        throw new Error(`${task.name} doc ${docId}: ${requests.length} requests but ${results.length} answers`);
    }
    const target = String(task.docToTarget(doc));
    const pair = (r: LoglikelihoodResult): JsonLike => [pyFloatRepr(r.logprob), r.isGreedy ? "True" : "False"];
    const record: SampleRecord = {
        doc_id: docId,
        doc,
        target,
        arguments: Object.fromEntries(requests.map((r, i) => [`gen_args_${i}`, { arg_0: r.context, arg_1: r.continuation }])),
        resps: results.map((r) => [pair(r)]),
        filtered_resps: results.map(pair),
        filter: "none",
        metrics: Object.keys(metrics),
        doc_hash: docHash(doc),
        prompt_hash: sha256Hex(requests[0]!.context),
        target_hash: sha256Hex(target),
    };
    for (const [name, value] of Object.entries(metrics)) {
        const spec = task.metrics.find((m) => m.name === name);
        record[name] = spec?.itemType === "int" ? value : pyFloat(value);
    }
    return record;
}

/** lm-eval's task_hashes entry: sha256 of the concatenated doc_hash + prompt_hash + target_hash of every sample. */
export function taskHash(records: readonly SampleRecord[]): string {
    return sha256Hex(records.map((r) => r.doc_hash + r.prompt_hash + r.target_hash).join(""));
}

/** `samples_<task>_<dateId>.jsonl`. */
export function samplesFileName(taskName: string, dateId: string): string {
    return `samples_${taskName}_${dateId}.jsonl`;
}

/** The records as JSONL (Python `json.dumps(record, ensure_ascii=False)` per line). */
export function samplesJsonl(records: readonly SampleRecord[]): string {
    return records.map((r) => pyJsonDumps(r) + "\n").join("");
}

/** Writes the records as JSONL, atomically and never over an existing file. */
export async function writeSamplesFile(file: string, records: readonly SampleRecord[]): Promise<void> {
    writeFileAtomic(file, samplesJsonl(records), { noClobber: true });
}
