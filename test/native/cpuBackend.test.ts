/**
 * CPU backend: determinism (packing, threads, step vs score, saved states) and a float64 cross-check on tiny
 * random Mamba-1 / Mamba-2 checkpoints written as real safetensors files.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NativeBackend } from "../../src/backend/NativeBackend.js";
import type { ScoreBatch } from "../../src/addon/addonTypes.js";
import { referenceForward, referenceLogits } from "./reference64.js";
import { relativeError } from "./referenceOutputs.js";
import { MAMBA1_SHAPE, MAMBA2_SHAPE, randomWeights, removeTempDirs, tempDir, tinySpec, writeSafetensors, type TinyShape, wholeBatch } from "./tinyModel.js";

afterAll(removeTempDirs);

const SEQ_A = [3, 17, 42, 8, 8, 61, 0, 25, 33, 12, 5];
const SEQ_B = [9, 1, 44];
const SEQ_C = [63, 2, 30, 30, 7, 19, 50, 11];

/** Rows [from, to) of a row-major logits array with `vocab` columns. */
function rows(logits: Float32Array, vocab: number, from: number, to: number): Float32Array {
    return logits.slice(from * vocab, to * vocab);
}

/** Asserts bit-identity (not closeness) of two float arrays. */
function expectBitIdentical(a: Float32Array, b: Float32Array): void {
    expect(a.length).toBe(b.length);
    expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);
}

const families: Array<[string, TinyShape]> = [
    ["Mamba-1", MAMBA1_SHAPE],
    ["Mamba-2", MAMBA2_SHAPE],
    ["Mamba-1 (untied head, proj bias)", { ...MAMBA1_SHAPE, tieEmbeddings: false, projBias: true, dState: 16, dtRank: 8 }],
    ["Mamba-2 (1 group, odd state)", { ...MAMBA2_SHAPE, nGroups: 1, dState: 5, headDim: 8 }],
];

describe.each(families)("%s CPU backend", (_name, shape) => {
    const dir = tempDir();
    const weights = randomWeights(shape, 1234);
    const tensors = writeSafetensors(path.join(dir, "model.safetensors"), weights);
    const V = shape.vocab;
    let one: NativeBackend;
    let two: NativeBackend;

    beforeAll(async () => {
        one = await NativeBackend.fromSpec(tinySpec(weights, tensors, 1));
        two = await NativeBackend.fromSpec(tinySpec(weights, tensors, 2));
    });
    afterAll(() => {
        one.dispose();
        two.dispose();
    });

    it("matches a float64 reference forward (max|Δ| / max|ref| ≤ 1e-4)", async () => {
        const out = await one.score(wholeBatch([SEQ_A]));
        const ref = referenceLogits(weights, SEQ_A).flatMap((row) => [...row]);
        expect(relativeError(out.logits, ref)).toBeLessThanOrEqual(1e-4);
    });

    it("exports the state after a sequence in the exchange layout of the float64 reference (max|Δ| / max|ref| ≤ 1e-4)", async () => {
        await one.score({ ...wholeBatch([SEQ_A]), segSave: Int32Array.of(3) });
        const snap = await one.exportState(3);
        const ref = referenceForward(weights, SEQ_A);
        for (const [what, ours, theirs] of [["conv", snap.conv, ref.conv], ["ssm", snap.ssm, ref.ssm]] as const) {
            expect(ours.length, what).toBe(theirs.length);
            expect(theirs.some((v) => v !== 0), what).toBe(true);
            expect(relativeError(ours, theirs), what).toBeLessThanOrEqual(1e-4);
        }
        one.freeState(3);
    });

    it("gives bit-identical logits alone, packed with others, and with 2 threads", async () => {
        const alone = await one.score(wholeBatch([SEQ_A]));
        const packed = await one.score(wholeBatch([SEQ_B, SEQ_A, SEQ_C]));
        const packed2 = await two.score(wholeBatch([SEQ_C, SEQ_B, SEQ_A]));
        const nA = SEQ_A.length;
        expectBitIdentical(alone.logits, rows(packed.logits, V, SEQ_B.length, SEQ_B.length + nA));
        const at = SEQ_C.length + SEQ_B.length;
        expectBitIdentical(alone.logits, rows(packed2.logits, V, at, at + nA));
    });

    it("gives the same logits via step() as via score()", async () => {
        const whole = await one.score(wholeBatch([SEQ_A, SEQ_C]));
        // two sequences stepped together in slots 4 and 9, then SEQ_A's tail alone
        for (let t = 0; t < SEQ_C.length; t++) {
            const lg = await two.step(Int32Array.of(9, 4), Int32Array.of(SEQ_C[t]!, SEQ_A[t]!));
            expectBitIdentical(rows(lg, V, 0, 1), rows(whole.logits, V, SEQ_A.length + t, SEQ_A.length + t + 1));
            expectBitIdentical(rows(lg, V, 1, 2), rows(whole.logits, V, t, t + 1));
        }
        for (let t = SEQ_C.length; t < SEQ_A.length; t++) {
            const lg = await two.step(Int32Array.of(4), Int32Array.of(SEQ_A[t]!));
            expectBitIdentical(lg, rows(whole.logits, V, t, t + 1));
        }
        two.freeState(4);
        two.freeState(9);
    });

    it("continues from a saved state exactly (score → save → score, and export → import)", async () => {
        const whole = await one.score(wholeBatch([SEQ_A]));
        const cut = 6;
        const prefix: ScoreBatch = { ...wholeBatch([SEQ_A.slice(0, cut)]), segSave: Int32Array.of(1) };
        await one.score(prefix);
        const cont = (slot: number): ScoreBatch => ({ ...wholeBatch([SEQ_A.slice(cut)]), segInit: Int32Array.of(slot) });
        const a = await one.score(cont(1));
        expectBitIdentical(a.logits, rows(whole.logits, V, cut, SEQ_A.length));
        const snap = await one.exportState(1);
        const info = one.info();
        expect(snap.conv.length).toBe(info.convStateFloats);
        expect(snap.ssm.length).toBe(info.ssmStateFloats);
        await two.importState(7, snap);
        const b = await two.score(cont(7));
        expectBitIdentical(b.logits, a.logits);
        await two.copyState(7, 8);
        const c = await two.score(cont(8));
        expectBitIdentical(c.logits, a.logits);
        one.freeState(1);
        two.freeState(7);
        two.freeState(8);
    });

    it("scores a prefix and its branches in one call, and log-probs agree with the logits", async () => {
        const prefix = SEQ_A.slice(0, 5);
        const b1 = [20, 21, 22];
        const b2 = [40];
        const b3 = [1, 2, 3, 4, 5];
        // prefix saves slot 2; three branches start from it; the last branch also saves and a 4th reads that
        const batch: ScoreBatch = {
            tokens: Int32Array.from([...prefix, ...b1, ...b2, ...b3, 9]),
            segOffsets: Int32Array.of(0, 5, 8, 9, 14, 15),
            segInit: Int32Array.of(-1, 2, 2, 2, 3),
            segSave: Int32Array.of(2, -1, -1, 3, -1),
            scoreRows: Int32Array.of(4, 7, 8, 13, 14, 4),
            scoreTargets: Int32Array.of(20, 0, 63, 9, 33, 5),
            logitRows: Int32Array.from({ length: 15 }, (_, i) => i),
        };
        const out = await two.score(batch);
        const alone = await one.score(wholeBatch([[...prefix, ...b1], [...prefix, ...b2], [...prefix, ...b3, 9]]));
        expectBitIdentical(rows(out.logits, V, 0, 8), rows(alone.logits, V, 0, 8));
        expectBitIdentical(rows(out.logits, V, 8, 9), rows(alone.logits, V, 13, 14));
        expectBitIdentical(rows(out.logits, V, 9, 15), rows(alone.logits, V, 19, 25));
        batch.scoreRows.forEach((row, i) => {
            const lg = out.logits.subarray(row * V, (row + 1) * V);
            let m = -Infinity, arg = 0;
            lg.forEach((v, j) => { if (v > m) { m = v; arg = j; } });
            let sum = 0;
            for (const v of lg) sum += Math.exp(v - m);
            const target = batch.scoreTargets[i]!;
            expect(Math.abs(out.logprobs[i]! - (lg[target]! - m - Math.log(sum)))).toBeLessThan(1e-6);
            expect(out.greedy[i]).toBe(arg === target ? 1 : 0);
        });
        two.freeState(2);
        two.freeState(3);
    });
});

