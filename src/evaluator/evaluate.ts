/**
 * lm-eval's evaluate for the zero-shot tasks, over the task modules:
 * tasks → documents (`--limit`: docLimit) → requests (buildTaskRequests) → every task's loglikelihood requests
 * pooled into ONE LM call → per-document metrics (processResults) → aggregation and stderr (aggregateTask)
 * → per-document sample records (buildSampleRecord) when asked.
 *
 * It builds no files and prints nothing but the --write_out lines: the results object, samples files and the
 * printed table are made from its output by results.ts, samples.ts and table.ts (see src/cli/runCommand.ts).
 */
import path from "node:path";
import type { HubOptions } from "../hub/hub.js";
import { loadTaskDocs } from "../tasks/datasets.js";
import type { Doc, TaskSpec } from "../tasks/types.js";
import type { LM, LMCallOptions, LoglikelihoodRequest, LoglikelihoodResult } from "../lm/LM.js";
import { buildTaskRequests, docLimit, isMultipleInput, processResults, type Instance } from "./requests.js";
import type { RunMemo } from "./runMemo.js";
import { aggregateTask, type DocMetrics, type TaskAggregate } from "./results.js";
import { buildSampleRecord, type SampleRecord } from "./samples.js";

/** lm-eval's CLI always uses 100000 bootstrap iterations (perplexity stderr). */
export const DEFAULT_BOOTSTRAP_ITERS = 100000;

/** What to evaluate and how. */
export interface EvaluateOptions {
    tasks: readonly TaskSpec[];
    /** lm-eval --limit: a count, or a fraction < 1 (ceil); undefined/null = all documents. */
    limit?: number | null | undefined;
    /** Folder in the original-files layout; undefined = the HF datasets through the hub cache. */
    dataDir?: string | undefined;
    hub?: HubOptions | undefined;
    /** Default DEFAULT_BOOTSTRAP_ITERS. */
    bootstrapIters?: number | undefined;
    /** Also build lm-eval's per-document sample records (--log_samples). */
    logSamples?: boolean | undefined;
    /** --write_out: called with each task's first prompt and target. */
    writeOut?: ((text: string) => void) | undefined;
    /** Progress, cancellation and per-result callbacks of the pooled LM call. */
    lm?: LMCallOptions | undefined;
    /** Documents shared with the other models of a table3 run (read once for all of them). */
    memo?: RunMemo | undefined;
    /** Called once the LM call has answered every request, before the metrics. */
    onScored?: (() => void) | undefined;
}

/** One task's outcome. */
export interface TaskEvaluation {
    task: TaskSpec;
    /** Documents in the evaluation split (n-samples.original). */
    originalCount: number;
    /** The documents scored (the first docLimit(...) of the split). */
    docs: Doc[];
    /** Their requests, grouped by document in idx order. */
    requests: Instance[];
    /** The LM's answers, aligned with `requests`. */
    answers: LoglikelihoodResult[];
    /** processResults per document. */
    docMetrics: DocMetrics[];
    aggregate: TaskAggregate;
    /** lm-eval's sample records, one per document (only with logSamples). */
    samples: SampleRecord[] | undefined;
}

/** One task's documents and requests. */
export interface TaskPlan {
    task: TaskSpec;
    originalCount: number;
    docs: Doc[];
    requests: Instance[];
}

/** Every task's documents (through options.memo when given) and requests, in the order of options.tasks. */
export async function planTasks(options: Pick<EvaluateOptions, "tasks" | "limit" | "dataDir" | "hub" | "memo">): Promise<TaskPlan[]> {
    const plans: TaskPlan[] = [];
    for (const task of options.tasks) {
        const load = () => loadTaskDocs(task, { ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}), ...(options.hub ? { hub: options.hub } : {}) });
        const hub = options.hub ?? {};
        const source = options.dataDir !== undefined
            ? `dir:${path.resolve(options.dataDir)}`
            : `hub:${JSON.stringify([hub.endpoint, hub.cacheDir, hub.revision, hub.offline])}`;  // what decides the documents
        const all = options.memo ? await options.memo.documents(`${task.name}\0${source}`, load) : await load();
        const docs = all.slice(0, docLimit(all.length, options.limit));
        plans.push({ task, originalCount: all.length, docs, requests: buildTaskRequests(task, docs) });
    }
    return plans;
}

/** The loglikelihood requests of every task, pooled into the one LM call lm-eval makes. */
export function pooledRequests(plans: readonly TaskPlan[]): LoglikelihoodRequest[] {
    return plans.flatMap((p) => p.requests.map((r) => ({ context: r.context, continuation: r.continuation })));
}

/** Runs the evaluation; see the module comment. Results are in the order of `options.tasks`. */
export async function evaluate(lm: LM, options: EvaluateOptions): Promise<TaskEvaluation[]> {
    const plans = await planTasks(options);
    for (const { task, docs, requests } of plans) {
        const first = requests[0];
        if (first && options.writeOut) {
            options.writeOut(`${task.name}: doc 0, prompt ${JSON.stringify(first.context)}, target ${JSON.stringify(String(task.docToTarget(docs[0]!)))}\n`);
        }
    }
    const pooled = pooledRequests(plans);
    const answers = await lm.loglikelihood(pooled, options.lm);
    if (answers.length !== pooled.length) throw new Error(`the LM returned ${answers.length} answers for ${pooled.length} requests`);
    options.onScored?.();
    const iters = options.bootstrapIters ?? DEFAULT_BOOTSTRAP_ITERS;
    let offset = 0;
    return plans.map((plan) => {
        const taskAnswers = answers.slice(offset, offset + plan.requests.length);
        offset += plan.requests.length;
        return scoreTask(plan, taskAnswers, iters, options.logSamples === true);
    });
}

/** Per-document metrics, aggregate and samples of one task from its answers. */
function scoreTask(plan: TaskPlan, answers: LoglikelihoodResult[], bootstrapIters: number, logSamples: boolean): TaskEvaluation {
    const { task, docs, requests } = plan;
    const multipleInput = isMultipleInput(task, docs);
    const docMetrics: DocMetrics[] = [];
    const samples: SampleRecord[] = [];
    let at = 0;
    docs.forEach((doc, docId) => {
        const start = at;
        while (at < requests.length && requests[at]!.docId === docId) at++;
        const docAnswers = answers.slice(start, at);
        const metrics = processResults(task, doc, docAnswers, multipleInput);
        docMetrics.push(metrics);
        if (logSamples) samples.push(buildSampleRecord(task, docId, doc, requests.slice(start, at), docAnswers, metrics));
    });
    return {
        task,
        originalCount: plan.originalCount,
        docs,
        requests,
        answers,
        docMetrics,
        aggregate: aggregateTask(task, docMetrics, plan.originalCount, bootstrapIters),
        samples: logSamples ? samples : undefined,
    };
}
