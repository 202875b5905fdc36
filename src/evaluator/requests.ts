/**
 * Task documents → loglikelihood request instances, and per-document metrics from the answers
 * (lm-eval's `ConfigurableTask.construct_requests` and `process_results` for zero-shot runs).
 *
 * API:
 * - `docLimit(total, limit)`: lm-eval's `--limit` (count, or a fraction < 1 → ceil(n·L)); the first N docs are used;
 * - `buildTaskRequests(task, docs)` → `Instance[]`, grouped by document, `idx` = choice index;
 *     multiple_choice: (ctx, " " + choice_i); multiple input (docToText returns a number, winogrande):
 *     (choice_i, " " + target); loglikelihood (lambada): (text, target);
 * - `goldIndex(task, doc)`; `processResults(task, doc, results)` → per-doc metrics in lm-eval's key order
 *     (acc, acc_norm by code-point length, numpy argmax first-index ties; lambada perplexity = ll, acc = is_greedy).
 */
import { UsageError } from "../errors.js";
import type { Doc, TaskSpec } from "../tasks/types.js";
import type { LoglikelihoodResult } from "../lm/LM.js";

/** One loglikelihood request (lm-eval's Instance, reduced to what these tasks use). */
export interface Instance {
    taskName: string;
    /** Index of the document in the (processed) evaluation split. */
    docId: number;
    /** Choice index within the document (0 for lambada). */
    idx: number;
    context: string;
    continuation: string;
}

/** lm-eval's `get_sample_size`: null → all; L < 1 → ceil(n·L); else int(L). Never more than `total`. */
export function docLimit(total: number, limit: number | null | undefined): number {
    if (limit === null || limit === undefined) return total;
    if (!Number.isFinite(limit) || limit < 0) throw new UsageError(`--limit must be a non-negative number, got ${limit}`);
    const count = limit < 1 ? Math.ceil(total * limit) : Math.trunc(limit);
    return Math.min(count, total);
}

/** True when the task scores one context per option with a shared continuation (lm-eval's multiple_input). */
export function isMultipleInput(task: TaskSpec, docs: readonly Doc[]): boolean {
    return task.outputType === "multiple_choice" && docs.length > 0 && typeof task.docToText(docs[0]!) === "number";
}

function choicesOf(task: TaskSpec, doc: Doc): string[] {
    if (!task.docToChoice) throw new Error(`${task.name}: multiple_choice task without docToChoice`);
    return task.docToChoice(doc);
}

/** The requests of every document, in document order then choice order. */
export function buildTaskRequests(task: TaskSpec, docs: readonly Doc[]): Instance[] {
    const out: Instance[] = [];
    const multipleInput = isMultipleInput(task, docs);
    docs.forEach((doc, docId) => {
        const make = (idx: number, context: string, continuation: string): Instance => ({ taskName: task.name, docId, idx, context, continuation });
        if (task.outputType === "loglikelihood") {
            out.push(make(0, String(task.docToText(doc)), String(task.docToTarget(doc))));
        } else if (multipleInput) {
            const continuation = task.targetDelimiter + String(task.docToTarget(doc));
            choicesOf(task, doc).forEach((context, i) => out.push(make(i, context, continuation)));
        } else {
            const context = String(task.docToText(doc));
            choicesOf(task, doc).forEach((choice, i) => out.push(make(i, context, task.targetDelimiter + choice)));
        }
    });
    return out;
}

/** numpy.argmax: the first index of the maximum; a NaN counts as the maximum (first NaN wins). */
export function argmaxFirst(values: readonly number[]): number {
    let best = 0;
    for (let i = 0; i < values.length; i++) {
        const v = values[i]!;
        if (Number.isNaN(v)) return i;
        if (v > values[best]!) best = i;
    }
    return best;
}

/** The gold choice index as lm-eval computes it (-100 when out of range or not among the choices). */
export function goldIndex(task: TaskSpec, doc: Doc, choices: readonly string[], multipleInput: boolean): number {
    const gold = multipleInput ? task.docToText(doc) : task.docToTarget(doc);
    if (typeof gold === "number") return gold < choices.length ? gold : -100;
    const index = choices.indexOf(gold);
    return index >= 0 ? index : -100;
}

/**
 * Per-document metrics from the document's answers (in request order), keyed as lm-eval's process_results keys
 * them: multiple_choice → { acc, acc_norm? } (1/0), loglikelihood → { perplexity: ll, acc: is_greedy ? 1 : 0 }.
 * Only the metrics the task declares are returned.
 */
export function processResults(task: TaskSpec, doc: Doc, results: readonly LoglikelihoodResult[], multipleInput: boolean): Record<string, number> {
    const wanted = new Set(task.metrics.map((m) => m.name));
    const out: Record<string, number> = {};
    if (task.outputType === "loglikelihood") {
        const only = results[0];
        if (!only || results.length !== 1) throw new Error(`${task.name}: expected one answer per document, got ${results.length}`);
        if (wanted.has("perplexity")) out["perplexity"] = only.logprob;
        if (wanted.has("acc")) out["acc"] = only.isGreedy ? 1 : 0;
        return out;
    }
    const choices = choicesOf(task, doc);
    if (results.length !== choices.length) throw new Error(`${task.name}: expected ${choices.length} answers for a document, got ${results.length}`);
    const lls = results.map((r) => r.logprob);
    const gold = goldIndex(task, doc, choices, multipleInput);
    const pred = argmaxFirst(lls);
    // acc_norm divides by the choice's length in Unicode code points (Python len), not bytes or tokens.
    const predNorm = argmaxFirst(lls.map((ll, i) => ll / [...choices[i]!].length));
    if (wanted.has("acc")) out["acc"] = pred === gold ? 1 : 0;
    if (wanted.has("acc_norm")) out["acc_norm"] = predNorm === gold ? 1 : 0;
    return out;
}
