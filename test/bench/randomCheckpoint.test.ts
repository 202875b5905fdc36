/**
 * The bench's random checkpoints (bench/randomCheckpoint.ts) at the hybrid shapes: the tensors planned and written
 * are exactly those the project's own config parser and weight map expect of a checkpoint with that config (the
 * checkpoint folder, config.json in mamba_ssm layout beside the written file, goes through loadCheckpoint), the
 * addon spec the bench builds is the one the CLI builds from that config, and one score() call gives finite
 * log-probs. Also: the GEMM flops of every bench shape are 2 × the weights of its matrix products plus the LM head.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NativeBackend, nativeSpecFromCheckpoint } from "../../src/backend/NativeBackend.js";
import { loadCheckpoint } from "../../src/model/loadModel.js";
import type { Checkpoint, TensorSource } from "../../src/model/types.js";
import { expectedTensorShapes } from "../../src/model/weightMap.js";
import { fullScoreBatch, tokenStream } from "../../bench/modelBench.js";
import {
    MAMBA2ATTN_130M, MAMBA2_130M, MAMBA_130M, MAMBA_1_4B, MAMBA_370M, MAMBA_790M, TRANSFORMERPP_130M, attentionFlopsPerToken,
    benchSpec, flopsPerToken, gemmFlopsPerToken, mambaSsmConfig, plannedTensors, randomCheckpoint, type BenchShape,
} from "../../bench/randomCheckpoint.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-bench-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** name → shape, for comparing tensor lists whatever their order. */
const shapesByName = (tensors: readonly { name: string; shape: readonly number[] }[]): Map<string, readonly number[]> =>
    new Map(tensors.map((t) => [t.name, t.shape]));

describe.each([MAMBA2ATTN_130M, TRANSFORMERPP_130M])("bench checkpoint $name", (shape) => {
    let written: TensorSource[];
    let checkpoint: Checkpoint;
    beforeAll(async () => {
        // A checkpoint folder of this shape: the bench's file (≈ 500 MB, written in a few seconds) and its config.json.
        const dir = path.join(tmp, shape.name);
        mkdirSync(dir);
        written = randomCheckpoint(shape, path.join(dir, "model.safetensors"));
        writeFileSync(path.join(dir, "config.json"), JSON.stringify(mambaSsmConfig(shape)));
        checkpoint = await loadCheckpoint(dir);  // refuses any tensor missing, unexpected or of another shape
    });

    it("plans exactly the tensors the config parser and weight map expect", () => {
        const c = checkpoint.config;
        expect(c.attention?.layers).toEqual(shape.hybrid!.attnLayers);
        expect(c.dIntermediate ?? 0).toBe(shape.hybrid!.dIntermediate);
        const expected = expectedTensorShapes(c);
        expect(shapesByName(plannedTensors(shape))).toEqual(expected);
        expect(shapesByName(written)).toEqual(expected);
        expect(shapesByName(checkpoint.tensors)).toEqual(expected);
        expect(plannedTensors(shape)).toHaveLength(expected.size);  // no name planned twice
    });

    it("gets the addon spec the CLI builds from its config", () => {
        const fromConfig = nativeSpecFromCheckpoint(checkpoint, { threads: 2, weightType: "f32" });
        const bench = benchSpec(shape, written, 2, "f32");
        expect({ ...bench, tensors: [] }).toEqual({ ...fromConfig, tensors: [] });
        expect(shapesByName(bench.tensors)).toEqual(shapesByName(fromConfig.tensors));
    });

    it("scores finite log-probs", async () => {
        const model = await NativeBackend.fromSpec(benchSpec(shape, written, 2, "f32"));
        try {
            const out = await model.score(fullScoreBatch(tokenStream(96, shape.vocab)));
            expect(out.logprobs).toHaveLength(96);
            for (const lp of out.logprobs) {
                expect(Number.isFinite(lp)).toBe(true);
                expect(lp).toBeLessThanOrEqual(0);
            }
        } finally {
            await model[Symbol.asyncDispose]();
        }
    });
});

describe("flopsPerToken", () => {
    const SHAPES: BenchShape[] = [MAMBA_130M, MAMBA2_130M, MAMBA2ATTN_130M, TRANSFORMERPP_130M, MAMBA_370M, MAMBA_790M, MAMBA_1_4B];
    const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

    it.each(SHAPES)("$name: GEMM flops are 2 × (weights of every matrix product + the tied LM head)", (shape) => {
        const productWeights = plannedTensors(shape)
            .filter((t) => /(_proj|\.fc1|\.fc2)\.weight$/.test(t.name))
            .reduce((a, t) => a + numel(t.shape), 0);
        expect(gemmFlopsPerToken(shape)).toBe(2 * (productWeights + shape.vocab * shape.dModel));
    });

    it("counts attention's QKᵀ and A·V as 2·T·d per attention layer per token", () => {
        const T = 512, d = 12 * 64;
        expect(attentionFlopsPerToken(MAMBA2_130M, T)).toBe(0);
        expect(attentionFlopsPerToken(MAMBA2ATTN_130M, T)).toBe(3 * 2 * T * d);
        expect(attentionFlopsPerToken(TRANSFORMERPP_130M, T)).toBe(12 * 2 * T * d);
        expect(flopsPerToken(TRANSFORMERPP_130M, T)).toBe(gemmFlopsPerToken(TRANSFORMERPP_130M) + 12 * 2 * T * d);
        // transformerpp-130m by hand: per layer qkv 2304 × 768, out_proj 768 × 768, fc1 4096 × 768, fc2 768 × 2048
        expect(gemmFlopsPerToken(TRANSFORMERPP_130M)).toBe(2 * (12 * (2304 * 768 + 768 * 768 + 4096 * 768 + 768 * 2048) + 50280 * 768));
    });
});
