/** Progress on stderr: plain throttled lines on a non-TTY (logs, CI), one rewritten line on a terminal. */
import { describe, expect, it } from "vitest";
import { formatDuration, formatProgress, ProgressReporter } from "../../src/evaluator/progress.js";

function recorder(isTTY: boolean) {
    const writes: string[] = [];
    return { writes, stream: { write: (t: string) => writes.push(t), isTTY } };
}

describe("progress lines", () => {
    it("formats done/total, percent, tokens/s and ETA (hand-checked)", () => {
        // 30 of 120 done in 10 s → 90 left at 1/3 s each = 30 s; 4500 tokens / 10 s.
        expect(formatProgress("loglikelihood", { done: 30, total: 120, tokens: 4500 }, 10)).toBe("loglikelihood: 30/120 requests (25.0%), 450 tokens/s, ETA 30s");
        expect(formatProgress("x", { done: 0, total: 5, tokens: 0 }, 0)).toBe("x: 0/5 requests (0.0%), 0 tokens/s, ETA ?");
        expect(formatDuration(3725)).toBe("1h02m");
        expect(formatDuration(42.4)).toBe("42s");
        expect(formatDuration(185)).toBe("3m05s");
    });

    it("on a non-TTY prints a line at most every interval and the completing update at once, no carriage returns, the final state once", () => {
        let now = 1_000_000;
        const { writes, stream } = recorder(false);
        const progress = new ProgressReporter("loglikelihood", stream, 5000, () => now);
        const step = (ms: number, done: number) => {
            now += ms;
            progress.update({ done, total: 10, tokens: done * 100 });
        };
        step(1000, 1); // first update: printed
        step(1000, 2); // 1 s later: throttled
        step(3000, 3); // 4 s after the last print: throttled
        step(1500, 4); // 5.5 s: printed (400 tokens in 6.5 s = 61.5 → 62 tokens/s; 6 left at 1.625 s each)
        step(100, 10); // 0.1 s, but it completes the call: printed at once (the time the scoring ended)
        expect(writes).toHaveLength(3);
        progress.finish(); // the final state is already out
        progress.finish();
        expect(writes).toEqual([
            "loglikelihood: 1/10 requests (10.0%), 100 tokens/s, ETA 9s\n",
            "loglikelihood: 4/10 requests (40.0%), 62 tokens/s, ETA 10s\n",
            "loglikelihood: 10/10 requests (100.0%), 152 tokens/s, ETA 0s\n",
        ]);
        expect(writes.join("")).not.toMatch(/[\r\x1b]/);
    });

    it("does not repeat a final state a non-TTY already printed", () => {
        let now = 0;
        const { writes, stream } = recorder(false);
        const progress = new ProgressReporter("ll", stream, 5000, () => now);
        now = 6000;
        progress.update({ done: 2, total: 2, tokens: 60 });
        progress.finish();
        expect(writes).toEqual(["ll: 2/2 requests (100.0%), 10 tokens/s, ETA 0s\n"]);
    });

    it("on a TTY rewrites one line in place and ends it at finish", () => {
        let now = 0;
        const { writes, stream } = recorder(true);
        const progress = new ProgressReporter("ll", stream, 5000, () => now);
        now = 1000;
        progress.update({ done: 1, total: 2, tokens: 10 });
        now = 2000;
        progress.update({ done: 2, total: 2, tokens: 20 });
        progress.finish();
        progress.finish(); // once only
        expect(writes).toEqual([
            "\r\x1b[2Kll: 1/2 requests (50.0%), 10 tokens/s, ETA 1s",
            "\r\x1b[2Kll: 2/2 requests (100.0%), 10 tokens/s, ETA 0s",
            "\r\x1b[2Kll: 2/2 requests (100.0%), 10 tokens/s, ETA 0s\n",
        ]);
    });
});