describe("weight storage", () => {
    it("gives the same results from unaligned F32 data (copied) as from aligned data (mapped)", async () => {
        const dir = tempDir();
        const weights = randomWeights(MAMBA2_SHAPE, 5);
        const file = path.join(dir, "aligned.safetensors");
        const aligned = writeSafetensors(file, weights);
        const shifted = path.join(dir, "shifted.bin");
        writeFileSync(shifted, Buffer.concat([Buffer.from([0xab, 0xcd]), readFileSync(file)]));
        const unaligned = aligned.map((t) => ({ ...t, file: shifted, offset: t.offset + 2 }));
        const a = await NativeBackend.fromSpec(tinySpec(weights, aligned));
        const b = await NativeBackend.fromSpec(tinySpec(weights, unaligned));
        expectBitIdentical((await a.score(wholeBatch([SEQ_C]))).logits, (await b.score(wholeBatch([SEQ_C]))).logits);
        a.dispose();
        b.dispose();
    });

    it("loads BF16 files exactly like the same values in F32, and runs weightType bf16 deterministically", async () => {
        const dir = tempDir();
        const weights = randomWeights(MAMBA1_SHAPE, 99, true);
        const f32 = await NativeBackend.fromSpec(tinySpec(weights, writeSafetensors(path.join(dir, "f32.safetensors"), weights, "F32")));
        const bf16src = writeSafetensors(path.join(dir, "bf16.safetensors"), weights, "BF16");
        const fromBf16 = await NativeBackend.fromSpec(tinySpec(weights, bf16src));
        const compute16 = await NativeBackend.fromSpec(tinySpec(weights, bf16src, 2, "bf16"));
        const a = await f32.score(wholeBatch([SEQ_A]));
        const b = await fromBf16.score(wholeBatch([SEQ_A]));
        const c = await compute16.score(wholeBatch([SEQ_B, SEQ_A]));
        expectBitIdentical(a.logits, b.logits);
        // bf16-representable weights held as bf16 give the same products as f32
        expectBitIdentical(a.logits, rows(c.logits, MAMBA1_SHAPE.vocab, SEQ_B.length, SEQ_B.length + SEQ_A.length));
        expect(compute16.info().weightBytes).toBeLessThan(f32.info().weightBytes);
        for (const m of [f32, fromBf16, compute16]) m.dispose();
    });
});
