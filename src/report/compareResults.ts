/**
 * Metric-by-metric comparison of two results runs (pure). A difference is a regression when it moves in
 * the worse direction by more than k combined standard errors AND more than an absolute floor:
 *   se = sqrt(se_baseline² + se_current²) over the standard errors the files have (a missing or "N/A"
 *   one contributes nothing; with none at all only the floor applies).
 * In exact mode any difference at all (value or stderr), and any metric present on one side only, fails. In either
 * mode a comparison with no metric in both runs fails.
 */
import { metricDirection, type Direction } from "./metricDirection.js";
import { splitMetricKey, type MetricValue, type ResultsRun } from "./resultsFile.js";

/** Thresholds of a comparison. */
export interface CompareOptions {
    /** How many combined standard errors a worse difference must exceed (default 2). */
    k: number;
    /** The absolute amount a worse difference must exceed, in the metric's units (default 0.001). */
    floor: number;
    /** Fail on any difference at all (CI baselines whose numbers must not move). */
    exact: boolean;
}

export const DEFAULT_COMPARE_OPTIONS: CompareOptions = { k: 2, floor: 0.001, exact: false };

/**
 * same: identical; within-noise: not beyond the thresholds; improved: better beyond them;
 * regression: worse beyond them; changed: moved with no known direction, or any move in exact mode.
 */
export type Verdict = "same" | "within-noise" | "improved" | "regression" | "changed";

/** One task × metric present in both runs. */
export interface MetricComparison {
    task: string;
    /** The metric key as in the file, e.g. "acc_norm,none". */
    metric: string;
    baseline: MetricValue;
    current: MetricValue;
    /** current − baseline. */
    delta: number;
    /** Combined standard error, or null when neither file has one. */
    stderr: number | null;
    /** delta / stderr, or null without a stderr. */
    deltaOverStderr: number | null;
    direction: Direction;
    verdict: Verdict;
    /** This row makes the comparison fail. */
    failed: boolean;
}

/** A task × metric found in one run only. */
export interface MissingMetric {
    task: string;
    /** The metric key, or undefined when the whole task is missing. */
    metric: string | undefined;
    onlyIn: "baseline" | "current";
}

export interface ResultsComparison {
    options: CompareOptions;
    rows: MetricComparison[];
    missing: MissingMetric[];
    /** Some row failed, nothing could be compared, or (exact mode) something is missing. */
    failed: boolean;
}

/** Compares every task × metric present in both runs, in the baseline's order. */
export function compareResults(baseline: ResultsRun, current: ResultsRun, options: CompareOptions): ResultsComparison {
    const rows: MetricComparison[] = [];
    const missing: MissingMetric[] = [];
    for (const [task, baseMetrics] of baseline.tasks) {
        const curMetrics = current.tasks.get(task);
        if (curMetrics === undefined) {
            missing.push({ task, metric: undefined, onlyIn: "baseline" });
            continue;
        }
        for (const [metric, base] of baseMetrics) {
            const cur = curMetrics.get(metric);
            if (cur === undefined) {
                missing.push({ task, metric, onlyIn: "baseline" });
                continue;
            }
            const direction = metricDirection(task, splitMetricKey(metric).metric, baseline, current);
            rows.push(compareMetric(task, metric, base, cur, direction, options));
        }
        for (const metric of curMetrics.keys()) {
            if (!baseMetrics.has(metric)) missing.push({ task, metric, onlyIn: "current" });
        }
    }
    for (const task of current.tasks.keys()) {
        if (!baseline.tasks.has(task)) missing.push({ task, metric: undefined, onlyIn: "current" });
    }
    // No metric in both runs (a run that produced no results, another task set) is no evidence of "no regression".
    const failed = rows.length === 0 || rows.some((row) => row.failed) || (options.exact && missing.length > 0);
    return { options, rows, missing, failed };
}

/** The verdict for one metric. */
export function compareMetric(
    task: string,
    metric: string,
    baseline: MetricValue,
    current: MetricValue,
    direction: Direction,
    options: CompareOptions,
): MetricComparison {
    const delta = current.value - baseline.value;
    const stderr = combinedStderr(baseline.stderr, current.stderr);
    const deltaOverStderr = stderr === null || stderr === 0 || !Number.isFinite(delta) ? null : delta / stderr;
    const row = { task, metric, baseline, current, delta, stderr, deltaOverStderr, direction };
    const verdict = verdictOf(baseline, current, delta, stderr, direction, options);
    const failed = verdict === "regression" || verdict === "changed";
    return { ...row, verdict, failed };
}

function verdictOf(
    baseline: MetricValue,
    current: MetricValue,
    delta: number,
    stderr: number | null,
    direction: Direction,
    options: CompareOptions,
): Verdict {
    const valueSame = Object.is(baseline.value, current.value) || baseline.value === current.value;
    if (options.exact) {
        const stderrSame = Object.is(baseline.stderr, current.stderr) || baseline.stderr === current.stderr;
        return valueSame && stderrSame ? "same" : "changed";
    }
    if (valueSame) return "same";
    // A value that became or stopped being finite cannot be weighed against noise.
    if (!Number.isFinite(delta)) return direction === undefined ? "changed" : "regression";
    const beyond = (amount: number) => amount > options.floor && (stderr === null || amount > options.k * stderr);
    if (direction === undefined) return beyond(Math.abs(delta)) ? "changed" : "within-noise";
    const worse = direction ? -delta : delta;
    if (beyond(worse)) return "regression";
    if (beyond(-worse)) return "improved";
    return "within-noise";
}

/** sqrt(a² + b²) over the standard errors that exist; null when neither does. */
export function combinedStderr(a: number | null, b: number | null): number | null {
    const present = [a, b].filter((se): se is number => se !== null && Number.isFinite(se));
    if (present.length === 0) return null;
    return Math.sqrt(present.reduce((sum, se) => sum + se * se, 0));
}
