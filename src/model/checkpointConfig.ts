/**
 * `<dir>/config.json` → a normalised MambaConfig. Kept apart from loadModel.ts so that programs which read a
 * checkpoint without tokenising (the GPU check scripts, bundled for a machine without the tokenizers package) do not
 * pull the tokenizer in.
 */
import path from "node:path";
import { ConfigError } from "../errors.js";
import { decodeUtf8Strict, FileAccessError, readSmallFile, SIZE_LIMITS } from "../io/safeFile.js";
import { parseMambaConfig } from "./config.js";
import type { MambaConfig } from "./types.js";

/** Reads and normalises `<dir>/config.json` (a regular file of at most 16 MiB, UTF-8 JSON); also returns its bytes. */
export async function readCheckpointConfig(dir: string): Promise<{ config: MambaConfig; bytes: Buffer; file: string }> {
    const file = path.join(dir, "config.json");
    let bytes: Buffer;
    let json: unknown;
    try {
        bytes = await readSmallFile(file, { limit: SIZE_LIMITS.config, what: "a config.json" });
        json = JSON.parse(decodeUtf8Strict(bytes, file));
    } catch (e) {
        if (e instanceof FileAccessError) {
            throw new ConfigError(e.code === "ENOENT" ? `${file}: cannot read the model's config.json (no such file)` : e.message);
        }
        throw new ConfigError(`${file}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
    }
    return { config: parseMambaConfig(json, file), bytes, file };
}
