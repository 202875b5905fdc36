/**
 * Renders a compare report as readable text (a pipe table plus notes) and as JSON.
 */
import type { CompareReport } from "./runCompare.js";
import type { MetricComparison, Verdict } from "./compareResults.js";
import type { ChangedDocument, SampleChange } from "./compareSamples.js";
import type { SampleRequest } from "./samplesFile.js";
import { renderPipeTable } from "./textTable.js";

const VERDICT_TEXT: Record<Verdict, string> = {
    same: "same",
    "within-noise": "within noise",
    improved: "improved",
    regression: "REGRESSION",
    changed: "CHANGED",
};

/** The human-readable report; `maxDocuments` bounds the list of changed documents. */
export function formatCompareText(report: CompareReport, maxDocuments = 5): string {
    const { comparison, options } = { comparison: report.results, options: report.results.options };
    const out: string[] = [];
    out.push(`baseline: ${report.baseline.path}${report.baseline.modelId ? ` (${report.baseline.modelId})` : ""}`);
    out.push(`current:  ${report.current.path}${report.current.modelId ? ` (${report.current.modelId})` : ""}`);
    const provenance = provenanceDifferences(report);
    if (provenance !== "") out.push(`provenance differs: ${provenance}`);
    out.push(
        options.exact
            ? "rule: exact — any difference in a value or stderr fails"
            : `rule: regression = worse by more than ${options.k} × se and more than ${options.floor} (se = sqrt(se_base² + se_cur²); floor only without stderr)`,
    );
    out.push("");
    const header = ["Task", "Metric", "Baseline", "Current", "Δ", "Δ/se", "Verdict"];
    const rows = comparison.rows.map((row) => [
        row.task,
        `${row.metric}${row.direction === true ? " ↑" : row.direction === false ? " ↓" : ""}`,
        formatValue(row, "baseline", options.exact),
        formatValue(row, "current", options.exact),
        formatDelta(row.delta),
        row.deltaOverStderr === null ? "—" : signed(row.deltaOverStderr.toFixed(2)),
        VERDICT_TEXT[row.verdict],
    ]);
    out.push(renderPipeTable(header, rows, ["left", "left", "right", "right", "right", "right", "left"]));

    for (const m of comparison.missing) {
        const what = m.metric === undefined ? `task ${m.task}` : `${m.task} ${m.metric}`;
        out.push(`missing: ${what} only in ${m.onlyIn}${options.exact ? " (fails in exact mode)" : ""}`);
    }

    if (report.samples === undefined) {
        out.push("", `samples: ${report.samplesNote}`);
    } else {
        out.push("");
        for (const t of report.samples.tasks) {
            const flips = Object.entries(t.metricChanges).map(([name, n]) => `${name} ${n}`).join(", ");
            const extra = [
                t.logprobChanges > 0 ? `${t.logprobChanges} ll changed (max |Δll| ${t.maxAbsLogprobDelta.toPrecision(3)})` : "",
                flips !== "" ? `metric changes: ${flips}` : "",
                t.onlyInBaseline > 0 ? `${t.onlyInBaseline} only in baseline` : "",
                t.onlyInCurrent > 0 ? `${t.onlyInCurrent} only in current` : "",
            ].filter((s) => s !== "");
            out.push(`samples ${t.task}: ${t.compared} docs compared, ${t.changed} changed${extra.length ? `; ${extra.join("; ")}` : ""}`);
        }
        const shown = report.samples.changed.slice(0, maxDocuments);
        if (shown.length > 0) {
            out.push(`first changed documents (${shown.length} of ${report.samples.changed.length}):`);
            for (const doc of shown) out.push(...formatChangedDocument(doc));
        }
    }

    out.push("", summaryLine(report));
    return out.join("\n");
}

/** "backend cpu → cuda; threads 2 → 16" for the scalar provenance fields both files have and that differ. */
export function provenanceDifferences(report: CompareReport): string {
    const a = report.baseline.provenance;
    const b = report.current.provenance;
    if (a === undefined || b === undefined) return "";
    const diffs: string[] = [];
    for (const [key, value] of Object.entries(a)) {
        const other = b[key];
        const scalar = (v: unknown) => typeof v === "string" || typeof v === "number" || typeof v === "boolean";
        if (!scalar(value) || !scalar(other) || value === other) continue;
        diffs.push(`${key} ${shorten(String(value), 24)} → ${shorten(String(other), 24)}`);
    }
    return diffs.join("; ");
}

/** The last line: OK or what failed. */
export function summaryLine(report: CompareReport): string {
    if (!report.failed) return "OK: no regression";
    const failedRows = report.results.rows.filter((r) => r.failed).map((r) => `${r.task} ${r.metric}`);
    const parts: string[] = [];
    if (report.results.rows.length === 0) parts.push("no task and metric in both files, nothing compared");
    if (failedRows.length > 0) parts.push(`${failedRows.length} metric(s) ${report.results.options.exact ? "changed" : "regressed"}: ${failedRows.join(", ")}`);
    if (report.results.options.exact && report.results.missing.length > 0) parts.push(`${report.results.missing.length} missing`);
    if (report.samplesFailed) parts.push(`${report.samples?.changed.length ?? 0} sample document(s) changed`);
    return `FAIL: ${parts.join("; ")}`;
}

