/**
 * Progress of a long LM call on stderr: "done/total requests, tokens/s, ETA". On a TTY one line is rewritten
 * in place; otherwise a plain line is printed at most every `intervalMs` (default 5 s), and the update that completes
 * the call at once (so its time stamp is when the scoring ended, not when the metrics were).
 */
import type { LMProgress } from "../lm/LM.js";

export interface ProgressStream {
    write(text: string): unknown;
    isTTY?: boolean;
}

/** Formats seconds as "1h02m", "3m05s" or "42s". */
export function formatDuration(seconds: number): string {
    if (!Number.isFinite(seconds) || seconds < 0) return "?";
    const s = Math.round(seconds);
    if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
    if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
    return `${s}s`;
}

/** The text of one progress line. */
export function formatProgress(label: string, p: LMProgress, elapsedSeconds: number): string {
    const rate = elapsedSeconds > 0 ? p.tokens / elapsedSeconds : 0;
    const remaining = p.total - p.done;
    const eta = p.done > 0 && remaining > 0 ? formatDuration((elapsedSeconds / p.done) * remaining) : remaining === 0 ? "0s" : "?";
    const pct = p.total > 0 ? ((100 * p.done) / p.total).toFixed(1) : "100.0";
    return `${label}: ${p.done}/${p.total} requests (${pct}%), ${Math.round(rate)} tokens/s, ETA ${eta}`;
}

/** Reports LMProgress updates to a stream; see the module comment. */
export class ProgressReporter {
    private readonly start: number;
    private lastPrint = 0;
    private last: LMProgress | undefined;
    /** The update last written, so finish() does not repeat it on a non-TTY. */
    private printed: LMProgress | undefined;
    private lineOpen = false;
    private finished = false;

    constructor(
        private readonly label: string,
        private readonly stream: ProgressStream = process.stderr,
        private readonly intervalMs = 5000,
        private readonly now: () => number = Date.now,
    ) {
        this.start = now();
    }

    /** Records an update; prints it when due. */
    update = (p: LMProgress): void => {
        this.last = p;
        const t = this.now();
        if (this.stream.isTTY) {
            if (t - this.lastPrint < 100 && p.done < p.total) return;
            this.stream.write(`\r\x1b[2K${formatProgress(this.label, p, (t - this.start) / 1000)}`);
            this.lineOpen = true;
        } else {
            if (t - this.lastPrint < this.intervalMs && p.done < p.total) return;  // the last update prints at once
            this.stream.write(`${formatProgress(this.label, p, (t - this.start) / 1000)}\n`);
        }
        this.printed = p;
        this.lastPrint = t;
    };

    /** Prints the final state (unless a non-TTY already has it) and ends the line; later calls do nothing. */
    finish(): void {
        if (this.finished) return;
        this.finished = true;
        const alreadyPrinted = !this.stream.isTTY && this.printed === this.last;
        if (this.last && !alreadyPrinted) {
            const text = formatProgress(this.label, this.last, (this.now() - this.start) / 1000);
            this.stream.write(this.stream.isTTY ? `\r\x1b[2K${text}\n` : `${text}\n`);
            this.printed = this.last;
        } else if (this.lineOpen) this.stream.write("\n");
        this.lineOpen = false;
    }
}
