/**
 * An A/B of two builds of the addon on the GPU (run by scripts/cuda/check.sh with AB_BASE, bundled to plain JS):
 *
 *   node abOutputs.mjs FIXTURES_DIR OUT_BIN        (MAMBA_EVAL_ADDON names the build; default: this checkout's)
 *
 * For every fixture (fixtures/* and fixtures/hybrid/*: hybrid-mamba2attn-hd64 is the one that runs the 64-row chunked
 * Mamba-2 scan) and both weight types, on the cuda device: all of the
 * fixture's sequences packed into one score() call (every row scored, every logit returned, each segment saved into
 * a slot), the saved states, then (fp32 weights) four step() calls on two of those slots (eager, captured and replayed
 * CUDA graphs). bf16 step() runs the skinny decode GEMM since the decode change (issue 16), so it is not compared.
 * Everything is appended to OUT_BIN as raw float64 / float32 bytes, so two builds that compute the same bits write the
 * same file (`cmp`). Only calls every build of the addon has are used, so an older build can be the A side.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { NativeBackend, nativeSpecFromCheckpoint } from "../../src/backend/NativeBackend.js";
import { findWeightFiles } from "../../src/model/checkpointFiles.js";
import { readCheckpointConfig } from "../../src/model/checkpointConfig.js";
import { mapCheckpointTensors } from "../../src/model/weightMap.js";

interface Reference {
    sequences: Array<{ tokens: number[] }>;
}

async function main(): Promise<void> {
    const [fixturesDir, outBin] = process.argv.slice(2);
    if (!fixturesDir || !outBin) throw new Error("usage: node abOutputs.mjs FIXTURES_DIR OUT_BIN");
    const parts: Uint8Array[] = [];
    const bytes = (a: Float32Array | Float64Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const folders: string[] = [];
    for (const root of [fixturesDir, path.join(fixturesDir, "hybrid")]) {
        const names = await readdir(root).catch(() => [] as string[]);
        for (const name of names.sort()) folders.push(path.join(root, name));
    }
    for (const dir of folders) {
        const name = path.relative(fixturesDir, dir);
        let ref: Reference;
        try {
            ref = JSON.parse(await readFile(path.join(dir, "reference.json"), "utf8")) as Reference;
        } catch {
            continue;  // not a model fixture
        }
        const { config: declared } = await readCheckpointConfig(dir);
        const weights = await findWeightFiles(dir, declared.layout);
        const { config, tensors } = mapCheckpointTensors(await weights.read(), declared, weights.entry);
        const tokens = ref.sequences.flatMap((s) => s.tokens);
        const offsets = [0];
        for (const s of ref.sequences) offsets.push((offsets[offsets.length - 1] ?? 0) + s.tokens.length);
        const n = ref.sequences.length;
        const rows = Int32Array.from(tokens, (_, i) => i);
        for (const weightType of ["f32", "bf16"] as const) {
            const model = await NativeBackend.fromSpec(
                nativeSpecFromCheckpoint({ dir, config, tensors, fingerprint: "" }, { device: "cuda", weightType, threads: 1 }));
            try {
                const out = await model.score({
                    tokens: Int32Array.from(tokens), segOffsets: Int32Array.from(offsets), segInit: new Int32Array(n).fill(-1),
                    segSave: Int32Array.from({ length: n }, (_, i) => i + 1), scoreRows: rows,
                    scoreTargets: Int32Array.from(tokens, (_, i) => tokens[(i + 1) % tokens.length] ?? 0), logitRows: rows,
                });
                parts.push(bytes(out.logprobs), bytes(out.logits));
                for (let slot = 1; slot <= n; slot++) {
                    const st = await model.exportState(slot);
                    parts.push(bytes(st.conv), bytes(st.ssm));
                    if (st.kv) parts.push(bytes(st.kv));
                }
                if (weightType === "f32") {
                    for (let k = 0; k < 4; k++) {
                        parts.push(bytes(await model.step(Int32Array.from([1, n > 1 ? n : 2]), Int32Array.from([3 + k, 5 + k]))));
                    }
                }
            } finally {
                model.dispose();
            }
            console.log(`abOutputs ${name} ${weightType}: ${tokens.length} rows, ${n} states${weightType === "f32" ? ", 4 steps" : ""}`);
        }
    }
    await writeFile(outBin, Buffer.concat(parts));
}

main().catch((e: unknown) => {
    console.error(`abOutputs: ${(e as Error).message}`);
    process.exit(1);
});
