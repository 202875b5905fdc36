import { describe, expect, it } from "vitest";
import { TaskError } from "../../src/errors.js";
import { getTask, listTasks, resolveTaskNames } from "../../src/tasks/registry.js";

describe("task registry", () => {
    it("knows the six tasks with lm-eval's datasets and splits", () => {
        expect(listTasks().filter((t) => t.kind === "task").map((t) => t.name)).toEqual(["lambada_openai", "hellaswag", "piqa", "arc_easy", "arc_challenge", "winogrande"]);
        expect(getTask("hellaswag").dataset).toEqual({ path: "Rowan/hellaswag", name: null, evalSplit: "validation" });
        expect(getTask("winogrande").dataset).toEqual({ path: "allenai/winogrande", name: "winogrande_xl", evalSplit: "validation" });
        expect(getTask("lambada_openai").config["doc_to_text"]).toBe("{{text.split(' ')[:-1]|join(' ')}}");
    });

    it("expands the ai2_arc tag and removes duplicates in first-seen order", () => {
        expect(resolveTaskNames(["piqa", "ai2_arc", "arc_easy"]).map((t) => t.name)).toEqual(["piqa", "arc_easy", "arc_challenge"]);
    });

    it("rejects unknown names with a suggestion", () => {
        expect(() => getTask("hellaswg")).toThrow(TaskError);
        expect(() => getTask("hellaswg")).toThrow(/unknown task "hellaswg" \(did you mean "hellaswag"\?\)/);
    });
});
