/**
 * Bad input to the addon gives one clear NativeError line naming the field, tensor or slot — never a crash —
 * and the model stays usable afterwards.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NativeError, NumericError } from "../../src/errors.js";
import { NativeBackend } from "../../src/backend/NativeBackend.js";
import { loadAddon } from "../../src/addon/loadAddon.js";
import type { NativeModelSpec, ScoreBatch } from "../../src/addon/addonTypes.js";
import { MAMBA1_SHAPE, randomWeights, removeTempDirs, tempDir, tinySpec, writeSafetensors } from "./tinyModel.js";

afterAll(removeTempDirs);

const dir = tempDir();
const weights = randomWeights(MAMBA1_SHAPE, 7);
const tensors = writeSafetensors(path.join(dir, "model.safetensors"), weights);
const spec = tinySpec(weights, tensors, 2);

function batch(over: Partial<ScoreBatch> = {}): ScoreBatch {
    return {
        tokens: Int32Array.of(1, 2, 3, 4),
        segOffsets: Int32Array.of(0, 2, 4),
        segInit: Int32Array.of(-1, -1),
        segSave: Int32Array.of(-1, -1),
        scoreRows: Int32Array.of(0, 3),
        scoreTargets: Int32Array.of(2, 5),
        ...over,
    };
}

async function nativeMessage(p: Promise<unknown>, errorClass: typeof NativeError | typeof NumericError = NativeError): Promise<string> {
    const e = await p.then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(errorClass);
    const msg = (e as Error).message;
    expect(msg).not.toContain("\n");
    return msg;
}

describe("score/step/state argument errors", () => {
    let m: NativeBackend;
    beforeAll(async () => {
        m = await NativeBackend.fromSpec(spec);
    });
    afterAll(() => m.dispose());

    it.each([
        ["token id ≥ vocab", { tokens: Int32Array.of(1, 64, 3, 4) }, "score: tokens[1] = 64 is outside [0, 64)"],
        ["negative token id", { tokens: Int32Array.of(1, 2, -1, 4) }, "score: tokens[2] = -1 is outside [0, 64)"],
        ["offsets not increasing", { segOffsets: Int32Array.of(0, 2, 2, 4), segInit: Int32Array.of(-1, -1, -1), segSave: Int32Array.of(-1, -1, -1) }, "segOffsets must increase strictly (segment 1"],
        ["offsets not covering tokens", { segOffsets: Int32Array.of(0, 2, 3) }, "the last segOffsets entry must equal tokens.length (4), got 3"],
        ["first offset not 0", { segOffsets: Int32Array.of(1, 2, 4) }, "segOffsets[0] must be 0"],
        ["segInit length", { segInit: Int32Array.of(-1) }, "segInit and segSave need one entry per segment (2)"],
        ["uninitialised init slot", { segInit: Int32Array.of(-1, 5) }, "segment 1 starts from slot 5, which holds no state"],
        ["negative slot", { segSave: Int32Array.of(-2, -1) }, "segment 0 segSave: slot id -2 is outside"],
        ["score row out of range", { scoreRows: Int32Array.of(0, 4) }, "scoreRows[1] = 4 is outside [0, 4)"],
        ["score target out of range", { scoreTargets: Int32Array.of(2, 99) }, "scoreTargets[1] = 99 is outside [0, 64)"],
        ["score rows/targets length", { scoreTargets: Int32Array.of(2) }, "scoreRows and scoreTargets differ in length"],
        ["logit row out of range", { logitRows: Int32Array.of(7) }, "logitRows[0] = 7 is outside [0, 4)"],
        ["wrong array type", { tokens: Float32Array.of(1, 2, 3, 4) as unknown as Int32Array }, "score: batch.tokens must be an Int32Array"],
    ])("%s", async (_name, over, expected) => {
        expect(await nativeMessage(m.score(batch(over)))).toContain(expected);
    });

    it("a segment may start from a slot an earlier segment of the same call saves", async () => {
        const out = await m.score(batch({ segSave: Int32Array.of(5, -1), segInit: Int32Array.of(-1, 5) }));
        expect(out.logprobs.length).toBe(2);
        m.freeState(5);
        // freed: starting from it again is an error
        expect(await nativeMessage(m.score(batch({ segInit: Int32Array.of(5, -1) })))).toContain("slot 5, which holds no state");
    });

    it("rejects bad step and state calls", async () => {
        expect(await nativeMessage(m.step(Int32Array.of(1, 1), Int32Array.of(2, 3)))).toContain("step: slot 1 appears twice");
        expect(await nativeMessage(m.step(Int32Array.of(1), Int32Array.of(64)))).toContain("step: tokens[0] = 64 is outside [0, 64)");
        expect(await nativeMessage(m.step(Int32Array.of(1, 2), Int32Array.of(3)))).toContain("slots and tokens differ in length");
        expect(await nativeMessage(m.exportState(12))).toContain("exportState: slot 12 holds no state");
        expect(await nativeMessage(m.copyState(12, 13))).toContain("copyState: source: slot 12 holds no state");
        expect(await nativeMessage(m.importState(3, { conv: new Float32Array(3), ssm: new Float32Array(3) }))).toContain(
            `importState: conv has 3 floats, expected ${m.info().convStateFloats}`,
        );
        const info = m.info();
        const bad = { conv: new Float32Array(info.convStateFloats), ssm: new Float32Array(info.ssmStateFloats).fill(Number.NaN) };
        expect(await nativeMessage(m.importState(3, bad))).toContain("importState: ssm[0] is not finite");
        // still usable
        const out = await m.score(batch());
        expect(Number.isFinite(out.logprobs[0]!)).toBe(true);
    });

    it("serialises calls fired without awaiting, and the raw addon rejects a concurrent call clearly", async () => {
        const results = await Promise.all([m.score(batch()), m.score(batch()), m.step(Int32Array.of(30), Int32Array.of(1))]);
        expect(Buffer.from(results[0].logprobs.buffer).equals(Buffer.from(results[1].logprobs.buffer))).toBe(true);
        m.freeState(30);
        const raw = await loadAddon().createModel(spec);
        const first = raw.score(batch());
        const second = raw.score(batch()).then(() => "resolved", (e: Error) => e.message);
        await first;
        expect(await second).toContain("score: the model is busy with another call");
        raw.dispose();
        expect(await raw.score(batch()).then(() => "resolved", (e: Error) => e.message)).toContain("score: the model was disposed");
    });
});

describe("createModel errors", () => {
    const withTensor = (name: string, change: (t: NativeModelSpec["tensors"][number]) => object): NativeModelSpec => ({
        ...spec,
        tensors: spec.tensors.map((t) => (t.name === name ? { ...t, ...change(t) } : t)),
    });
    const IN_PROJ = "backbone.layers.1.mixer.in_proj.weight";

    it.each([
        ["shape mismatch", withTensor(IN_PROJ, () => ({ shape: [128, 16] })), `tensor ${IN_PROJ} has shape [128, 16], expected [128, 32]`],
        ["byteLength mismatch", withTensor(IN_PROJ, (t) => ({ byteLength: t.byteLength - 4 })), `tensor ${IN_PROJ}: byteLength`],
        ["out of file", withTensor(IN_PROJ, () => ({ offset: 1e9 })), `tensor ${IN_PROJ}: bytes [1000000000,`],
        ["missing file", withTensor(IN_PROJ, () => ({ file: path.join(dir, "nope.safetensors") })), "cannot open weight file"],
        ["missing tensor", { ...spec, tensors: spec.tensors.filter((t) => t.name !== "backbone.layers.0.mixer.D") }, "missing tensor backbone.layers.0.mixer.D"],
        ["unexpected tensor", { ...spec, tensors: [...spec.tensors, { ...spec.tensors[0]!, name: "backbone.layers.9.norm.weight" }] }, "unexpected tensor backbone.layers.9.norm.weight"],
        ["duplicate tensor", { ...spec, tensors: [...spec.tensors, spec.tensors[0]!] }, "is given twice"],
        ["bad dtype", withTensor(IN_PROJ, () => ({ dtype: "F64" })), `spec.tensors[`],
        ["bad family", { ...spec, family: 3 as 1 }, "spec.family must be an integer in [1, 2]"],
        ["bad weightType", { ...spec, weightType: "f16" as "f32" }, "spec.weightType must be \"f32\" or \"bf16\""],
        ["bad threads", { ...spec, threads: 0 }, "spec.threads must be an integer in [1, 256]"],
        ["zero dtRank", { ...spec, dtRank: 0 }, "spec.dtRank must be a positive integer"],
    ])("%s", async (_name, badSpec, expected) => {
        expect(await nativeMessage(NativeBackend.fromSpec(badSpec as NativeModelSpec))).toContain(expected);
    });

    it("rejects NaN/Inf weights naming the file, the tensor and the element", async () => {
        const file = path.join(dir, "nan.safetensors");
        const bad = randomWeights(MAMBA1_SHAPE, 7);
        bad.tensors.get("backbone.layers.0.mixer.A_log")!.data[3] = Number.POSITIVE_INFINITY;
        const t = writeSafetensors(file, bad);
        expect(await nativeMessage(NativeBackend.fromSpec(tinySpec(bad, t)), NumericError)).toContain(
            `${file}: tensor backbone.layers.0.mixer.A_log has a non-finite value (NaN or Inf) at element 3`,
        );
    });

    it("refuses cuda in a build without CUDA", async () => {
        if (NativeBackend.capabilities().cuda) return;
        expect(await nativeMessage(NativeBackend.fromSpec({ ...spec, device: "cuda" }))).toContain("has no CUDA backend");
    });

    it("reports capabilities", () => {
        const caps = NativeBackend.capabilities();
        expect(caps.avx2 && caps.fma).toBe(true);
        expect(caps.hardwareThreads).toBeGreaterThan(0);
    });
});
