/**
 * Request-by-request comparison of two runs' per-sample logs (pure). Records are matched by task +
 * doc_id + filter and requests by their index; compared are each request's arguments, log-likelihood
 * and is_greedy, the per-document metric values, and doc/prompt/target hashes (when both have them).
 */
import type { SampleRecord, SampleRequest } from "./samplesFile.js";

/** One difference in one document. */
export type SampleChange =
    | { kind: "arguments"; index: number; baseline: SampleRequest | undefined; current: SampleRequest | undefined }
    | { kind: "logprob"; index: number; baseline: number; current: number }
    | { kind: "is_greedy"; index: number; baseline: boolean; current: boolean }
    | { kind: "response"; index: number; baseline: string; current: string }
    | { kind: "metric"; name: string; baseline: number | string | undefined; current: number | string | undefined }
    | { kind: "hash"; name: "doc_hash" | "prompt_hash" | "target_hash"; baseline: string; current: string };

/** A document whose record differs. */
export interface ChangedDocument {
    task: string;
    docId: number;
    filter: string;
    changes: SampleChange[];
    /** The current run's first request (else the baseline's), to show what the document is. */
    firstRequest: SampleRequest | undefined;
}

/** Per-task counts. */
export interface TaskSamplesSummary {
    task: string;
    compared: number;
    changed: number;
    onlyInBaseline: number;
    onlyInCurrent: number;
    /** Requests whose log-likelihood moved, and the largest |Δll| among them. */
    logprobChanges: number;
    maxAbsLogprobDelta: number;
    /** Per-document metric flips, metric name → count. */
    metricChanges: Record<string, number>;
}

export interface SamplesComparison {
    tasks: TaskSamplesSummary[];
    /** Every changed document, in task order then doc_id order. */
    changed: ChangedDocument[];
}

/** Compares the records of the tasks both runs logged; `tasks` gives the order. */
export function compareSamples(
    tasks: readonly string[],
    baseline: ReadonlyMap<string, readonly SampleRecord[]>,
    current: ReadonlyMap<string, readonly SampleRecord[]>,
): SamplesComparison {
    const summaries: TaskSamplesSummary[] = [];
    const changed: ChangedDocument[] = [];
    for (const task of tasks) {
        const base = baseline.get(task);
        const cur = current.get(task);
        if (base === undefined || cur === undefined) continue;
        const summary: TaskSamplesSummary = {
            task, compared: 0, changed: 0, onlyInBaseline: 0, onlyInCurrent: 0,
            logprobChanges: 0, maxAbsLogprobDelta: 0, metricChanges: {},
        };
        const curByKey = new Map(cur.map((rec) => [recordKey(rec), rec]));
        const seen = new Set<string>();
        const taskChanged: ChangedDocument[] = [];
        for (const b of base) {
            const key = recordKey(b);
            const c = curByKey.get(key);
            if (c === undefined) {
                summary.onlyInBaseline += 1;
                continue;
            }
            seen.add(key);
            summary.compared += 1;
            const changes = diffRecord(b, c);
            if (changes.length === 0) continue;
            summary.changed += 1;
            for (const change of changes) {
                if (change.kind === "logprob") {
                    summary.logprobChanges += 1;
                    const d = Math.abs(change.current - change.baseline);
                    if (Number.isFinite(d)) summary.maxAbsLogprobDelta = Math.max(summary.maxAbsLogprobDelta, d);
                }
                if (change.kind === "metric") summary.metricChanges[change.name] = (summary.metricChanges[change.name] ?? 0) + 1;
            }
            taskChanged.push({ task, docId: b.docId, filter: b.filter, changes, firstRequest: c.requests[0] ?? b.requests[0] });
        }
        summary.onlyInCurrent = cur.filter((rec) => !seen.has(recordKey(rec))).length;
        taskChanged.sort((x, y) => x.docId - y.docId || (x.filter < y.filter ? -1 : x.filter > y.filter ? 1 : 0));
        changed.push(...taskChanged);
        summaries.push(summary);
    }
    return { tasks: summaries, changed };
}

function recordKey(rec: SampleRecord): string {
    return `${rec.docId}\u0000${rec.filter}`;
}

/** Every difference between two records of the same document. */
export function diffRecord(baseline: SampleRecord, current: SampleRecord): SampleChange[] {
    const changes: SampleChange[] = [];
    const n = Math.max(baseline.requests.length, current.requests.length);
    for (let i = 0; i < n; i++) {
        const b = baseline.requests[i];
        const c = current.requests[i];
        if (b === undefined || c === undefined || b.context !== c.context || b.continuation !== c.continuation) {
            changes.push({ kind: "arguments", index: i, baseline: b, current: c });
            continue;
        }
        if (b.logprob !== undefined && c.logprob !== undefined && b.isGreedy !== undefined && c.isGreedy !== undefined) {
            if (!sameNumber(b.logprob, c.logprob)) changes.push({ kind: "logprob", index: i, baseline: b.logprob, current: c.logprob });
            if (b.isGreedy !== c.isGreedy) changes.push({ kind: "is_greedy", index: i, baseline: b.isGreedy, current: c.isGreedy });
        } else if (b.response !== c.response) {
            changes.push({ kind: "response", index: i, baseline: b.response, current: c.response });
        }
    }
    const metricNames = new Set([...baseline.metrics.keys(), ...current.metrics.keys()]);
    for (const name of metricNames) {
        const b = baseline.metrics.get(name);
        const c = current.metrics.get(name);
        const same = typeof b === "number" && typeof c === "number" ? sameNumber(b, c) : b === c;
        if (!same) changes.push({ kind: "metric", name, baseline: b, current: c });
    }
    for (const name of ["doc_hash", "prompt_hash", "target_hash"] as const) {
        const b = hashOf(baseline, name);
        const c = hashOf(current, name);
        if (b !== undefined && c !== undefined && b !== c) changes.push({ kind: "hash", name, baseline: b, current: c });
    }
    return changes;
}

function hashOf(rec: SampleRecord, name: "doc_hash" | "prompt_hash" | "target_hash"): string | undefined {
    return name === "doc_hash" ? rec.docHash : name === "prompt_hash" ? rec.promptHash : rec.targetHash;
}

function sameNumber(a: number, b: number): boolean {
    return a === b || (Number.isNaN(a) && Number.isNaN(b));
}
