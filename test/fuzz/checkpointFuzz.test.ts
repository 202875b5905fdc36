/**
 * Fuzzing the checkpoint path end to end: copies of the fixture checkpoints (config.json, model.safetensors,
 * pytorch_model.bin, the sharded index and its shards) are mutated — byte flips, truncations, safetensors header
 * length / offset / dtype / shape edits, JSON field deletions and type changes, pickle opcode edits with the zip
 * CRC fixed up, zip structure flips, NaN/Inf written into weights — and each is loaded (loadCheckpoint → the native
 * createModel with its bounds checks → one small score() call).
 *
 * Each case must end in either
 * - a clean error: an instance of the src/errors.ts classes with a one-line message (a native crash kills the
 *   test process, so it cannot pass), or
 * - a result: bit-identical to the unmutated checkpoint's when the loader reads the same config and the same
 *   tensor bytes (the mutation hit an irrelevant byte), finite otherwise;
 * and a checkpoint whose weights hold a NaN or Inf must never load (it would poison every average).
 *
 * FUZZ_CASES (default 300) and FUZZ_SEED replay or lengthen the run.
 */
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ScoreBatch } from "../../src/addon/addonTypes.js";
import { NativeBackend } from "../../src/backend/NativeBackend.js";
import { loadCheckpoint } from "../../src/model/loadModel.js";
import { bytesToF32, readTensorBytes } from "../../src/model/tensorData.js";
import type { MambaConfig, TensorSource } from "../../src/model/types.js";
import { describeFailures, saveFailures, FUZZ_CASES, FUZZ_SEED, fuzzTimeout, OutcomeTally, uncleanError, type FuzzFailure } from "./fuzzCase.js";
import {
    byteFlip,
    injectNonFinite,
    jsonFieldEdit,
    pickleOpcodeEdit,
    Prng,
    safetensorsHeaderEdit,
    safetensorsHeaderLength,
    safetensorsWhitespace,
    truncate,
    zipStructureFlip,
    type Mutation,
    type Mutator,
} from "./mutators.js";

const FIXTURES = path.resolve(import.meta.dirname, "../../fixtures");

/** Small fixtures covering every format: safetensors f32, the sharded index, pickled zips in f16 / bf16 / f32. */
const FIXTURE_NAMES = ["mamba1-hf", "mamba2-hf-sharded", "mamba1-ssm-bf16", "mamba1-ssm-f16", "mamba2-ssm"];

/** Token ids below every fixture's vocabulary (≥ 250). */
const TOKENS = [1, 7, 42, 3, 200, 9, 0, 128];

/** What one load + score produced. */
interface Outcome {
    config: MambaConfig;
    /** name, dtype, shape and sha256 of each tensor's bytes, in canonical order. */
    tensorDigest: string;
    nonFiniteWeight: string | undefined;
    logprobs: Float64Array;
    greedy: Uint8Array;
}

function scoreBatch(): ScoreBatch {
    const n = TOKENS.length;
    return {
        tokens: Int32Array.from(TOKENS),
        segOffsets: Int32Array.of(0, n),
        segInit: Int32Array.of(-1),
        segSave: Int32Array.of(-1),
        scoreRows: Int32Array.from({ length: n - 1 }, (_, i) => i),
        scoreTargets: Int32Array.from(TOKENS.slice(1)),
    };
}

/** Digest of the tensors as the loader describes them, and the first non-finite weight found, if any. */
async function inspectTensors(tensors: readonly TensorSource[]): Promise<{ digest: string; nonFinite: string | undefined }> {
    const digest = createHash("sha256");
    let nonFinite: string | undefined;
    for (const t of tensors) {
        const bytes = await readTensorBytes(t);
        digest.update(`${t.name}|${t.dtype}|${t.shape.join("x")}|`).update(bytes);
        if (nonFinite === undefined) {
            const values = bytesToF32(bytes, t.dtype);
            const i = values.findIndex((v) => !Number.isFinite(v));
            if (i >= 0) nonFinite = `${t.name}[${i}] = ${values[i]}`;
        }
    }
    return { digest: digest.digest("hex"), nonFinite };
}

