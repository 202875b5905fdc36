/**
 * CPython's `random.Random`, reproduced draw for draw: the MT19937 generator seeded from an integer through
 * `init_by_array` (what `random.Random(n)` does), `random()` with 53 random bits, and `choices(xs, k)` without
 * weights (`xs[floor(random() * n)]`). lm-eval's perplexity bootstrap uses exactly these, so reproducing them
 * reproduces its stderr bit for bit.
 *
 * API: `new PyRandom(seed)`, `.random()`, `.choices(xs, k)`, and `.resampleSum(values)` (the hot path:
 * the sum of the resample `choices(values, k=n)` would return, without allocating).
 */

const N = 624;
const M = 397;
// Constants above 2^31 are written as their int32 bit patterns so V8 keeps all arithmetic in int32.
const MATRIX_A = 0x9908b0df | 0;
const UPPER_MASK = 0x80000000 | 0;
const TEMPER_C = 0xefc60000 | 0;
const LOWER_MASK = 0x7fffffff;
const TWO_POW_MINUS_53 = 1 / 9007199254740992;

/** CPython `random.Random` (Mersenne Twister MT19937) seeded with a non-negative or negative integer. */
export class PyRandom {
    private readonly mt = new Int32Array(N); // words stored as int32 (same bits) so V8 keeps them unboxed
    private index = N + 1;

    constructor(seed: number | bigint) {
        this.seedFromInteger(seed);
    }

    /** Python's `random.seed(n)` for an int: the key is |n| as 32-bit words, least significant first. */
    private seedFromInteger(seed: number | bigint): void {
        let value = BigInt(seed);
        if (value < 0n) value = -value;
        const key: number[] = [];
        if (value === 0n) key.push(0);
        while (value > 0n) {
            key.push(Number(value & 0xffffffffn));
            value >>= 32n;
        }
        this.initByArray(key);
    }

    private initGenrand(s: number): void {
        const mt = this.mt;
        mt[0] = s >>> 0;
        for (let i = 1; i < N; i++) {
            const prev = mt[i - 1]!;
            const x = prev ^ (prev >>> 30);
            // 1812433253 * x + i, modulo 2^32, without losing bits to float rounding.
            mt[i] = (Math.imul(1812433253, x) + i) >>> 0;
        }
        this.index = N;
    }

    private initByArray(key: readonly number[]): void {
        const mt = this.mt;
        this.initGenrand(19650218);
        let i = 1;
        let j = 0;
        const keyLength = key.length;
        for (let k = Math.max(N, keyLength); k > 0; k--) {
            const prev = mt[i - 1]!;
            const x = prev ^ (prev >>> 30);
            mt[i] = ((mt[i]! ^ Math.imul(x, 1664525)) + key[j]! + j) >>> 0;
            i++;
            j++;
            if (i >= N) {
                mt[0] = mt[N - 1]!;
                i = 1;
            }
            if (j >= keyLength) j = 0;
        }
        for (let k = N - 1; k > 0; k--) {
            const prev = mt[i - 1]!;
            const x = prev ^ (prev >>> 30);
            mt[i] = ((mt[i]! ^ Math.imul(x, 1566083941)) - i) >>> 0;
            i++;
            if (i >= N) {
                mt[0] = mt[N - 1]!;
                i = 1;
            }
        }
        mt[0] = UPPER_MASK;
        this.index = N;
    }

    /** Regenerates the 624-word state block. */
    private twist(): void {
        const mt = this.mt;
        let kk = 0;
        for (; kk < N - M; kk++) {
            const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
            mt[kk] = mt[kk + M]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
        }
        for (; kk < N - 1; kk++) {
            const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
            mt[kk] = mt[kk + (M - N)]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
        }
        const y = (mt[N - 1]! & UPPER_MASK) | (mt[0]! & LOWER_MASK);
        mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
        this.index = 0;
    }

    /** One tempered 32-bit output (`genrand_uint32`). */
    nextUint32(): number {
        if (this.index >= N) this.twist();
        let y = this.mt[this.index++]!;
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & TEMPER_C;
        y ^= y >>> 18;
        return y >>> 0;
    }

    /** `random.random()`: a float in [0, 1) with 53 random bits. */
    random(): number {
        const a = this.nextUint32() >>> 5;
        const b = this.nextUint32() >>> 6;
        return (a * 67108864 + b) / 9007199254740992;
    }

    /** `random.choices(xs, k=k)` (no weights). */
    choices<T>(xs: readonly T[], k: number): T[] {
        const n = xs.length;
        const out: T[] = new Array<T>(k);
        for (let i = 0; i < k; i++) out[i] = xs[Math.floor(this.random() * n)]!;
        return out;
    }

    /**
     * Sum, left to right, of the resample `choices(values, k=values.length)` would return: the same draws as
     * `choices`, fused with the summation and inlined for speed (the perplexity bootstrap calls this 100000 times).
     */
    resampleSum(values: Float64Array): number {
        const mt = this.mt;
        const n = values.length;
        let index = this.index;
        let total = 0;
        for (let i = 0; i < n; i++) {
            if (index >= N - 1) {
                // Fewer than two words left: take them one at a time across the regeneration.
                this.index = index;
                const a = this.nextUint32() >>> 5;
                const b = this.nextUint32() >>> 6;
                index = this.index;
                total += values[Math.floor(((a * 67108864 + b) / 9007199254740992) * n)]!;
                continue;
            }
            let a = mt[index]!;
            let b = mt[index + 1]!;
            index += 2;
            a ^= a >>> 11;
            a ^= (a << 7) & 0x9d2c5680;
            a ^= (a << 15) & TEMPER_C;
            a ^= a >>> 18;
            b ^= b >>> 11;
            b ^= (b << 7) & 0x9d2c5680;
            b ^= (b << 15) & TEMPER_C;
            b ^= b >>> 18;
            // (a·2^26 + b) / 2^53 is exact either way; multiplying by 2^-53 is cheaper than dividing.
            const r = ((a >>> 5) * 67108864 + (b >>> 6)) * TWO_POW_MINUS_53;
            // r·n < n < 2^31 and non-negative, so truncation with `| 0` equals floor.
            total += values[(r * n) | 0]!;
        }
        this.index = index;
        return total;
    }
}
