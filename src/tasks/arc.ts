/**
 * arc_easy / arc_challenge (lm-eval `arc/arc_easy.yaml`, `arc_challenge.yaml`; tag ai2_arc).
 * Context "Question: " + question + "\nAnswer:", choices = choices.text, target = choices.label.index(answerKey)
 * (labels are A–E or 1–5; 3 to 5 choices occur).
 */
import { DataFormatError } from "../errors.js";
import { ACC_AND_ACC_NORM } from "./metricSets.js";
import { objectField, stringField, stringListField } from "./docFields.js";
import { dumpTaskConfig } from "./taskConfig.js";
import type { Doc, TaskSpec } from "./types.js";

function makeArcTask(name: string, config: "ARC-Easy" | "ARC-Challenge"): TaskSpec {
    const choices = (doc: Doc) => objectField(doc, "choices", name);
    return {
        name,
        version: 1.0,
        tags: ["ai2_arc"],
        dataset: { path: "allenai/ai2_arc", name: config, evalSplit: "test" },
        outputType: "multiple_choice",
        docToText: (doc) => "Question: " + stringField(doc, "question", name) + "\nAnswer:",
        docToTarget: (doc) => {
            const labels = stringListField(choices(doc), "label", name);
            const answerKey = stringField(doc, "answerKey", name);
            const index = labels.indexOf(answerKey);
            if (index < 0) {
                throw new DataFormatError(
                    `${name}: answerKey ${JSON.stringify(answerKey)} of document ${JSON.stringify(doc["id"])} is not one of its choice labels ${JSON.stringify(labels)}`,
                );
            }
            return index;
        },
        docToChoice: (doc) => stringListField(choices(doc), "text", name),
        targetDelimiter: " ",
        metrics: ACC_AND_ACC_NORM,
        config: dumpTaskConfig({
            task: name,
            tag: ["ai2_arc"],
            dataset_path: "allenai/ai2_arc",
            dataset_name: config,
            training_split: "train",
            validation_split: "validation",
            test_split: "test",
            doc_to_text: "Question: {{question}}\nAnswer:",
            doc_to_target: "{{choices.label.index(answerKey)}}",
            doc_to_choice: "{{choices.text}}",
            output_type: "multiple_choice",
            should_decontaminate: true,
            doc_to_decontamination_query: "Question: {{question}}\nAnswer:",
            metrics: ACC_AND_ACC_NORM,
            version: 1.0,
        }),
    };
}

/** The arc_easy task (ARC-Easy test). */
export const arcEasy: TaskSpec = makeArcTask("arc_easy", "ARC-Easy");
/** The arc_challenge task (ARC-Challenge test). */
export const arcChallenge: TaskSpec = makeArcTask("arc_challenge", "ARC-Challenge");