/** loadCheckpoint → createModel (1 thread) → one score() call. Throws whatever the code under test throws. */
async function loadAndScore(dir: string): Promise<Outcome> {
    const checkpoint = await loadCheckpoint(dir);
    const backend = await NativeBackend.create(checkpoint, { threads: 1, weightType: "f32" });
    try {
        const out = await backend.score(scoreBatch());
        // Only read the bytes back once the loader and the addon have accepted them as in bounds.
        const { digest, nonFinite } = await inspectTensors(checkpoint.tensors);
        return { config: checkpoint.config, tensorDigest: digest, nonFiniteWeight: nonFinite, logprobs: out.logprobs, greedy: out.greedy };
    } finally {
        await backend[Symbol.asyncDispose]();
    }
}

/** A working copy of a fixture folder, whose files are mutated and restored case by case. */
class WorkingCopy {
    readonly dir: string;
    readonly files: string[];
    private readonly originals = new Map<string, Buffer>();
    baseline!: Outcome;
    /** Where each tensor's bytes are, for NaN/Inf injection. */
    tensors!: TensorSource[];

    constructor(readonly fixture: string, root: string) {
        this.dir = path.join(root, fixture);
        cpSync(path.join(FIXTURES, fixture), this.dir, { recursive: true, filter: (src) => !path.basename(src).startsWith("reference") });
        this.files = readdirSync(this.dir).filter((f) => f !== "generation_config.json").sort();
        for (const f of this.files) this.originals.set(f, readFileSync(path.join(this.dir, f)));
    }

    async init(): Promise<void> {
        this.baseline = await loadAndScore(this.dir);
        this.tensors = (await loadCheckpoint(this.dir)).tensors;
    }

    original(file: string): Buffer {
        return this.originals.get(file)!;
    }

    /** Replaces a file with new bytes (a new inode, so no mapping of the old one can see the change). */
    write(file: string, bytes: Buffer): void {
        const target = path.join(this.dir, file);
        rmSync(target, { force: true });
        writeFileSync(target, bytes);
    }

    restore(file: string): void {
        this.write(file, this.original(file));
    }
}

/** Mutators that fit a file, with weights (more weight: chosen more often). */
function mutatorsFor(file: string): Array<[Mutator, number]> {
    if (file.endsWith(".json")) return [[jsonFieldEdit, 6], [byteFlip, 2], [truncate, 1]];
    if (file.endsWith(".safetensors")) {
        return [[safetensorsHeaderEdit, 5], [safetensorsHeaderLength, 2], [safetensorsWhitespace, 1], [byteFlip, 4], [truncate, 2]];
    }
    return [[pickleOpcodeEdit, 6], [zipStructureFlip, 2], [byteFlip, 3], [truncate, 2]];
}

/** NaN/Inf written into a random element of a random tensor (its file and dtype from the loader's index). */
function nonFiniteMutation(copy: WorkingCopy, rng: Prng): { file: string; mutation: Mutation } {
    const t = rng.pick(copy.tensors);
    const width = t.dtype === "F32" ? 4 : 2;
    const element = rng.int(t.byteLength / width);
    const file = path.basename(t.file);
    return { file, mutation: injectNonFinite(copy.original(file), t.offset + element * width, t.dtype, rng) };
}

function sameConfig(a: MambaConfig, b: MambaConfig): boolean {
    return JSON.stringify(a) === JSON.stringify(b);
}

function bitIdentical(a: Float64Array, b: Float64Array): boolean {
    if (a.length !== b.length) return false;
    const x = new BigUint64Array(a.buffer, a.byteOffset, a.length);
    const y = new BigUint64Array(b.buffer, b.byteOffset, b.length);
    return x.every((v, i) => v === y[i]);
}

/** Judges one case's outcome; returns the problem, or undefined when the case is fine. */
function judge(copy: WorkingCopy, result: { outcome?: Outcome; error?: unknown }, tally: OutcomeTally): string | undefined {
    if (result.outcome === undefined) {
        const problem = uncleanError(result.error);
        tally.add(problem ? "unclean error" : `clean ${(result.error as Error).name}`);
        return problem;
    }
    const o = result.outcome;
    if (o.nonFiniteWeight !== undefined) {
        tally.add("non-finite weight accepted");
        return `loaded although weight ${o.nonFiniteWeight} is not finite`;
    }
    if (!o.logprobs.every((v) => Number.isFinite(v) && v <= 0)) {
        tally.add("non-finite output");
        return `score() returned non-finite or positive log-probabilities without an error: ${Array.from(o.logprobs).join(", ")}`;
    }
    if (sameConfig(o.config, copy.baseline.config) && o.tensorDigest === copy.baseline.tensorDigest) {
        tally.add("same input, same result");
        if (!bitIdentical(o.logprobs, copy.baseline.logprobs) || o.greedy.join() !== copy.baseline.greedy.join()) {
            return "the loader read the same config and tensor bytes, yet the result differs from the unmutated checkpoint's";
        }
        return undefined;
    }
    tally.add("changed input, finite result");
    return undefined;
}

