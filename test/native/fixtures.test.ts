/**
 * The CPU backend against the independent references in fixtures/ (float64 logits computed with the
 * transformers-verified recurrence on a GPU machine): prefill logits, mixed-length packed batches,
 * step-by-step decode, at 1 and 2 threads, greedy continuations; and, for the real-vocabulary checkpoints,
 * next-token log-probabilities, log-sum-exp and argmax over all 50280 columns.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NativeBackend } from "../../src/backend/NativeBackend.js";
import type { ScoreBatch } from "../../src/addon/addonTypes.js";
import { wholeBatch } from "./tinyModel.js";
import { readF64Safetensors, relativeError } from "./referenceOutputs.js";
import { loadCheckpoint } from "../../src/model/loadModel.js";

const FIXTURES = path.resolve(import.meta.dirname, "../../fixtures");
const TOLERANCE = 1e-4;

interface Sequence {
    name: string;
    tokens: number[];
    logits: string;
    positions?: number[];
    logsumexp?: string;
    next_token_logprobs?: string;
    argmax?: number[];
}
interface Reference {
    logits_kind: "full" | "subset";
    padded_vocab_size: number;
    columns?: number[];
    sequences: Sequence[];
    greedy: { prompt: number[]; continuation: number[]; max_new_tokens: number };
}

function argmax(a: ArrayLike<number>): number {
    let best = 0;
    for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
    return best;
}

/** Fixture folders under `root` (relative to fixtures/) that hold a reference.json. */
const fixtureDirs = (root: string): string[] => {
    const at = path.join(FIXTURES, root);
    return existsSync(at) ? readdirSync(at).filter((d) => existsSync(path.join(at, d, "reference.json"))).map((d) => path.join(root, d)).sort() : [];
};
// The attention hybrids live one level down (fixtures/README.md, hybrid/).
const dirs = [...fixtureDirs(""), ...fixtureDirs("hybrid")];

describe.each(dirs)("fixture %s", (name) => {
    const dir = path.join(FIXTURES, name);
    const ref = JSON.parse(readFileSync(path.join(dir, "reference.json"), "utf8")) as Reference;
    const tensors = readF64Safetensors(path.join(dir, "reference.safetensors"));
    const V = ref.padded_vocab_size;
    const models: NativeBackend[] = [];

    beforeAll(async () => {
        const checkpoint = await loadCheckpoint(dir);
        models.push(await NativeBackend.create(checkpoint, { threads: 1 }), await NativeBackend.create(checkpoint, { threads: 2 }));
    });
    afterAll(() => models.forEach((m) => m.dispose()));

    /** The reference rows of a sequence, in the columns the fixture kept, from a [T × V] logits array. */
    const pick = (seq: Sequence, logits: Float32Array, firstRow = 0): number[] => {
        const rowsWanted = ref.logits_kind === "full" ? seq.tokens.map((_, i) => i) : seq.positions!;
        const cols = ref.logits_kind === "full" ? Array.from({ length: V }, (_, i) => i) : ref.columns!;
        return rowsWanted.flatMap((r) => cols.map((c) => logits[(firstRow + r) * V + c]!));
    };

    it("prefill logits match, each sequence alone and all packed in one call, at 1 and 2 threads", async () => {
        for (const [threads, m] of models.entries()) {
            const all = await m.score(wholeBatch(ref.sequences.map((s) => s.tokens)));
            let row = 0;
            for (const seq of ref.sequences) {
                const alone = await m.score(wholeBatch([seq.tokens]));
                const expected = tensors.get(seq.logits)!;
                expect(relativeError(pick(seq, alone.logits), expected), `${seq.name}, ${threads + 1} thread(s)`).toBeLessThanOrEqual(TOLERANCE);
                expect(pick(seq, all.logits, row)).toEqual(pick(seq, alone.logits));
                row += seq.tokens.length;
            }
        }
    });

    it("step-by-step decode logits match (two sequences stepped together)", async () => {
        const [s0, s1] = [...ref.sequences].sort((a, b) => b.tokens.length - a.tokens.length);
        const m = models[1]!;
        const got0 = new Float32Array(s0!.tokens.length * V), got1 = new Float32Array(s1!.tokens.length * V);
        for (let t = 0; t < s0!.tokens.length; t++) {
            const both = t < s1!.tokens.length;
            const lg = await m.step(both ? Int32Array.of(10, 11) : Int32Array.of(10),
                both ? Int32Array.of(s0!.tokens[t]!, s1!.tokens[t]!) : Int32Array.of(s0!.tokens[t]!));
            got0.set(lg.subarray(0, V), t * V);
            if (both) got1.set(lg.subarray(V, 2 * V), t * V);
        }
        m.freeState(10);
        m.freeState(11);
        expect(relativeError(pick(s0!, got0), tensors.get(s0!.logits)!)).toBeLessThanOrEqual(TOLERANCE);
        expect(relativeError(pick(s1!, got1), tensors.get(s1!.logits)!)).toBeLessThanOrEqual(TOLERANCE);
    });

    it("greedy continuation is identical", async () => {
        const m = models[0]!;
        const { prompt, continuation, max_new_tokens } = ref.greedy;
        const first = await m.score({
            ...wholeBatch([prompt]), segSave: Int32Array.of(3), logitRows: Int32Array.of(prompt.length - 1),
        });
        const out = [argmax(first.logits)];
        while (out.length < max_new_tokens) out.push(argmax(await m.step(Int32Array.of(3), Int32Array.of(out[out.length - 1]!))));
        m.freeState(3);
        expect(out).toEqual(continuation);
    });

    it.runIf(ref.logits_kind === "subset")("next-token log-probs, log-sum-exp and argmax match over the full vocabulary", async () => {
        for (const seq of ref.sequences) {
            const T = seq.tokens.length;
            const out = await models[1]!.score({
                ...wholeBatch([seq.tokens]),
                scoreRows: Int32Array.from({ length: T - 1 }, (_, i) => i),
                scoreTargets: Int32Array.from(seq.tokens.slice(1)),
                logitRows: Int32Array.from(seq.positions!),
            });
            const lp = tensors.get(seq.next_token_logprobs!)!;
            for (let i = 0; i < T - 1; i++) expect(Math.abs(out.logprobs[i]! - lp[i]!)).toBeLessThanOrEqual(TOLERANCE);
            const lse = tensors.get(seq.logsumexp!)!;
            seq.positions!.forEach((p, i) => {
                const row = out.logits.subarray(i * V, (i + 1) * V);
                const m = row.reduce((a, b) => Math.max(a, b), -Infinity);
                let s = 0;
                for (const v of row) s += Math.exp(v - m);
                expect(Math.abs(m + Math.log(s) - lse[i]!)).toBeLessThanOrEqual(TOLERANCE);
                expect(argmax(row)).toBe(seq.argmax![i]);
            });
        }
    });
});
