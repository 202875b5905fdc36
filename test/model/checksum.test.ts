import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { startWeightsChecksum, weightsChecksum } from "../../src/model/checksum.js";
import { loadCheckpoint } from "../../src/model/loadModel.js";

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../fixtures");

// Expected values computed independently with Python's hashlib: sha256 over, for each weight file in name order,
// f"{name}\0{size}\0" followed by the file's bytes.
describe("weightsChecksum", () => {
    it("hashes a single pytorch_model.bin", async () => {
        const ckpt = await loadCheckpoint(path.join(fixtures, "neox-mamba1"));
        expect(await weightsChecksum(ckpt)).toBe("13e3d5fe84092f2b28004def5bbd8a97fc9f9a7e74c16d92cfdcc8d99b79cc48");
    });

    it("hashes every shard of a sharded safetensors checkpoint, in name order", async () => {
        const ckpt = await loadCheckpoint(path.join(fixtures, "mamba2-hf-sharded"));
        expect(await weightsChecksum(ckpt)).toBe("7d23ae40b6488cbd5b963783b98a3ff5d063d29792249f95acd955b4f542687c");
    });

    it("gives the same hashes on a worker thread (startWeightsChecksum)", async () => {
        const single = startWeightsChecksum(await loadCheckpoint(path.join(fixtures, "neox-mamba1")));
        const sharded = startWeightsChecksum(await loadCheckpoint(path.join(fixtures, "mamba2-hf-sharded")));
        expect(await single).toBe("13e3d5fe84092f2b28004def5bbd8a97fc9f9a7e74c16d92cfdcc8d99b79cc48");
        expect(await sharded).toBe("7d23ae40b6488cbd5b963783b98a3ff5d063d29792249f95acd955b4f542687c");
    });
});
