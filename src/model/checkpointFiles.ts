/**
 * Which weight files a checkpoint folder holds, and the one format to read when it has several:
 * safetensors (sharded index, then single file) over PyTorch's pytorch_model.bin (sharded index, then single file).
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { CheckpointFormatError } from "../errors.js";
import { readSafetensorsHeader, readSafetensorsIndex } from "./safetensors.js";
import { readShardedIndex } from "./shardedIndex.js";
import { readTorchBin } from "./torchBin.js";
import type { TensorSource } from "./types.js";

/** A weight file (or index) in a checkpoint folder, and how to read it. */
export interface WeightFiles {
    /** The file the tensors are reached from: a single weight file or an index json. */
    entry: string;
    format: "safetensors" | "safetensors-sharded" | "torch" | "torch-sharded";
    read: () => Promise<TensorSource[]>;
}

/** Weight file names in order of preference. */
export const WEIGHT_FILE_PREFERENCE = [
    "model.safetensors.index.json",
    "model.safetensors",
    "pytorch_model.bin.index.json",
    "pytorch_model.bin",
] as const;

/** Picks the preferred weight file among `names` (plain file names, as in a folder listing or a hub repo). */
export function preferredWeightFile(names: Iterable<string>): (typeof WEIGHT_FILE_PREFERENCE)[number] | undefined {
    const present = new Set(names);
    return WEIGHT_FILE_PREFERENCE.find((name) => present.has(name));
}

/** Finds the weight files of the checkpoint in `dir`. */
export async function findWeightFiles(dir: string): Promise<WeightFiles> {
    let names: string[];
    try {
        names = await readdir(dir);
    } catch {
        throw new CheckpointFormatError(`${dir}: cannot list the checkpoint folder`);
    }
    const chosen = preferredWeightFile(names);
    if (chosen === undefined) {
        throw new CheckpointFormatError(`${dir}: no weights found; expected one of ${WEIGHT_FILE_PREFERENCE.join(", ")}`);
    }
    const entry = path.join(dir, chosen);
    switch (chosen) {
        case "model.safetensors.index.json":
            return { entry, format: "safetensors-sharded", read: () => readSafetensorsIndex(entry) };
        case "model.safetensors":
            return { entry, format: "safetensors", read: () => readSafetensorsHeader(entry) };
        case "pytorch_model.bin.index.json":
            return { entry, format: "torch-sharded", read: () => readShardedIndex(entry, readTorchBin) };
        case "pytorch_model.bin":
            return { entry, format: "torch", read: () => readTorchBin(entry) };
    }
}
