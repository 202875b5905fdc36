import { describe, expect, it } from "vitest";
import { TaskError } from "../../src/errors.js";
import { formatTaskList } from "../../src/cli/lsCommand.js";
import { getTask, listTasks, resolveTaskNames } from "../../src/tasks/registry.js";

describe("task registry", () => {
    it("knows the seven tasks with lm-eval's datasets and splits", () => {
        expect(listTasks().filter((t) => t.kind === "task").map((t) => t.name)).toEqual(["lambada_openai", "hellaswag", "piqa", "arc_easy", "arc_challenge", "winogrande", "openbookqa"]);
        expect(getTask("hellaswag").dataset).toEqual({ path: "Rowan/hellaswag", name: null, evalSplit: "validation" });
        expect(getTask("winogrande").dataset).toEqual({ path: "allenai/winogrande", name: "winogrande_xl", evalSplit: "validation" });
        expect(getTask("lambada_openai").config["doc_to_text"]).toBe("{{text.split(' ')[:-1]|join(' ')}}");
        expect(getTask("openbookqa").dataset).toEqual({ path: "allenai/openbookqa", name: "main", evalSplit: "test" });
        expect(listTasks().find((t) => t.name === "openbookqa")).toEqual({
            name: "openbookqa", kind: "task", description: "allenai/openbookqa/main test (multiple_choice)", metrics: ["acc", "acc_norm"],
        });
    });

    it("openbookqa's dumped config is lm-eval main's openbookqa.yaml (metadata version 1.0, no tag)", () => {
        const config = getTask("openbookqa").config;
        expect(config).toMatchObject({
            task: "openbookqa", dataset_path: "allenai/openbookqa", dataset_name: "main",
            training_split: "train", validation_split: "validation", test_split: "test",
            doc_to_text: "question_stem", doc_to_target: "{{choices.label.index(answerKey.lstrip())}}", doc_to_choice: "{{choices.text}}",
            output_type: "multiple_choice", should_decontaminate: true, doc_to_decontamination_query: "question_stem",
            metric_list: [
                { metric: "acc", aggregation: "mean", higher_is_better: true },
                { metric: "acc_norm", aggregation: "mean", higher_is_better: true },
            ],
        });
        expect(config["tag"]).toBeUndefined();
        expect(getTask("openbookqa").version).toBe(1.0);
    });

    it("mamba-eval ls lists openbookqa with its dataset, split and metrics", () => {
        expect(formatTaskList().split("\n")).toContain("openbookqa      allenai/openbookqa/main test (multiple_choice)  metrics: acc, acc_norm");
    });

    it("expands the ai2_arc tag and removes duplicates in first-seen order", () => {
        expect(resolveTaskNames(["piqa", "ai2_arc", "arc_easy"]).map((t) => t.name)).toEqual(["piqa", "arc_easy", "arc_challenge"]);
    });

    it("rejects unknown names with a suggestion", () => {
        expect(() => getTask("hellaswg")).toThrow(TaskError);
        expect(() => getTask("hellaswg")).toThrow(/unknown task "hellaswg" \(did you mean "hellaswag"\?\)/);
    });
});
