/**
 * File-system failures inside the hub cache as one line naming the path and what is wrong there: a file where
 * the cache needs a folder (HF_HOME pointing at a file, or a cache written by another tool), a folder where it
 * needs a file, no permission, no space. Anything else keeps its system code.
 */
import { statSync } from "node:fs";
import path from "node:path";
import { DownloadError, MambaEvalError } from "../errors.js";

/** A Node system error (it carries an errno code). */
export function isSystemError(error: unknown): error is NodeJS.ErrnoException {
    return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === "string" && !(error instanceof MambaEvalError);
}

/** The nearest existing ancestor of `file` (or `file` itself) when it is not a folder. */
function blockingFile(file: string): string | undefined {
    for (let current = path.resolve(file); ; current = path.dirname(current)) {
        let isFolder: boolean | undefined;
        try {
            isFolder = statSync(current).isDirectory();
        } catch {
            isFolder = undefined;
        }
        if (isFolder !== undefined) return isFolder ? undefined : current;
        if (path.dirname(current) === current) return undefined;
    }
}

/** One line for a system error met at `file`; `cacheNote` says where the cache folder comes from. */
export function fsFailure(error: NodeJS.ErrnoException, file: string, cacheNote: string): DownloadError {
    const at = error.path ?? file;
    switch (error.code) {
        case "ENOTDIR":
        case "EEXIST": {
            const blocker = blockingFile(at);
            if (blocker !== undefined) return new DownloadError(`${blocker}: is a file where the hub cache needs a folder (cache from ${cacheNote})`);
            return new DownloadError(`${at}: ${error.code} (${error.syscall ?? "file system"}) in the hub cache (from ${cacheNote})`);
        }
        case "EISDIR":
            return new DownloadError(`${at}: is a folder where the hub cache needs a file (a cache written by another tool? remove it to fetch again)`);
        case "EACCES":
        case "EPERM":
            return new DownloadError(`${at}: permission denied in the hub cache (from ${cacheNote})`);
        case "EROFS":
            return new DownloadError(`${at}: the hub cache is on a read-only file system (from ${cacheNote}); run with HF_HUB_OFFLINE=1 to only read it`);
        case "ENOSPC":
        case "EDQUOT":
            return new DownloadError(`${at}: no space left for the hub cache (from ${cacheNote})`);
        default:
            return new DownloadError(`${at}: ${error.code} (${error.syscall ?? "file system"}) in the hub cache (from ${cacheNote})`);
    }
}
