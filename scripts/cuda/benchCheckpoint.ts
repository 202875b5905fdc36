/**
 * A random real-shape checkpoint written by make_bench_checkpoint.py (model.safetensors + shape.json, bf16) as the
 * addon spec of a CUDA model: shared by bench.ts and replay.ts.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { NativeModelSpec } from "../../src/addon/addonTypes.js";
import { readSafetensorsHeader } from "../../src/model/safetensors.js";

/** shape.json: the model's dimensions, and its parameter counts. */
export interface BenchShape extends Omit<NativeModelSpec, "device" | "tensors" | "threads" | "weightType" | "normEps" | "convBias" | "projBias" | "tieEmbeddings"> {
    params: number;
    layerGemmParams: number;
}

/** The checkpoint in `dir`: its shape and the spec that loads it on the GPU with bf16 weights. */
export async function readBenchCheckpoint(dir: string): Promise<{ shape: BenchShape; spec: NativeModelSpec }> {
    const shape = JSON.parse(await readFile(path.join(dir, "shape.json"), "utf8")) as BenchShape;
    const spec: NativeModelSpec = {
        device: "cuda", family: shape.family, dModel: shape.dModel, nLayer: shape.nLayer, vocab: shape.vocab,
        dState: shape.dState, dConv: shape.dConv, dInner: shape.dInner, dtRank: shape.dtRank, nHeads: shape.nHeads,
        headDim: shape.headDim, nGroups: shape.nGroups, normEps: 1e-5, convBias: true, projBias: false,
        tieEmbeddings: true, threads: 1, weightType: "bf16",
        tensors: await readSafetensorsHeader(path.join(dir, "model.safetensors")),
    };
    // Attention checkpoints: the hybrid fields as shape.json has them.
    for (const key of ["layerKinds", "attnHeads", "attnHeadsKv", "attnHeadDim", "attnConv", "attnRotaryDim", "attnRotaryBase",
        "attnQkvBias", "attnOutBias", "attnMlpDim", "attnSoftmaxScale", "dIntermediate"] as const) {
        if (shape[key] !== undefined) Object.assign(spec, { [key]: shape[key] });
    }
    return { shape, spec };
}
