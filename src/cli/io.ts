/** Where commands write: stdout for results, stderr for progress and notes. Injectable for tests. */
export interface CliIO {
    out(text: string): void;
    err(text: string): void;
    /** Whether stderr is a terminal (progress line rewriting). */
    errIsTTY: boolean;
}

/** "cannot write FILE (ENOSPC: no space left on device)" for a failed file write. */
export function writeErrorMessage(file: string, error: unknown): string {
    const e = error as NodeJS.ErrnoException;
    const reason = e?.code ? `${e.code}: ${String(e.message).replace(/^[A-Z]+: /, "").split(",")[0]}` : String(error);
    return `cannot write ${file} (${reason})`;
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
