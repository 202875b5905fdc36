/**
 * piqa (lm-eval `piqa/piqa.yaml`): physical commonsense, two solutions per goal.
 * Context "Question: " + goal + "\nAnswer:", choices [sol1, sol2] (kept byte-exact, trailing spaces included),
 * target = the integer label column.
 */
import { ACC_AND_ACC_NORM } from "./metricSets.js";
import { intField, stringField } from "./docFields.js";
import { dumpTaskConfig } from "./taskConfig.js";
import type { TaskSpec } from "./types.js";

const NAME = "piqa";

/** The piqa task. */
export const piqa: TaskSpec = {
    name: NAME,
    version: 1.0,
    tags: [],
    dataset: { path: "baber/piqa", name: null, evalSplit: "validation" },
    outputType: "multiple_choice",
    docToText: (doc) => "Question: " + stringField(doc, "goal", NAME) + "\nAnswer:",
    docToTarget: (doc) => intField(doc, "label", NAME),
    docToChoice: (doc) => [stringField(doc, "sol1", NAME), stringField(doc, "sol2", NAME)],
    targetDelimiter: " ",
    metrics: ACC_AND_ACC_NORM,
    config: dumpTaskConfig({
        task: NAME,
        dataset_path: "baber/piqa",
        training_split: "train",
        validation_split: "validation",
        doc_to_text: "Question: {{goal}}\nAnswer:",
        doc_to_target: "label",
        doc_to_choice: "{{[sol1, sol2]}}",
        output_type: "multiple_choice",
        should_decontaminate: true,
        doc_to_decontamination_query: "goal",
        metrics: ACC_AND_ACC_NORM,
        version: 1.0,
    }),
};
