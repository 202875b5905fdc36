/**
 * CPython's `random.Random`, reproduced draw for draw: the MT19937 generator seeded from an integer through
 * `init_by_array` (what `random.Random(n)` does), `random()` with 53 random bits, and `choices(xs, k)` without
 * weights (`xs[floor(random() * n)]`). lm-eval's perplexity bootstrap uses exactly these, so reproducing them
 * reproduces its stderr bit for bit.
 *
 * API: `new PyRandom(seed)`, `.random()`, `.choices(xs, k)`, and `.resampleSum(values)` (the hot path:
 * the sum of the resample `choices(values, k=n)` would return, without allocating); and the generator as plain
 * functions over a state array (`mtSeedByArray`, `mtTwist`, `mtNextUint32`, `mtResampleSum`,
 * `resampleSumsFromSeed`), which `PyRandom` and the bootstrap's JS path (bootstrapChunks.ts) share. The native
 * addon's copy (native/src/cpu/pyrandom_bootstrap.cc) is tested bit for bit against `resampleSumsFromSeed`.
 *
 * Word constants above 2^31 are written so that V8 keeps all arithmetic in int32; state words are stored as
 * int32 (same bits).
 */

/** Length of an MT19937 state array: the 624 state words, then the read position (624 = block used up). */
export const MT_STATE_LENGTH = 625;

/**
 * Seeds `state` the way CPython's `init_by_array(key)` does (`init_genrand(19650218)`, then the key mixed in),
 * leaving the read position at 624 so that the first draw regenerates the block. `key` holds 32-bit words.
 */
export function mtSeedByArray(state: Int32Array, key: ArrayLike<number>): void {
    // init_genrand(19650218)
    state[0] = 19650218;
    for (let i = 1; i < 624; i++) {
        const prev = state[i - 1]!;
        // 1812433253 · (prev ^ (prev >>> 30)) + i, modulo 2^32, without losing bits to float rounding.
        state[i] = Math.imul(1812433253, prev ^ (prev >>> 30)) + i;
    }
    let i = 1;
    let j = 0;
    const keyLength = key.length;
    for (let k = Math.max(624, keyLength); k > 0; k--) {
        const prev = state[i - 1]!;
        state[i] = ((state[i]! ^ Math.imul(prev ^ (prev >>> 30), 1664525)) + key[j]! + j) | 0;
        i++;
        j++;
        if (i >= 624) {
            state[0] = state[623]!;
            i = 1;
        }
        if (j >= keyLength) j = 0;
    }
    for (let k = 623; k > 0; k--) {
        const prev = state[i - 1]!;
        state[i] = ((state[i]! ^ Math.imul(prev ^ (prev >>> 30), 1566083941)) - i) | 0;
        i++;
        if (i >= 624) {
            state[0] = state[623]!;
            i = 1;
        }
    }
    state[0] = 0x80000000 | 0;
    state[624] = 624;
}

/**
 * Regenerates the 624-word block (`genrand_uint32`'s refill) and resets the read position. Branch-free: the
 * matrix term is selected with a mask (a data-dependent branch there mispredicts half the time), and each
 * word's successor is carried in a register rather than loaded twice.
 */
export function mtTwist(state: Int32Array): void {
    const upper = 0x80000000 | 0;
    const lower = 0x7fffffff;
    const matrixA = 0x9908b0df | 0;
    let current = state[0]!;
    for (let k = 0; k < 227; k++) {
        const next = state[k + 1]!;
        const y = (current & upper) | (next & lower);
        state[k] = state[k + 397]! ^ (y >>> 1) ^ (-(next & 1) & matrixA);
        current = next;
    }
    for (let k = 227; k < 623; k++) {
        const next = state[k + 1]!;
        const y = (current & upper) | (next & lower);
        state[k] = state[k - 227]! ^ (y >>> 1) ^ (-(next & 1) & matrixA);
        current = next;
    }
    const y = (current & upper) | (state[0]! & lower);
    state[623] = state[396]! ^ (y >>> 1) ^ (-(y & 1) & matrixA);
    state[624] = 0;
}

