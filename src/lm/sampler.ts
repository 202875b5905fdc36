/**
 * Choosing the next token from a row of logits: greedy (first index wins ties) or seeded sampling with
 * temperature, top-k and top-p, on one Mulberry32 stream per generation.
 */
import { UsageError } from "../errors.js";
import { Mulberry32 } from "./prng.js";

export interface SamplingOptions {
    /** 0 or undefined: greedy. */
    temperature?: number;
    /** Keep only the k most likely tokens (0 or undefined: all). */
    topK?: number;
    /** Keep the smallest set of most likely tokens whose probability reaches p (1 or undefined: all). */
    topP?: number;
    /** PRNG seed (default 0). */
    seed?: number;
}

/** Index of the largest value in logits[0..n); the first index wins ties. */
export function argmax(logits: ArrayLike<number>, n = logits.length): number {
    let best = 0;
    let bestValue = -Infinity;
    for (let i = 0; i < n; i++) {
        const v = logits[i]!;
        if (v > bestValue) {
            bestValue = v;
            best = i;
        }
    }
    return best;
}

/** Checks sampling options; throws UsageError naming the flag. */
export function validateSampling(opts: SamplingOptions): void {
    const { temperature, topK, topP } = opts;
    if (temperature !== undefined && !(Number.isFinite(temperature) && temperature >= 0)) {
        throw new UsageError(`--temperature ${temperature}: expected a number >= 0`);
    }
    if (topK !== undefined && !(Number.isInteger(topK) && topK >= 0)) throw new UsageError(`--top-k ${topK}: expected an integer >= 0`);
    if (topP !== undefined && !(Number.isFinite(topP) && topP > 0 && topP <= 1)) throw new UsageError(`--top-p ${topP}: expected a number in (0, 1]`);
}

/** A token chooser bound to one PRNG stream. `vocab` limits the candidates (e.g. to the tokenizer's size). */
export class Sampler {
    private readonly rng: Mulberry32;
    constructor(private readonly opts: SamplingOptions, private readonly vocab: number) {
        validateSampling(opts);
        this.rng = new Mulberry32(opts.seed ?? 0);
    }

    get greedy(): boolean {
        return !this.opts.temperature;
    }

    /** Picks the next token from one row of logits. */
    pick(logits: ArrayLike<number>): number {
        const n = Math.min(this.vocab, logits.length);
        if (this.greedy) return argmax(logits, n);
        const t = this.opts.temperature!;
        // Candidates in descending logit order; equal logits keep index order (stable sort).
        let order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
        const topK = this.opts.topK ?? 0;
        if (topK > 0 && topK < order.length) order = order.slice(0, topK);
        const maxLogit = logits[order[0]!]!;
        const weights = order.map((i) => Math.exp((logits[i]! - maxLogit) / t));
        let total = weights.reduce((a, b) => a + b, 0);
        const topP = this.opts.topP ?? 1;
        if (topP < 1) {
            let cum = 0;
            let keep = 0;
            while (keep < weights.length && cum < topP * total) cum += weights[keep++]!;
            order = order.slice(0, Math.max(1, keep));
            weights.length = order.length;
            total = weights.reduce((a, b) => a + b, 0);
        }
        let u = this.rng.next() * total;
        for (let j = 0; j < order.length; j++) {
            u -= weights[j]!;
            if (u < 0) return order[j]!;
        }
        return order[order.length - 1]!;
    }
}

