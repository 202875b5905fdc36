/**
 * A download progress report: one line rewritten in place on a TTY, plain lines (at most one per interval) otherwise.
 */

/** Where progress goes: a stream (process.stderr by default) or false for none. */
export type ProgressSink = NodeJS.WritableStream | false;

const MB = 1024 * 1024;

/** Reports bytes done/total and MB/s for one file. */
export class DownloadProgress {
    private readonly started = Date.now();
    private lastLine = 0;

    constructor(
        private readonly sink: ProgressSink,
        private readonly label: string,
        private readonly total: number,
        private readonly startAt: number,
        private readonly plainIntervalMs = 5000,
    ) {}

    private get isTty(): boolean {
        return this.sink !== false && (this.sink as { isTTY?: boolean }).isTTY === true;
    }

    private line(done: number): string {
        const seconds = Math.max((Date.now() - this.started) / 1000, 1e-3);
        const rate = (done - this.startAt) / MB / seconds;
        const percent = this.total > 0 ? ` ${((100 * done) / this.total).toFixed(1)}%` : "";
        return `${this.label}: ${(done / MB).toFixed(1)}/${(this.total / MB).toFixed(1)} MB${percent} (${rate.toFixed(1)} MB/s)`;
    }

    /** Called as bytes arrive; `done` counts from the start of the file (including resumed bytes). */
    update(done: number): void {
        if (this.sink === false) return;
        const now = Date.now();
        if (this.isTty) {
            if (now - this.lastLine < 100) return;
            this.sink.write(`\r${this.line(done)}\x1b[K`);
        } else {
            if (this.lastLine !== 0 && now - this.lastLine < this.plainIntervalMs) return;
            this.sink.write(`${this.line(done)}\n`);
        }
        this.lastLine = now;
    }

    /** The final line. */
    finish(done: number): void {
        if (this.sink === false) return;
        this.sink.write(this.isTty ? `\r${this.line(done)}\x1b[K\n` : `${this.line(done)} done\n`);
    }
}
