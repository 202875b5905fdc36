/**
 * openbookqa (lm-eval `openbookqa/openbookqa.yaml`): elementary science questions, four choices each.
 * Dataset allenai/openbookqa, config main, split test (500 questions). Context = question_stem as is (no prompt
 * around it), choices = choices.text, target = choices.label.index(answerKey.lstrip()). Metrics acc and acc_norm;
 * the Mamba-2 paper reports acc_norm.
 */
import { DataFormatError } from "../errors.js";
import { ACC_AND_ACC_NORM } from "./metricSets.js";
import { objectField, stringField, stringListField } from "./docFields.js";
import { pythonLstrip } from "./pythonStrings.js";
import { dumpTaskConfig } from "./taskConfig.js";
import type { Doc, TaskSpec } from "./types.js";

const NAME = "openbookqa";
const DATASET_PATH = "allenai/openbookqa";

const choices = (doc: Doc) => objectField(doc, "choices", NAME);

/** The openbookqa task (OpenBookQA main test). */
export const openbookqa: TaskSpec = {
    name: NAME,
    version: 1.0,
    tags: [],
    dataset: { path: DATASET_PATH, name: "main", evalSplit: "test" },
    outputType: "multiple_choice",
    docToText: (doc) => stringField(doc, "question_stem", NAME),
    docToTarget: (doc) => {
        const labels = stringListField(choices(doc), "label", NAME);
        const answerKey = pythonLstrip(stringField(doc, "answerKey", NAME));
        const index = labels.indexOf(answerKey);
        if (index < 0) {
            throw new DataFormatError(
                `${NAME}: answerKey ${JSON.stringify(answerKey)} of document ${JSON.stringify(doc["id"])} is not one of its choice labels ${JSON.stringify(labels)}`,
            );
        }
        return index;
    },
    docToChoice: (doc) => stringListField(choices(doc), "text", NAME),
    targetDelimiter: " ",
    metrics: ACC_AND_ACC_NORM,
    config: dumpTaskConfig({
        task: NAME,
        dataset_path: DATASET_PATH,
        dataset_name: "main",
        training_split: "train",
        validation_split: "validation",
        test_split: "test",
        doc_to_text: "question_stem",
        doc_to_target: "{{choices.label.index(answerKey.lstrip())}}",
        doc_to_choice: "{{choices.text}}",
        output_type: "multiple_choice",
        should_decontaminate: true,
        doc_to_decontamination_query: "question_stem",
        metrics: ACC_AND_ACC_NORM,
        version: 1.0,
    }),
};