describe("checkpoint fuzzing", () => {
    let root: string;
    const copies: WorkingCopy[] = [];

    beforeAll(async () => {
        root = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-fuzz-ckpt-"));
        for (const name of FIXTURE_NAMES) {
            const copy = new WorkingCopy(name, root);
            await copy.init();
            copies.push(copy);
        }
    });
    afterAll(() => {
        if (root) rmSync(root, { recursive: true, force: true });
    });

    it("unmutated working copies score identically twice (the baseline is deterministic)", async () => {
        for (const copy of copies) {
            const again = await loadAndScore(copy.dir);
            expect(bitIdentical(again.logprobs, copy.baseline.logprobs)).toBe(true);
            expect(again.logprobs.every((v) => Number.isFinite(v) && v < 0)).toBe(true);
        }
    });

    it.each([
        ["mamba1-hf", "F32 safetensors"],
        ["mamba2-hf-sharded", "F32 shards"],
        ["mamba1-ssm-f16", "F16 pickled zip"],
        ["mamba1-ssm-bf16", "BF16 pickled zip"],
        ["mamba2-ssm", "F32 pickled zip"],
    ])("a NaN/Inf weight in %s (%s) is reported, never loaded", async (name) => {
        const copy = copies.find((c) => c.fixture === name)!;
        for (let k = 0; k < 6; k++) {
            const rng = new Prng(FUZZ_SEED ^ (k * 7919));
            const { file, mutation } = nonFiniteMutation(copy, rng);
            copy.write(file, mutation.bytes);
            try {
                const error = await loadAndScore(copy.dir).then(() => undefined, (e: unknown) => e);
                expect(error, `${name} ${mutation.what} loaded`).toBeDefined();
                expect(uncleanError(error)).toBeUndefined();
                expect((error as Error).message).toMatch(/non-finite|NaN|Inf/);
            } finally {
                copy.restore(file);
            }
        }
    });

    it("safetensors header whitespace is irrelevant: results stay bit-identical", async () => {
        const copy = copies.find((c) => c.fixture === "mamba1-hf")!;
        const rng = new Prng(FUZZ_SEED);
        for (let k = 0; k < 4; k++) {
            const m = safetensorsWhitespace(copy.original("model.safetensors"), rng);
            copy.write("model.safetensors", m.bytes);
            try {
                const o = await loadAndScore(copy.dir);
                expect(bitIdentical(o.logprobs, copy.baseline.logprobs), m.what).toBe(true);
            } finally {
                copy.restore("model.safetensors");
            }
        }
    });

    it(`${FUZZ_CASES} random mutations end in a clean error or a correct result`, async () => {
        const failures: FuzzFailure[] = [];
        const tally = new OutcomeTally();
        for (let k = 0; k < FUZZ_CASES; k++) {
            const seed = FUZZ_SEED + k;
            const rng = new Prng(seed);
            const copy = rng.pick(copies);
            let file: string;
            let mutation: Mutation;
            if (rng.int(12) === 0) {
                ({ file, mutation } = nonFiniteMutation(copy, rng));
            } else {
                file = rng.pick(copy.files);
                mutation = rng.pickWeighted(mutatorsFor(file))(copy.original(file), rng);
            }
            copy.write(file, mutation.bytes);
            let result: { outcome?: Outcome; error?: unknown };
            try {
                result = { outcome: await loadAndScore(copy.dir) };
            } catch (error) {
                result = { error };
            } finally {
                copy.restore(file);
            }
            const problem = judge(copy, result, tally);
            if (problem) failures.push({ seed, target: `${copy.fixture}/${file}`, mutation: mutation.what, problem });
        }
        saveFailures(failures);
        console.log(`checkpoint fuzz: ${FUZZ_CASES} cases (seed ${FUZZ_SEED}): ${tally}`);
        expect(failures, describeFailures(failures)).toEqual([]);
        // A run where nothing ever loaded would test only the error path.
        if (FUZZ_CASES >= 200) expect(tally.get("same input, same result") + tally.get("changed input, finite result")).toBeGreaterThan(0);
    }, fuzzTimeout(FUZZ_CASES));
});
