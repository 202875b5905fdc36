/**
 * Sharded checkpoints (`model.safetensors.index.json`, `pytorch_model.bin.index.json`): a JSON file whose
 * `weight_map` maps each tensor name to the shard file holding it, in the same folder.
 */
import path from "node:path";
import { CheckpointFormatError } from "../errors.js";
import { decodeUtf8Strict, FileAccessError, readSmallFile, requireRegularFile, SIZE_LIMITS } from "../io/safeFile.js";
import type { TensorSource } from "./types.js";

/** A shard file name from an index must stay inside the checkpoint folder. */
function shardPath(indexFile: string, dir: string, shard: string): string {
    if (shard === "" || path.isAbsolute(shard) || shard.includes("\\") || shard.split("/").includes("..")) {
        throw new CheckpointFormatError(`${indexFile}: weight_map names shard ${JSON.stringify(shard)} outside the folder`);
    }
    return path.join(dir, shard);
}

/**
 * Reads every shard named by `indexFile` with `readShard`. Every tensor named in `weight_map` must be in the shard
 * it names, and every tensor of a shard must be listed (so no tensor is silently taken from the wrong shard).
 */
export async function readShardedIndex(
    indexFile: string,
    readShard: (file: string) => Promise<TensorSource[]>,
): Promise<TensorSource[]> {
    let index: unknown;
    try {
        index = JSON.parse(decodeUtf8Strict(await readSmallFile(indexFile, { limit: SIZE_LIMITS.index, what: "an index file" }), indexFile));
    } catch (e) {
        if (e instanceof FileAccessError) throw new CheckpointFormatError(e.message);
        throw new CheckpointFormatError(`${indexFile}: cannot read the index as JSON (${(e as Error).message.split("\n")[0]})`);
    }
    const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
    if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
        throw new CheckpointFormatError(`${indexFile}: field weight_map must be an object {tensor name: shard file}`);
    }
    const dir = path.dirname(indexFile);
    const byShard = new Map<string, Set<string>>();
    const shardOf = new Map<string, string>();
    for (const [name, shard] of Object.entries(weightMap)) {
        if (typeof shard !== "string") {
            throw new CheckpointFormatError(`${indexFile}: weight_map.${name} must be a shard file name`);
        }
        const file = shardPath(indexFile, dir, shard);
        if (!byShard.has(file)) byShard.set(file, new Set());
        byShard.get(file)!.add(name);
        shardOf.set(name, shard);
    }
    const tensors: TensorSource[] = [];
    for (const [file, names] of [...byShard].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        await requireRegularFile(file).catch((e: unknown) => {
            if (e instanceof FileAccessError && e.code !== "ENOENT") throw new CheckpointFormatError(`${indexFile}: shard ${e.message}`);
            throw new CheckpointFormatError(`${indexFile}: shard ${path.basename(file)} is missing from ${dir}`);
        });
        const shardTensors = await readShard(file);
        const found = new Set(shardTensors.map((t) => t.name));
        for (const name of names) {
            if (!found.has(name)) throw new CheckpointFormatError(`${indexFile}: tensor ${name} is not in shard ${file}`);
        }
        for (const t of shardTensors) {
            if (!names.has(t.name)) {
                const listed = shardOf.get(t.name);
                throw new CheckpointFormatError(
                    listed === undefined
                        ? `${file}: tensor ${t.name} is in the shard but not in ${indexFile}`
                        : `${file}: tensor ${t.name} is in this shard, but ${indexFile} puts it in ${listed}`,
                );
            }
            tensors.push(t);
        }
    }
    return tensors;
}
