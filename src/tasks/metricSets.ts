/** The metric lists the six tasks declare (lm-eval YAML `metric_list`). */
import type { MetricSpec } from "./types.js";

/** acc + acc_norm, both mean, higher is better (hellaswag, piqa, arc). */
export const ACC_AND_ACC_NORM: readonly MetricSpec[] = [
    { name: "acc", aggregation: "mean", higherIsBetter: true, itemType: "float" },
    { name: "acc_norm", aggregation: "mean", higherIsBetter: true, itemType: "float" },
];

/** acc only (winogrande). */
export const ACC_ONLY: readonly MetricSpec[] = [{ name: "acc", aggregation: "mean", higherIsBetter: true, itemType: "float" }];

/** perplexity (lower is better) + acc of the greedy continuation (lambada_openai). */
export const PERPLEXITY_AND_ACC: readonly MetricSpec[] = [
    { name: "perplexity", aggregation: "perplexity", higherIsBetter: false, itemType: "float" },
    { name: "acc", aggregation: "mean", higherIsBetter: true, itemType: "int" },
];
