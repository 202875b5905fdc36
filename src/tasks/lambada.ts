/**
 * lambada_openai (lm-eval `lambada/lambada_openai.yaml`): predict the last word of a passage.
 * Context = text.split(" ")[:-1] joined by " "; target = " " + last piece. The split is on the single space
 * character exactly (Python `str.split(' ')`), so a double space leaves an empty piece and a trailing space.
 */
import { PERPLEXITY_AND_ACC } from "./metricSets.js";
import { stringField } from "./docFields.js";
import { dumpTaskConfig } from "./taskConfig.js";
import type { Doc, TaskSpec } from "./types.js";

const NAME = "lambada_openai";

function words(doc: Doc): string[] {
    return stringField(doc, "text", NAME).split(" ");
}

/** The lambada_openai task. */
export const lambadaOpenai: TaskSpec = {
    name: NAME,
    version: 1.0,
    tags: ["lambada"],
    dataset: { path: "EleutherAI/lambada_openai", name: "default", evalSplit: "test" },
    outputType: "loglikelihood",
    docToText: (doc) => words(doc).slice(0, -1).join(" "),
    docToTarget: (doc) => " " + words(doc).at(-1)!,
    targetDelimiter: " ",
    metrics: PERPLEXITY_AND_ACC,
    config: dumpTaskConfig({
        task: NAME,
        tag: ["lambada"],
        dataset_path: "EleutherAI/lambada_openai",
        dataset_name: "default",
        test_split: "test",
        doc_to_text: "{{text.split(' ')[:-1]|join(' ')}}",
        doc_to_target: "{{' '+text.split(' ')[-1]}}",
        output_type: "loglikelihood",
        should_decontaminate: true,
        doc_to_decontamination_query: "{{text}}",
        metrics: PERPLEXITY_AND_ACC,
        version: 1.0,
    }),
};
