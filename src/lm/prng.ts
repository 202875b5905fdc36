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
    /** One of the items, each chosen with probability proportional to its weight. */
    pickWeighted<T>(items: ReadonlyArray<readonly [T, number]>): T {
        const total = items.reduce((sum, [, w]) => sum + w, 0);
        let u = this.next() * total;
        for (const [item, w] of items) {
            u -= w;
            if (u < 0) return item;
        }
        return items[items.length - 1]![0];
    }
}
