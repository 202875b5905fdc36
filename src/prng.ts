/**
 * Mulberry32: a small seeded PRNG with 32 bits of state, for reproducible sampling (generate --seed) and the fuzz
 * tests. next() returns a float in [0, 1) with 32 random bits.
 */
export class Mulberry32 {
    private state: number;
    constructor(seed: number) {
        this.state = seed >>> 0;
    }
    next(): number {
        this.state = (this.state + 0x6d2b79f5) >>> 0;
        let t = this.state;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    }
    /** Integer in [0, n). */
    int(n: number): number {
        return Math.floor(this.next() * n);
    }
    /** A uniformly chosen element of a non-empty list. */
    pick<T>(items: readonly T[]): T {
        if (items.length === 0) throw new Error("pick from an empty list");
        return items[this.int(items.length)]!;
    }
}
