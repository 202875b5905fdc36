import { expect, it } from "vitest";
import { loadTaskDocs } from "../../src/tasks/datasets.js";
import { getTask } from "../../src/tasks/registry.js";
import { sharedData } from "./helpers.js";
import { describeWithData } from "../testData.js";

describeWithData("--data_dir with only the derived HellaSwag text", () => {
    it("explains that the derived form cannot give lm-eval's prompts, instead of a bare ENOENT", async () => {
        await expect(loadTaskDocs(getTask("hellaswag"), { dataDir: sharedData })).rejects.toThrow(
            /hellaswag_val\.jsonl: cannot read the data file \(ENOENT\); the folder only has hellaswag_val_full\.txt\.bz2, a derived form/,
        );
    });
});
