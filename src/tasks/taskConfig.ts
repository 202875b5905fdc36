/**
 * Builds the dumped-TaskConfig object lm-eval writes into the results' "configs" section, with TaskConfig's
 * field order and its rule that None-valued top-level fields are dropped. Python functions (lm-eval dumps their
 * source text) are represented by the YAML reference that names them, e.g. "!function utils.process_docs".
 */
import { pyFloat, type JsonLike } from "../io/pyjson.js";
import type { MetricSpec } from "./types.js";

/** The parts of a task's YAML that differ between the six tasks. */
export interface TaskYaml {
    task: string;
    tag?: string[];
    dataset_path: string;
    dataset_name?: string;
    training_split?: string;
    validation_split?: string;
    test_split?: string;
    process_docs?: string;
    doc_to_text: string;
    doc_to_target: string;
    doc_to_choice?: string;
    output_type: "loglikelihood" | "multiple_choice";
    should_decontaminate: boolean;
    doc_to_decontamination_query?: string;
    metrics: readonly MetricSpec[];
    version: number;
}

/** lm-eval's `TaskConfig.to_dict()` for a zero-shot run of the task described by `yaml`. */
export function dumpTaskConfig(yaml: TaskYaml): Record<string, JsonLike> {
    const out: Record<string, JsonLike> = {};
    const put = (key: string, value: JsonLike | undefined): void => {
        if (value !== undefined) out[key] = value;
    };
    put("task", yaml.task);
    put("tag", yaml.tag);
    put("dataset_path", yaml.dataset_path);
    put("dataset_name", yaml.dataset_name);
    put("training_split", yaml.training_split);
    put("validation_split", yaml.validation_split);
    put("test_split", yaml.test_split);
    put("process_docs", yaml.process_docs);
    put("doc_to_text", yaml.doc_to_text);
    put("doc_to_target", yaml.doc_to_target);
    put("unsafe_code", false);
    put("doc_to_choice", yaml.doc_to_choice);
    put("description", "");
    put("target_delimiter", " ");
    put("fewshot_delimiter", "\n\n");
    put("fewshot_config", {
        sampler: "default",
        split: null,
        process_docs: yaml.process_docs ?? null,
        fewshot_indices: null,
        samples: null,
        doc_to_text: yaml.doc_to_text,
        doc_to_choice: yaml.doc_to_choice ?? null,
        doc_to_target: yaml.doc_to_target,
        gen_prefix: null,
        fewshot_delimiter: "\n\n",
        target_delimiter: " ",
    });
    put("num_fewshot", 0);
    put(
        "metric_list",
        yaml.metrics.map((m) => ({ metric: m.name, aggregation: m.aggregation, higher_is_better: m.higherIsBetter })),
    );
    put("output_type", yaml.output_type);
    put("repeats", 1);
    put("should_decontaminate", yaml.should_decontaminate);
    put("doc_to_decontamination_query", yaml.doc_to_decontamination_query);
    put("metadata", { version: pyFloat(yaml.version) });
    return out;
}
