/**
 * The shape of a task: lm-eval's TaskConfig for the six Table-3 tasks, as declarative data plus small functions.
 *
 * A task turns documents (rows in the Hugging Face dataset's schema, after `processDoc`) into a context, a target
 * and (for multiple choice) a list of choices. Tasks never see tokens. `config` mirrors what lm-eval dumps into the
 * results' "configs" section.
 */
import type { AggregationName } from "../metrics/metrics.js";
import type { JsonLike } from "../io/pyjson.js";

/** A JSON value as the HF dataset row holds it (ints stay integral numbers). */
export type DocValue = string | number | boolean | null | DocValue[] | { [key: string]: DocValue };

/** One document: a dataset row in the HF schema, keys in the dataset's column order. */
export type Doc = { [key: string]: DocValue };

/** lm-eval output types used by these tasks. */
export type OutputType = "loglikelihood" | "multiple_choice";

/** One entry of a task's metric_list. */
export interface MetricSpec {
    /** Metric name as reported ("acc", "acc_norm", "perplexity"). */
    name: "acc" | "acc_norm" | "perplexity";
    aggregation: AggregationName;
    higherIsBetter: boolean;
    /**
     * Python type of the per-document value lm-eval logs: multiple-choice acc/acc_norm are floats (1.0/0.0),
     * lambada's acc is an int (0/1), perplexity items are the float log-likelihoods.
     */
    itemType: "float" | "int";
}

/** Where the task's documents live on the Hugging Face hub (lm-eval's dataset_path / dataset_name / splits). */
export interface DatasetSpec {
    /** HF dataset repo id (lm-eval main's `dataset_path`). */
    path: string;
    /** HF config (`dataset_name`); null means the dataset's default config. */
    name: string | null;
    /** The split lm-eval evaluates: test if configured, else validation. */
    evalSplit: string;
}

/** A task definition. */
export interface TaskSpec {
    /** Registry key, lm-eval's task name. */
    name: string;
    /** `metadata.version`. */
    version: number;
    /** Tags (lm-eval `tag:`) that select this task. */
    tags: readonly string[];
    dataset: DatasetSpec;
    outputType: OutputType;
    /** lm-eval's `process_docs`, applied to each raw HF row (order-preserving, one row in → one doc out). */
    processDoc?: (row: Doc) => Doc;
    /** Zero-shot context; a number means "multiple input" (winogrande): the gold index, contexts come from docToChoice. */
    docToText: (doc: Doc) => string | number;
    /** Target: the gold choice index (multiple choice) or the continuation string. */
    docToTarget: (doc: Doc) => string | number;
    /** Choices without the delimiter (multiple choice only; contexts in multiple-input mode). */
    docToChoice?: (doc: Doc) => string[];
    /** Always " " for these tasks. */
    targetDelimiter: string;
    metrics: readonly MetricSpec[];
    /** lm-eval's dumped TaskConfig for the results' "configs" section (num_fewshot is filled in at run time). */
    config: Readonly<Record<string, JsonLike>>;
}
