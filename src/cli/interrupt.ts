/**
 * SIGINT and SIGTERM end a command promptly in every phase. The first signal aborts the command's AbortSignal: the
 * scoring loop stops at its next call, the evaluator stops between phases, and the command ends with its one-line
 * "interrupted by SIGINT" error (finished requests kept in the --use_cache file). A phase that cannot notice the
 * signal (loading weights, tokenising a large batch, a native call in flight) is not waited for long: if the command
 * has not ended GRACE_MS after the signal, or at a second signal, the process prints the same line and exits with
 * status 1 at once. Exiting runs the exit hooks, which remove the temporary files of writes in progress
 * (src/io/atomicWrite.ts); rows already in the cache are committed and stay.
 */
import { MambaEvalError } from "../errors.js";
import type { CliIO } from "./io.js";

/** How long a command may take to stop after the first signal before the process exits regardless. */
export const GRACE_MS = 2000;

/** A command's handling of SIGINT/SIGTERM; `dispose` when the command ends. */
export interface InterruptHandling {
    signal: AbortSignal;
    dispose(): void;
}

/** Installs the handling described in the module comment. */
export function handleInterrupts(io: Pick<CliIO, "err">, graceMs: number = GRACE_MS): InterruptHandling {
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const exitNow = (name: string) => {
        io.err(`mamba-eval: interrupted by ${name}\n`);
        process.exit(1);
    };
    const onSignal = (name: NodeJS.Signals) => {
        if (abort.signal.aborted) exitNow(name);
        abort.abort(new MambaEvalError(`interrupted by ${name}`));
        timer = setTimeout(() => exitNow(name), graceMs);
        timer.unref();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    return {
        signal: abort.signal,
        dispose: () => {
            process.off("SIGINT", onSignal);
            process.off("SIGTERM", onSignal);
            if (timer) clearTimeout(timer);
        },
    };
}
