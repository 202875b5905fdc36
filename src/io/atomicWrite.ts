/**
 * Writing files so that nothing is overwritten or lost:
 * - the bytes go to a temporary file created exclusively (O_CREAT | O_EXCL | O_NOFOLLOW) in the target's folder,
 *   under an unpredictable name `.<name>.<24 random hex digits>.tmp`, so a link planted at a predictable name is
 *   never followed and two writers never share a temporary file;
 * - it is flushed to disk (fsync) and only then moved into place: by `rename` (a link at the target is replaced,
 *   not followed) or, for files that must never replace another one (results files), by a hard link that fails
 *   when the name already exists (`noClobber`: FileExistsError, the caller picks another name);
 * - a failed write removes the temporary file and leaves the old target as it was; the temporary files of a
 *   process that exits mid-write (an interrupted run) are removed at exit.
 *
 * API: `AtomicFileWriter` (streaming: write pieces of any size, then commit or abort), `writeFileAtomic(file,
 * content, { noClobber })`, `probeWritableFolder(dir)`, `FileExistsError`.
 */
import { randomBytes } from "node:crypto";
import { closeSync, constants, copyFileSync, fsyncSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import path from "node:path";
import { MambaEvalError } from "../errors.js";
import { makeDirs } from "./dirs.js";

/** The target name exists and the write was asked not to replace it. */
export class FileExistsError extends MambaEvalError {
    constructor(readonly file: string) {
        super(`${file}: already exists`);
    }
}

const CREATE_EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);

/** fs.writeSync takes at most 2^31 - 1 bytes at once; larger pieces are written in parts of this size. */
const WRITE_PIECE = 1 << 30;

/** Temporary files this process has created and not yet moved or removed (removed at exit). */
const liveTemporaries = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
    if (exitHookInstalled) return;
    exitHookInstalled = true;
    process.on("exit", () => {
        for (const file of liveTemporaries) {
            try {
                unlinkSync(file);
            } catch {
                /* already gone */
            }
        }
        liveTemporaries.clear();
    });
}

/** Creates an empty file exclusively under an unpredictable name in `dir`; returns its path and descriptor. */
function createTemporary(dir: string, base: string): { file: string; fd: number } {
    installExitHook();
    for (let attempt = 0; ; attempt++) {
        const file = path.join(dir, `.${base.slice(0, 100)}.${randomBytes(12).toString("hex")}.tmp`);
        try {
            const fd = openSync(file, CREATE_EXCLUSIVE, 0o666);
            liveTemporaries.add(file);
            return { file, fd };
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code === "EEXIST" && attempt < 8) continue;
            throw e;
        }
    }
}

function removeQuietly(file: string): void {
    try {
        unlinkSync(file);
    } catch {
        /* already gone */
    }
    liveTemporaries.delete(file);
}

/** Options of a commit. */
export interface CommitOptions {
    /** Never replace an existing file (or link) at the target: FileExistsError instead. */
    noClobber?: boolean;
}

/**
 * A file written in pieces through an exclusive temporary file, moved into place by `commit` (see the module
 * comment). Every method is synchronous; a failure leaves the target untouched and removes the temporary file.
 */
export class AtomicFileWriter {
    private fd: number | undefined;
    private readonly temporary: string;
    /** Bytes written so far. */
    bytesWritten = 0;

    /** Creates the temporary file beside `target` (creating the folder when missing). */
    constructor(readonly target: string) {
        const dir = path.dirname(path.resolve(target));
        makeDirs(dir);
        const { file, fd } = createTemporary(dir, path.basename(target));
        this.temporary = file;
        this.fd = fd;
    }

    /** Appends `bytes` (any length; written in pieces of at most 1 GiB). */
    write(bytes: Uint8Array | string): void {
        if (this.fd === undefined) throw new Error(`${this.target}: write after commit or abort`);
        const data = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
        try {
            for (let at = 0; at < data.byteLength; ) {
                const length = Math.min(WRITE_PIECE, data.byteLength - at);
                at += writeSync(this.fd, data, at, length);
            }
            this.bytesWritten += data.byteLength;
        } catch (e) {
            this.abort();
            throw e;
        }
    }

    /** Flushes and closes the temporary file (once). */
    private finishWriting(): void {
        if (this.fd === undefined) {
            if (!liveTemporaries.has(this.temporary)) throw new Error(`${this.target}: the write was aborted`);
            return;
        }
        try {
            fsyncSync(this.fd);
            closeSync(this.fd);
            this.fd = undefined;
        } catch (e) {
            this.abort();
            throw e;
        }
    }

    /**
     * Flushes the temporary file to disk and moves it to `target` (default: the constructor's). With `noClobber` an
     * existing target is never replaced: FileExistsError, and the temporary file is kept, so the caller may commit
     * under another name (or abort).
     */
    commit(options: CommitOptions = {}, target: string = this.target): void {
        if (options.noClobber) {
            this.place(target);
            removeQuietly(this.temporary);
            return;
        }
        this.finishWriting();
        try {
            renameSync(this.temporary, target);
            liveTemporaries.delete(this.temporary);
        } catch (e) {
            this.abort();
            throw e;
        }
    }

    /**
     * Makes the finished file appear at `target` without replacing anything there (a hard link, or an exclusive
     * copy where the file system has none), keeping the temporary file: several names may be tried, and `abort`
     * then removes the temporary file while the placed names stay. FileExistsError when `target` exists.
     */
    place(target: string): void {
        this.finishWriting();
        try {
            linkSync(this.temporary, target);
            return;
        } catch (e) {
            const code = (e as NodeJS.ErrnoException).code;
            if (code === "EEXIST") throw new FileExistsError(target);
            if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS" && code !== "EMLINK") throw e;
        }
        // A file system without hard links: an exclusive copy (O_EXCL) still never replaces an existing name.
        try {
            copyFileSync(this.temporary, target, constants.COPYFILE_EXCL);
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new FileExistsError(target);
            throw e;
        }
    }

    /** Drops everything written; the target is left as it was. Safe to call more than once. */
    abort(): void {
        if (this.fd !== undefined) {
            try {
                closeSync(this.fd);
            } catch {
                /* closing a descriptor that failed a write */
            }
            this.fd = undefined;
        }
        removeQuietly(this.temporary);
    }
}

/** Writes `content` to `file` atomically (see the module comment), creating its folder. */
export function writeFileAtomic(file: string, content: string | Uint8Array, options: CommitOptions = {}): void {
    const writer = new AtomicFileWriter(file);
    writer.write(content);
    try {
        writer.commit(options);
    } catch (e) {
        writer.abort();
        throw e;
    }
}

/**
 * Proves `dir` writable by creating (exclusively, under an unpredictable name) and removing a file in it, creating
 * the folder when missing. Throws the filesystem error (with its code).
 */
export function probeWritableFolder(dir: string): void {
    makeDirs(dir);
    const { file, fd } = createTemporary(path.resolve(dir), "write-probe");
    closeSync(fd);
    removeQuietly(file);
}
