import { describe, expect, it } from "vitest";
import { bootstrapPerplexityStderr, correctlyRoundedExp, mean, meanStderr, perplexity, stderrFor } from "../../src/metrics/metrics.js";
import { PyRandom } from "../../src/metrics/pyrandom.js";

// Test vectors: spec §1.5 (CPython 3.11).
describe("PyRandom (CPython random.Random)", () => {
    it("random() matches CPython for seeds 0 and 1", () => {
        const r = new PyRandom(0);
        expect([r.random(), r.random(), r.random()]).toEqual([0.8444218515250481, 0.7579544029403025, 0.420571580830845]);
        expect(new PyRandom(1).random()).toBe(0.13436424411240122);
    });

    it("choices(range(10), k=10) matches CPython for seed 0", () => {
        expect(new PyRandom(0).choices([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 10)).toEqual([8, 7, 4, 2, 5, 4, 7, 3, 4, 5]);
    });

    it("resampleSum adds exactly the values choices() picks, across state regenerations", () => {
        const values = Float64Array.from({ length: 1000 }, (_, i) => -(i % 17) * 0.25 - i / 1024);
        const a = new PyRandom(7);
        const b = new PyRandom(7);
        for (let round = 0; round < 3; round++) {
            const picked = a.choices([...values], values.length);
            let expected = 0;
            for (const v of picked) expected += v;
            expect(b.resampleSum(values)).toBe(expected);
        }
    });

    it("seeds from large and negative integers like CPython (|n| as 32-bit words)", () => {
        // CPython: random.Random(2**40 + 5).random() and random.Random(-3).random() (== Random(3)).
        expect(new PyRandom(2 ** 40 + 5).random()).toBe(0.5043802970418443);
        expect(new PyRandom(-3).random()).toBe(new PyRandom(3).random());
    });
});

describe("aggregations and stderr", () => {
    const lls = [-1.5, -0.25, -3.0, -2.125, -0.5, -4.0, -1.0, -0.75];

    it("perplexity = exp(-mean)", () => {
        expect(perplexity(lls)).toBe(5.15839250025867);
    });

    it("bootstrap stderr reproduces lm-eval's draws (1000 and 100000 iterations)", () => {
        expect(bootstrapPerplexityStderr(lls, 1000)).toBe(2.7355111648609305);
        expect(bootstrapPerplexityStderr(lls, 100000)).toBe(2.720899536158438);
    });

    it("mean and mean_stderr of 0/1 accuracies", () => {
        const acc = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1];
        expect(mean(acc)).toBe(0.6);
        expect(meanStderr(acc)).toBe(0.16329931618554522);
    });

    it('stderr is "N/A" for one item or bootstrap_iters <= 0', () => {
        expect(stderrFor("mean", [1], 100000)).toBe("N/A");
        expect(stderrFor("mean", [1, 0], 0)).toBe("N/A");
        expect(stderrFor("perplexity", [-1], 100000)).toBe("N/A");
    });

    it("exp is correctly rounded where V8's Math.exp is one ulp off (Python math.exp values)", () => {
        // Each pair: x, CPython math.exp(x) (glibc), chosen where fdlibm differs.
        const cases: [number, number][] = [
            [5.15, 172.43149031685434],
            [2.8144142866929824, 16.683401227962523],
            [1.228677087202757, 3.4167065403780374],
            [5.362450065458871, 213.24677548969922],
        ];
        for (const [x, expected] of cases) {
            expect(Math.exp(x)).not.toBe(expected); // the case is one where the engine's exp differs
            expect(correctlyRoundedExp(x)).toBe(expected);
        }
        expect(correctlyRoundedExp(1.5)).toBe(4.4816890703380645);
        expect(correctlyRoundedExp(-2.125)).toBe(0.11943296826671962);
    });
});