/** MT19937's output tempering of one state word, as an unsigned 32-bit integer. */
export function mtTemper(word: number): number {
    let y = word;
    y ^= y >>> 11;
    y ^= (y << 7) & (0x9d2c5680 | 0);
    y ^= (y << 15) & (0xefc60000 | 0);
    y ^= y >>> 18;
    return y >>> 0;
}

/** One tempered 32-bit output (`genrand_uint32`), regenerating the block when it is used up. */
export function mtNextUint32(state: Int32Array): number {
    if (state[624]! >= 624) mtTwist(state);
    const index = state[624]!;
    state[624] = index + 1;
    return mtTemper(state[index]!);
}

/**
 * Sum, left to right, of the resample `choices(values, k=values.length)` would return from this state: the
 * same draws as `PyRandom.choices`, fused with the summation and without allocating. `values.length` < 2^31.
 */
export function mtResampleSum(state: Int32Array, values: Float64Array): number {
    const n = values.length;
    // Python: floor(random() · n) with random() = (a·2^26 + b) · 2^-53. Scaling by a power of two is exact and
    // commutes with rounding, so (a·2^26 + b) · (n · 2^-53) is the same double as random() · n; it is
    // non-negative and below n < 2^31, so `| 0` truncates it exactly as floor does.
    const scale = n * (1 / 9007199254740992);
    let index = state[624]!;
    let total = 0;
    for (let i = 0; i < n; i++) {
        let a: number;
        let b: number;
        if (index < 623) {
            a = mtTemper(state[index]!);
            b = mtTemper(state[index + 1]!);
            index += 2;
        } else {
            // Fewer than two words left: take them one at a time across the regeneration.
            if (index >= 624) {
                mtTwist(state);
                index = 0;
            }
            a = mtTemper(state[index++]!);
            if (index >= 624) {
                mtTwist(state);
                index = 0;
            }
            b = mtTemper(state[index++]!);
        }
        total += values[((a >>> 5) * 67108864 + (b >>> 6)) * scale | 0]!;
    }
    state[624] = index;
    return total;
}

/**
 * Writes to out[offset .. offset + count) the sums of `count` successive resamples drawn by a fresh
 * `random.Random(seed)` (`seed` an integer in [0, 2^32)): one chunk of lm-eval's perplexity bootstrap.
 */
export function resampleSumsFromSeed(seed: number, values: Float64Array, out: Float64Array, offset: number, count: number): void {
    const state = new Int32Array(625);
    mtSeedByArray(state, [seed]);
    for (let j = 0; j < count; j++) out[offset + j] = mtResampleSum(state, values);
}

/** Python's `random.seed(n)` key for an int: |n| as 32-bit words, least significant first (0 → [0]). */
function seedKeyFromInteger(seed: number | bigint): number[] {
    let value = BigInt(seed);
    if (value < 0n) value = -value;
    const key: number[] = [];
    if (value === 0n) key.push(0);
    while (value > 0n) {
        key.push(Number(value & 0xffffffffn));
        value >>= 32n;
    }
    return key;
}

/** CPython `random.Random` (Mersenne Twister MT19937) seeded with a non-negative or negative integer. */
export class PyRandom {
    private readonly state = new Int32Array(MT_STATE_LENGTH);

    constructor(seed: number | bigint) {
        mtSeedByArray(this.state, seedKeyFromInteger(seed));
    }

    /** One tempered 32-bit output (`genrand_uint32`). */
    nextUint32(): number {
        return mtNextUint32(this.state);
    }

    /** `random.random()`: a float in [0, 1) with 53 random bits. */
    random(): number {
        const a = mtNextUint32(this.state) >>> 5;
        const b = mtNextUint32(this.state) >>> 6;
        return (a * 67108864 + b) / 9007199254740992;
    }

    /** `random.choices(xs, k=k)` (no weights). */
    choices<T>(xs: readonly T[], k: number): T[] {
        const n = xs.length;
        const out: T[] = new Array<T>(k);
        for (let i = 0; i < k; i++) out[i] = xs[Math.floor(this.random() * n)]!;
        return out;
    }

    /** Sum, left to right, of the resample `choices(values, k=values.length)` would return (see mtResampleSum). */
    resampleSum(values: Float64Array): number {
        return mtResampleSum(this.state, values);
    }
}
