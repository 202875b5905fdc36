/** "cannot write FILE (ENOSPC: no space left on device)" for a failed file write. */
export function writeErrorMessage(file: string, error: unknown): string {
    const e = error as NodeJS.ErrnoException;
    const reason = e?.code ? `${e.code}: ${String(e.message).replace(/^[A-Z]+: /, "").split(",")[0]}` : String(error);
    return `cannot write ${file} (${reason})`;
}
