/**
 * The helpers the GPU check (scripts/cuda/check.ts) judges the CUDA backend with: they run on every machine,
 * so a wrong comparison can never make the GPU check pass silently.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DataFormatError } from "../../src/errors.js";
import { firstArgmax, logSoftmaxAt, readFloat64Tensors, relativeDifference } from "../../scripts/cuda/referenceFile.js";

const fixtures = path.resolve(import.meta.dirname, "../../fixtures");

describe("comparison helpers", () => {
    it("firstArgmax takes the first of tied maxima, within the given window", () => {
        expect(firstArgmax([1, 3, 3, 2], 0, 4)).toBe(1);
        expect(firstArgmax([9, 1, 3, 3, 2], 1, 4)).toBe(1);
        expect(firstArgmax([-5, -7], 0, 2)).toBe(0);
    });

    it("logSoftmaxAt matches a hand-computed value", () => {
        // softmax([0, ln 3]) = [1/4, 3/4]
        expect(logSoftmaxAt([0, Math.log(3)], 0, 2, 1)).toBeCloseTo(Math.log(0.75), 14);
        expect(logSoftmaxAt([7, 0, Math.log(3)], 1, 2, 0)).toBeCloseTo(Math.log(0.25), 14);
    });

    it("relativeDifference is the norm-wise relative error, and NaN fails", () => {
        expect(relativeDifference([1, 2], [1, 1])).toBeCloseTo(1 / Math.SQRT2, 14);
        expect(relativeDifference([3, 4], [3, 4])).toBe(0);
        expect(relativeDifference([Number.NaN, 1], [1, 1])).toBeNaN();
        expect(relativeDifference([1], [1, 1])).toBeNaN();  // a missing element never counts as equal
    });
});

describe("readFloat64Tensors", () => {
    it("reads a fixture's float64 reference consistently with reference.json", async () => {
        const tensors = await readFloat64Tensors(path.join(fixtures, "neox-mamba1", "reference.safetensors"));
        const logits = tensors.get("logits.story");
        const lse = tensors.get("logsumexp.story");
        const next = tensors.get("next_token_logprobs.story");
        expect(logits?.shape[0]).toBe(3);  // positions [0, 39, 77]
        expect(lse?.shape).toEqual([3]);
        expect(next?.shape).toEqual([77]);  // 78 tokens
        // log-probabilities are ≤ 0 and every listed logit is ≤ its row's log-sum-exp.
        expect(Math.max(...(next?.data ?? [1]))).toBeLessThan(0);
        const cols = logits?.shape[1] ?? 0;
        for (let r = 0; r < 3; r++) {
            const row = Array.from(logits?.data.subarray(r * cols, (r + 1) * cols) ?? []);
            expect(Math.max(...row)).toBeLessThan(lse?.data[r] ?? -Infinity);
        }
    });

    it("refuses a tensor that is not float64, naming the file", async () => {
        const file = path.join(fixtures, "mamba1-hf", "model.safetensors");
        await expect(readFloat64Tensors(file)).rejects.toThrow(DataFormatError);
        await expect(readFloat64Tensors(file)).rejects.toThrow(/model\.safetensors: tensor .* has dtype F32; expected F64/);
    });
});
