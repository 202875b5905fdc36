/**
 * hellaswag (lm-eval `hellaswag/hellaswag.yaml` + `utils.py`): pick the ending of a video/WikiHow context.
 * process_docs keeps the HF row and appends query, choices and gold:
 *   query   = preprocess(activity_label + ": " + ctx_a + " " + capitalize(ctx_b))
 *   choices = endings.map(preprocess); gold = int(label)
 * preprocess, in this order: strip; replace every " [title]" with ". "; delete every non-greedy "[...]" (not
 * across newlines); replace "  " with " " in one left-to-right pass. capitalize is Python's str.capitalize().
 */
import { ACC_AND_ACC_NORM } from "./metricSets.js";
import { DataFormatError } from "../errors.js";
import { stringField, stringListField } from "./docFields.js";
import { pythonCapitalize, pythonStrip } from "./pythonStrings.js";
import { dumpTaskConfig } from "./taskConfig.js";
import type { Doc, TaskSpec } from "./types.js";

const NAME = "hellaswag";

/** lm-eval's hellaswag `preprocess`. */
export function hellaswagPreprocess(text: string): string {
    let out = pythonStrip(text);
    out = out.replaceAll(" [title]", ". ");
    out = out.replace(/\[[^\n]*?\]/g, ""); // Python's "." stops only at "\n"
    out = out.replaceAll("  ", " ");
    return out;
}

/** lm-eval's hellaswag `process_docs` for one row: the row's own fields followed by query, choices, gold. */
export function hellaswagProcessDoc(row: Doc): Doc {
    const ctx = stringField(row, "ctx_a", NAME) + " " + pythonCapitalize(stringField(row, "ctx_b", NAME));
    const label = stringField(row, "label", NAME);
    if (!/^[0-9]+$/.test(label)) throw new DataFormatError(`hellaswag: document field "label" must be a digit string, got ${JSON.stringify(label)}`);
    return {
        ...row,
        query: hellaswagPreprocess(stringField(row, "activity_label", NAME) + ": " + ctx),
        choices: stringListField(row, "endings", NAME).map(hellaswagPreprocess),
        gold: Number.parseInt(label, 10),
    };
}

/** The hellaswag task. */
export const hellaswag: TaskSpec = {
    name: NAME,
    version: 1.0,
    tags: ["multiple_choice"],
    dataset: { path: "Rowan/hellaswag", name: null, evalSplit: "validation" },
    outputType: "multiple_choice",
    processDoc: hellaswagProcessDoc,
    docToText: (doc) => stringField(doc, "query", NAME),
    // "{{label}}" renders the string label; all digits, so lm-eval turns it into an int.
    docToTarget: (doc) => Number.parseInt(stringField(doc, "label", NAME), 10),
    docToChoice: (doc) => stringListField(doc, "choices", NAME),
    targetDelimiter: " ",
    metrics: ACC_AND_ACC_NORM,
    config: dumpTaskConfig({
        task: NAME,
        tag: ["multiple_choice"],
        dataset_path: "Rowan/hellaswag",
        training_split: "train",
        validation_split: "validation",
        process_docs: "!function utils.process_docs",
        doc_to_text: "{{query}}",
        doc_to_target: "{{label}}",
        doc_to_choice: "choices",
        output_type: "multiple_choice",
        should_decontaminate: false,
        metrics: ACC_AND_ACC_NORM,
        version: 1.0,
    }),
};
