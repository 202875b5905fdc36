import { writeErrorMessage } from "../io/writeErrorMessage.js";

export { writeErrorMessage };
/** Where commands write: stdout for results, stderr for progress and notes. Injectable for tests. */
export interface CliIO {
    out(text: string): void;
    err(text: string): void;
    /** Whether stderr is a terminal (progress line rewriting). */
    errIsTTY: boolean;
}

let stdoutGuarded = false;

/** A failed stdout (a full disk, a closed pipe) ends the process with one error line instead of a crash. */
function guardStdout(): void {
    if (stdoutGuarded) return;
    stdoutGuarded = true;
    process.stdout.on("error", (error: NodeJS.ErrnoException) => {
        if (error.code !== "EPIPE") process.stderr.write(`mamba-eval: ${writeErrorMessage("stdout", error)}\n`);
        process.exit(error.code === "EPIPE" ? 0 : 1);
    });
}

export const processIO: CliIO = {
    out: (text) => {
        guardStdout();
        process.stdout.write(text);
    },
    err: (text) => void process.stderr.write(text),
    errIsTTY: Boolean(process.stderr.isTTY),
};