/** How many changes of one document the text report lists. */
const MAX_CHANGES_PER_DOCUMENT = 6;

/** Lines for one changed document: what changed, then its context/continuation shortened. */
export function formatChangedDocument(doc: ChangedDocument): string[] {
    const shown = doc.changes.slice(0, MAX_CHANGES_PER_DOCUMENT).map(describeChange);
    if (doc.changes.length > MAX_CHANGES_PER_DOCUMENT) shown.push(`… ${doc.changes.length - MAX_CHANGES_PER_DOCUMENT} more`);
    const what = shown.join("; ");
    const lines = [`  ${doc.task} doc ${doc.docId}${doc.filter !== "none" ? ` [${doc.filter}]` : ""}: ${what}`];
    if (doc.firstRequest !== undefined) lines.push(`      ${shortRequest(doc.firstRequest)}`);
    return lines;
}

function describeChange(change: SampleChange): string {
    switch (change.kind) {
        case "arguments":
            return `request ${change.index} arguments differ (${change.baseline ? shortRequest(change.baseline) : "absent"} → ${change.current ? shortRequest(change.current) : "absent"})`;
        case "logprob":
            return `ll[${change.index}] ${change.baseline} → ${change.current}`;
        case "is_greedy":
            return `is_greedy[${change.index}] ${change.baseline} → ${change.current}`;
        case "response":
            return `resp[${change.index}] ${shorten(change.baseline, 30)} → ${shorten(change.current, 30)}`;
        case "metric":
            return `${change.name} ${change.baseline ?? "absent"} → ${change.current ?? "absent"}`;
        case "hash":
            return `${change.name} ${change.baseline.slice(0, 8)} → ${change.current.slice(0, 8)}`;
    }
}

/** `"…end of the context" ⟶ " continuation"`, newlines escaped, both shortened. */
export function shortRequest(request: SampleRequest): string {
    const context = JSON.stringify(tail(request.context, 60));
    const continuation = JSON.stringify(shorten(request.continuation, 40));
    return `${context} ⟶ ${continuation}`;
}

function tail(text: string, max: number): string {
    const chars = [...text];
    return chars.length <= max ? text : `…${chars.slice(chars.length - max + 1).join("")}`;
}

function shorten(text: string, max: number): string {
    const chars = [...text];
    return chars.length <= max ? text : `${chars.slice(0, max - 1).join("")}…`;
}

function formatValue(row: MetricComparison, side: "baseline" | "current", exact: boolean): string {
    const v = row[side];
    const differs = row.baseline.value !== row.current.value;
    const value = exact && differs ? String(v.value) : v.value.toFixed(4);
    const se = v.stderr === null ? "N/A" : exact && row.baseline.stderr !== row.current.stderr ? String(v.stderr) : v.stderr.toFixed(4);
    return `${value} ± ${se}`;
}

function formatDelta(delta: number): string {
    if (delta === 0) return "0";
    if (!Number.isFinite(delta)) return String(delta);
    return signed(Math.abs(delta) < 1e-4 ? delta.toExponential(2) : delta.toFixed(4));
}

function signed(text: string): string {
    return text.startsWith("-") ? `−${text.slice(1)}` : text === "0.00" ? text : `+${text}`;
}

/** The report as plain JSON (for --json). */
export function compareReportJson(report: CompareReport): unknown {
    return {
        baseline: { path: report.baseline.path, model: report.baseline.modelId ?? null },
        current: { path: report.current.path, model: report.current.modelId ?? null },
        options: report.results.options,
        failed: report.failed,
        metrics: report.results.rows.map((row) => ({
            task: row.task,
            metric: row.metric,
            higher_is_better: row.direction ?? null,
            baseline: row.baseline.value,
            baseline_stderr: row.baseline.stderr,
            current: row.current.value,
            current_stderr: row.current.stderr,
            delta: row.delta,
            stderr: row.stderr,
            delta_over_stderr: row.deltaOverStderr,
            verdict: row.verdict,
            failed: row.failed,
        })),
        missing: report.results.missing.map((m) => ({ task: m.task, metric: m.metric ?? null, only_in: m.onlyIn })),
        samples: report.samples === undefined
            ? { compared: false, note: report.samplesNote }
            : {
                compared: true,
                tasks: report.samples.tasks,
                changed_documents: report.samples.changed.map((doc) => ({
                    task: doc.task,
                    doc_id: doc.docId,
                    filter: doc.filter,
                    changes: doc.changes,
                })),
            },
    };
}
