import path from "node:path";
import { describe, expect, it } from "vitest";
import { RunMemo } from "../../src/evaluator/runMemo.js";
import { buildPrefixTree } from "../../src/lm/prefixTree.js";
import { evaluate } from "../../src/evaluator/evaluate.js";
import { getTask } from "../../src/tasks/registry.js";
import { MambaLM } from "../../src/lm/MambaLM.js";
import { NativeBackend } from "../../src/backend/NativeBackend.js";
import { loadCheckpoint } from "../../src/model/loadModel.js";
import { neoxTokenizer, repoRoot } from "../e2e/helpers.js";

describe("RunMemo", () => {
    it("loads the documents of a key once, again for another key, and retries a failed load", async () => {
        const memo = new RunMemo();
        let loads = 0;
        const load = async () => [{ n: ++loads }];
        expect(await memo.documents("a", load)).toEqual([{ n: 1 }]);
        expect(await memo.documents("a", load)).toEqual([{ n: 1 }]);
        expect(await memo.documents("b", load)).toEqual([{ n: 2 }]);
        await expect(memo.documents("c", async () => { throw new Error("disk"); })).rejects.toThrow("disk");
        expect(await memo.documents("c", load)).toEqual([{ n: 3 }]);
    });

    it("reuses token requests only for an equal request list under the same key", async () => {
        const memo = new RunMemo();
        let encodes = 0;
        const encode = async () => [{ tokens: [++encodes], nScored: 1 }];
        const list = [{ context: "a", continuation: " b" }];
        const first = await memo.tokenRequests("k", list, encode);
        expect(await memo.tokenRequests("k", [{ context: "a", continuation: " b" }], encode)).toBe(first);
        expect(encodes).toBe(1);
        await memo.tokenRequests("k", [{ context: "a", continuation: " c" }], encode);
        await memo.tokenRequests("other", list, encode);
        expect(encodes).toBe(3);
    });

    it("builds the prefix tree of a request array once per share setting, as buildPrefixTree does", () => {
        const memo = new RunMemo();
        const requests = [{ tokens: [1, 2, 3, 4], nScored: 1 }, { tokens: [1, 2, 5], nScored: 1 }];
        const shared = memo.prefixTree(requests, true);
        expect(memo.prefixTree(requests, true)).toBe(shared);
        expect(shared).toEqual(buildPrefixTree(requests, true));
        expect(memo.prefixTree(requests, false)).toEqual(buildPrefixTree(requests, false));
        expect(memo.prefixTree([...requests], true)).not.toBe(shared);  // another array: built again
    });

    it("gives two models of one run the results each gets alone, tokenising once", async () => {
        const tokenizer = await neoxTokenizer();
        let batches = 0;
        const counting = { ...tokenizer, encodeBatch: (texts: readonly string[]) => (batches++, tokenizer.encodeBatch(texts)) };
        const tasks = [getTask("piqa"), getTask("arc_easy")];
        const dataDir = path.join(repoRoot, "fixtures", "tasks");
        const run = async (name: string, memo: RunMemo | undefined) => {
            const backend = await NativeBackend.create(await loadCheckpoint(path.join(repoRoot, "fixtures", name)), { device: "cpu", threads: 1, weightType: "f32" });
            try {
                const lm = new MambaLM(backend, counting, memo ? { memo } : {});
                const out = await evaluate(lm, { tasks, limit: 6, dataDir, bootstrapIters: 0, ...(memo ? { memo } : {}) });
                return out.map((t) => t.answers);
            } finally {
                await backend[Symbol.asyncDispose]();
            }
        };
        const alone1 = await run("neox-mamba1", undefined);
        const alone2 = await run("neox-mamba2", undefined);
        const before = batches;
        const memo = new RunMemo();
        expect(await run("neox-mamba1", memo)).toEqual(alone1);
        const afterFirst = batches;
        expect(await run("neox-mamba2", memo)).toEqual(alone2);
        expect(afterFirst).toBeGreaterThan(before);
        expect(batches).toBe(afterFirst);  // the second model reused the first one's token requests
    });
});
