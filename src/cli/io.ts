/** Where commands write: stdout for results, stderr for progress and notes. Injectable for tests. */
export interface CliIO {
    out(text: string): void;
    err(text: string): void;
    /** Whether stderr is a terminal (progress line rewriting). */
    errIsTTY: boolean;
}

export const processIO: CliIO = {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    errIsTTY: Boolean(process.stderr.isTTY),
};
