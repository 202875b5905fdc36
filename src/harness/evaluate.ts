/**
 * lm-eval's evaluate for the zero-shot tasks: tasks → docs (limit) → requests, all tasks' loglikelihood
 * requests pooled into ONE LM call → per-doc metrics → aggregation + stderr → an lm-eval-shaped results object
 * (plus per-doc samples when asked).
 */
import { TaskError } from "../errors.js";
import { loadTaskDocs } from "../tasks/datasets.js";
import type { Doc, DocValue, TaskSpec } from "../tasks/types.js";
import type { LM, LMCallOptions, LoglikelihoodRequest, LoglikelihoodResult } from "./lm.js";
import { aggregate, stderrFor } from "./metrics.js";

export interface EvaluateOptions {
    tasks: readonly TaskSpec[];
    /** lm-eval --limit: < 1 is a fraction (ceil), else a count. */
    limit?: number | undefined;
    dataDir?: string | undefined;
    /** Default 100000 (lm-eval's CLI). */
    bootstrapIters?: number;
    /** Called with the first doc's prompt and target per task (--write_out). */
    writeOut?: (text: string) => void;
    lm?: LMCallOptions;
}

/** One document's record: requests, responses and metric values (lm-eval's sample). */
export interface DocSample {
    docId: number;
    doc: Doc;
    target: DocValue;
    arguments: LoglikelihoodRequest[];
    responses: LoglikelihoodResult[];
    metrics: Record<string, number>;
}

export interface TaskOutcome {
    task: TaskSpec;
    nOriginal: number;
    nEffective: number;
    /** Metric → aggregate value and stderr. */
    values: Record<string, { value: number; stderr: number | "N/A" }>;
    samples: DocSample[];
}

export interface EvaluationOutput {
    tasks: TaskOutcome[];
    /** lm-eval-shaped results object (results, versions, n-shot, higher_is_better, n-samples, configs). */
    results: Record<string, unknown>;
}

/** lm-eval's get_sample_size. */
export function sampleCount(nDocs: number, limit: number | undefined): number {
    if (limit === undefined) return nDocs;
    return Math.min(nDocs, limit < 1 ? Math.ceil(nDocs * limit) : Math.trunc(limit));
}

interface DocPlan {
    docId: number;
    doc: Doc;
    target: DocValue;
    requests: LoglikelihoodRequest[];
    /** Multiple choice: gold index and the choice strings used for acc_norm lengths. */
    gold: number;
    choices: string[];
}

function planDoc(task: TaskSpec, doc: Doc, docId: number): DocPlan {
    const text = task.docToText(doc);
    const target = task.docToTarget(doc);
    if (task.outputType === "loglikelihood") {
        if (typeof text !== "string" || typeof target !== "string") throw new TaskError(`${task.name} doc ${docId}: expected string context and target`);
        return { docId, doc, target, requests: [{ context: text, continuation: target }], gold: -1, choices: [] };
    }
    const choices = task.docToChoice?.(doc);
    if (!choices) throw new TaskError(`${task.name}: multiple_choice task without doc_to_choice`);
    if (typeof text === "number") {
        // Multiple input (winogrande): one context per option, one shared continuation; gold = text.
        const cont = task.targetDelimiter + String(target);
        return { docId, doc, target, requests: choices.map((c) => ({ context: c, continuation: cont })), gold: text, choices };
    }
    const gold = typeof target === "number" ? target : Number.NaN;
    return {
        docId,
        doc,
        target,
        requests: choices.map((c) => ({ context: text, continuation: task.targetDelimiter + c })),
        gold: Number.isInteger(gold) && gold >= 0 && gold < choices.length ? gold : -100,
        choices,
    };
}

/** numpy argmax: first index of the maximum. */
function argmaxFirst(xs: readonly number[]): number {
    let best = 0;
    for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
    return best;
}

