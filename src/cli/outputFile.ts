/**
 * Output-file flags (`table --out`, `score --logits-out`): checked before any work, written with filesystem errors
 * as one line naming the flag.
 */
import { lstatSync } from "node:fs";
import path from "node:path";
import { MambaEvalError, UsageError } from "../errors.js";
import { writeFileAtomic } from "../io/atomicWrite.js";
import { describeFileKind, FileAccessError, requireFolder } from "../io/safeFile.js";

/**
 * Refuses an output file that cannot be written as a regular file: an empty name, a folder that is missing or not a
 * folder, an existing path that is a folder, FIFO or device. An existing regular file is replaced (the flag names it).
 */
export function checkOutputFile(flag: string, file: string): void {
    if (file.trim() === "") throw new UsageError(`${flag}: expected a file name, got an empty string`);
    const dir = path.dirname(path.resolve(file));
    try {
        requireFolder(dir);
    } catch (e) {
        if (e instanceof FileAccessError) throw new UsageError(`${flag} ${file}: folder ${dir}: ${e.reason}`);
        throw e;
    }
    const existing = lstatSync(file, { throwIfNoEntry: false });
    if (existing && !existing.isFile() && !existing.isSymbolicLink()) {
        throw new UsageError(`${flag} ${file}: is ${describeFileKind(existing)}, not a regular file`);
    }
}

/** Writes `content` to `file` atomically; a filesystem error (no permission, disk full) is one line naming the flag. */
export function writeOutputFile(flag: string, file: string, content: string | Uint8Array): void {
    try {
        writeFileAtomic(file, content);
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== undefined) throw new MambaEvalError(`${flag} ${file}: cannot write (${code})`);
        throw e;
    }
}
