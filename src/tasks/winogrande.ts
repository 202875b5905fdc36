/**
 * winogrande (lm-eval `winogrande/default.yaml` + `preprocess_winogrande.py`), GPT-3-style partial scoring:
 * with i = index of the first "_" in sentence, each option gives its own context sentence[:i] + option, and
 * both are scored on the same continuation " " + sentence[i+1:].strip(). docToText returns the gold index
 * ({"1": 0, "2": 1}[answer]), which is what marks the task as "multiple input". Metric: acc only.
 */
import { DataFormatError } from "../errors.js";
import { pythonStrip } from "./pythonStrings.js";
import { ACC_ONLY } from "./metricSets.js";
import { stringField } from "./docFields.js";
import { dumpTaskConfig } from "./taskConfig.js";
import type { Doc, TaskSpec } from "./types.js";

const NAME = "winogrande";

function blankIndex(doc: Doc): number {
    const sentence = stringField(doc, "sentence", NAME);
    const index = sentence.indexOf("_");
    if (index < 0) throw new DataFormatError(`winogrande: document field "sentence" has no "_" blank: ${JSON.stringify(sentence)}`);
    return index;
}

/** The winogrande task (winogrande_xl validation). */
export const winogrande: TaskSpec = {
    name: NAME,
    version: 1.0,
    tags: [],
    dataset: { path: "allenai/winogrande", name: "winogrande_xl", evalSplit: "validation" },
    outputType: "multiple_choice",
    docToText: (doc) => {
        const answer = stringField(doc, "answer", NAME);
        if (answer !== "1" && answer !== "2") throw new DataFormatError(`winogrande: document field "answer" must be "1" or "2", got ${JSON.stringify(answer)}`);
        return answer === "1" ? 0 : 1;
    },
    docToTarget: (doc) => pythonStrip(stringField(doc, "sentence", NAME).slice(blankIndex(doc) + 1)),
    docToChoice: (doc) => {
        const head = stringField(doc, "sentence", NAME).slice(0, blankIndex(doc));
        return [head + stringField(doc, "option1", NAME), head + stringField(doc, "option2", NAME)];
    },
    targetDelimiter: " ",
    metrics: ACC_ONLY,
    config: dumpTaskConfig({
        task: NAME,
        dataset_path: "allenai/winogrande",
        dataset_name: "winogrande_xl",
        training_split: "train",
        validation_split: "validation",
        doc_to_text: "!function preprocess_winogrande.doc_to_text",
        doc_to_target: "!function preprocess_winogrande.doc_to_target",
        doc_to_choice: "!function preprocess_winogrande.doc_to_choice",
        output_type: "multiple_choice",
        should_decontaminate: true,
        doc_to_decontamination_query: "sentence",
        metrics: ACC_ONLY,
        version: 1.0,
    }),
};