function docMetrics(task: TaskSpec, plan: DocPlan, responses: LoglikelihoodResult[]): Record<string, number> {
    const out: Record<string, number> = {};
    if (task.outputType === "loglikelihood") {
        const r = responses[0]!;
        for (const m of task.metrics) {
            if (m.name === "perplexity") out[m.name] = r.logprob;
            else if (m.name === "acc") out[m.name] = r.isGreedy ? 1 : 0;
        }
        return out;
    }
    const lls = responses.map((r) => r.logprob);
    for (const m of task.metrics) {
        if (m.name === "acc") out[m.name] = argmaxFirst(lls) === plan.gold ? 1 : 0;
        else if (m.name === "acc_norm") out[m.name] = argmaxFirst(lls.map((ll, i) => ll / [...plan.choices[i]!].length)) === plan.gold ? 1 : 0;
    }
    return out;
}

/** Runs the evaluation; see the module comment. */
export async function evaluate(lm: LM, options: EvaluateOptions): Promise<EvaluationOutput> {
    const plans: { task: TaskSpec; nOriginal: number; docs: DocPlan[] }[] = [];
    for (const task of options.tasks) {
        const docs = await loadTaskDocs(task, options.dataDir !== undefined ? { dataDir: options.dataDir } : {});
        const n = sampleCount(docs.length, options.limit);
        const planned = docs.slice(0, n).map((d, i) => planDoc(task, d, i));
        plans.push({ task, nOriginal: docs.length, docs: planned });
        const first = planned[0];
        if (first && options.writeOut) {
            options.writeOut(`task ${task.name}, doc 0: prompt ${JSON.stringify(first.requests[0]!.context)}, target ${JSON.stringify(first.target)}\n`);
        }
    }
    const pooled: LoglikelihoodRequest[] = plans.flatMap((p) => p.docs.flatMap((d) => d.requests));
    const responses = await lm.loglikelihood(pooled, options.lm);
    let at = 0;
    const iters = options.bootstrapIters ?? 100000;
    const outcomes: TaskOutcome[] = plans.map(({ task, nOriginal, docs }) => {
        const samples: DocSample[] = docs.map((plan) => {
            const resp = responses.slice(at, at + plan.requests.length);
            at += plan.requests.length;
            return { docId: plan.docId, doc: plan.doc, target: plan.target, arguments: plan.requests, responses: resp, metrics: docMetrics(task, plan, resp) };
        });
        const values: TaskOutcome["values"] = {};
        for (const m of task.metrics) {
            const items = samples.map((s) => s.metrics[m.name]!);
            values[m.name] = { value: aggregate(m.aggregation, items), stderr: stderrFor(m.aggregation, items, iters) };
        }
        return { task, nOriginal, nEffective: samples.length, values, samples };
    });
    return { tasks: outcomes, results: resultsObject(outcomes) };
}

/** The lm-eval results sections that depend only on the evaluation (the CLI adds config and provenance). */
export function resultsObject(outcomes: readonly TaskOutcome[]): Record<string, unknown> {
    const results: Record<string, Record<string, unknown>> = {};
    const versions: Record<string, number> = {};
    const nShot: Record<string, number> = {};
    const higher: Record<string, Record<string, boolean>> = {};
    const nSamples: Record<string, { original: number; effective: number }> = {};
    const configs: Record<string, unknown> = {};
    const groupSubtasks: Record<string, string[]> = {};
    for (const o of [...outcomes].sort((a, b) => a.task.name.localeCompare(b.task.name))) {
        const name = o.task.name;
        const r: Record<string, unknown> = { alias: name };
        for (const m of o.task.metrics) {
            r[`${m.name},none`] = o.values[m.name]!.value;
            r[`${m.name}_stderr,none`] = o.values[m.name]!.stderr;
        }
        results[name] = r;
        versions[name] = o.task.version;
        nShot[name] = 0;
        higher[name] = Object.fromEntries(o.task.metrics.map((m) => [m.name, m.higherIsBetter]));
        nSamples[name] = { original: o.nOriginal, effective: o.nEffective };
        configs[name] = { ...o.task.config, num_fewshot: 0 };
        groupSubtasks[name] = [];
    }
    return { results, group_subtasks: groupSubtasks, configs, versions, "n-shot": nShot, higher_is_better: higher, "n-samples": nSamples };
}
