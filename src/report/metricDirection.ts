/**
 * Which way is better for a metric. The file's own higher_is_better (v0.4.3+) wins; for files without
 * it (lm-eval v0.4.2) the lm-eval defaults of the metrics are used; an unknown metric has no direction.
 */
import type { ResultsRun } from "./resultsFile.js";

/** lm-eval's higher_is_better for the metrics it registers (lm_eval/api/metrics.py). */
const KNOWN_DIRECTIONS: Record<string, boolean> = {
    acc: true,
    acc_norm: true,
    acc_mutual_info: true,
    acc_bytes: true,
    exact_match: true,
    f1: true,
    mcc: true,
    bleu: true,
    chrf: true,
    perplexity: false,
    word_perplexity: false,
    byte_perplexity: false,
    bits_per_byte: false,
    ter: false,
};

/** true = higher is better, false = lower is better, undefined = unknown. */
export type Direction = boolean | undefined;

/** The direction of `metric` (name without filter) of `task`, from either run or the defaults. */
export function metricDirection(task: string, metric: string, ...runs: ResultsRun[]): Direction {
    for (const run of runs) {
        const hib = run.higherIsBetter.get(task)?.get(metric);
        if (hib !== undefined) return hib;
    }
    return KNOWN_DIRECTIONS[metric];
}
