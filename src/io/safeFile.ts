/**
 * Opening what the tool reads, safely: a path is opened without blocking (O_NONBLOCK, so a FIFO cannot hang the
 * open) and checked to be a regular file before a byte is read, so a FIFO, a socket, a device such as /dev/zero
 * or a folder where a file is expected is refused with one line instead of blocking or flooding memory. Small
 * files (config.json, tokenizer.json, index files, id lists, task data) are read whole under a size limit, and
 * text is decoded as strict UTF-8 (an invalid byte is named with its line and column, never replaced).
 *
 * API: `openRegularFile` / `openRegularFileSync` (a handle on a checked regular file), `requireRegularFile`,
 * `requireFolder` (stat checks for paths handed to native code or listed), `readSmallFile` / `readSmallFileSync`
 * (bytes, bounded), `readSmallTextFile` (strict UTF-8 text, bounded), `decodeUtf8Strict`, and the size limits.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from "node:fs";
import { open, stat, type FileHandle } from "node:fs/promises";
import { MambaEvalError } from "../errors.js";

/** A path that cannot be read as asked: missing, not a regular file (or folder), too large, or not UTF-8. */
export class FileAccessError extends MambaEvalError {
    constructor(readonly file: string, readonly reason: string, readonly code?: string) {
        super(`${file}: ${reason}`);
    }
}

const MiB = 1024 * 1024;

/** Size limits of the small files read whole (far above any real one; a larger file is refused as "too large"). */
export const SIZE_LIMITS = {
    /** A model's config.json, tokenizer_config.json, special_tokens_map.json. */
    config: 16 * MiB,
    /** A sharded checkpoint's *.index.json. */
    index: 64 * MiB,
    /** tokenizer.json (the largest published ones are tens of MiB). */
    tokenizer: 256 * MiB,
    /** score --ids-file. */
    ids: 256 * MiB,
    /** A results or samples file; JavaScript strings end near 512 Mi characters. */
    data: 512 * MiB,
    /**
     * A task's data file (jsonl, label list): the real ones are at most a few tens of MiB; beyond this the lines and
     * records read from it would take gigabytes.
     */
    taskData: 128 * MiB,
} as const;

/** "a FIFO (named pipe)", "a folder", …: what a non-regular path is, for messages. */
export function describeFileKind(stats: Stats): string {
    if (stats.isFile()) return "a regular file";
    if (stats.isDirectory()) return "a folder";
    if (stats.isFIFO()) return "a FIFO (named pipe)";
    if (stats.isSocket()) return "a socket";
    if (stats.isCharacterDevice()) return "a character device";
    if (stats.isBlockDevice()) return "a block device";
    if (stats.isSymbolicLink()) return "a symbolic link";
    return "not a regular file";
}

function notRegular(file: string, stats: Stats): FileAccessError {
    return new FileAccessError(file, `is ${describeFileKind(stats)}, not a regular file`, "ENOTREG");
}

function openFailure(file: string, error: unknown): FileAccessError {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENXIO" || code === "ENODEV" || code === "EOPNOTSUPP") {
        // Opening a socket (or a device without a driver) fails this way: say what the path is.
        const stats = statSync(file, { throwIfNoEntry: false });
        if (stats && !stats.isFile()) return notRegular(file, stats);
    }
    const reason = code === "ENOENT" ? "no such file" : code === "EACCES" || code === "EPERM" ? "permission denied" : code === "EISDIR" ? "is a folder, not a regular file" : `cannot open (${code ?? String(error)})`;
    return new FileAccessError(file, reason, code);
}

function tooLarge(file: string, size: number | string, limit: number, what: string): FileAccessError {
    return new FileAccessError(file, `is too large for ${what} (${size} bytes; the limit is ${formatBytes(limit)})`, "ETOOLARGE");
}

/** 16 MiB, 1.5 GiB, 300 bytes. */
export function formatBytes(n: number): string {
    if (n >= 2 ** 30) return `${+(n / 2 ** 30).toFixed(2)} GiB`;
    if (n >= MiB) return `${+(n / MiB).toFixed(2)} MiB`;
    if (n >= 1024) return `${+(n / 1024).toFixed(2)} KiB`;
    return `${n} bytes`;
}

// O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer. It does not change how a
// regular file reads (libuv adds O_CLOEXEC itself).
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** Opens `file` for reading after checking (on the open descriptor) that it is a regular file. */
export async function openRegularFile(file: string): Promise<{ handle: FileHandle; size: number }> {
    let handle: FileHandle;
    try {
        handle = await open(file, READ_FLAGS);
    } catch (e) {
        throw openFailure(file, e);
    }
    try {
        const stats = await handle.stat();
        if (!stats.isFile()) throw notRegular(file, stats);
        return { handle, size: stats.size };
    } catch (e) {
        await handle.close();
        throw e;
    }
}

/** openRegularFile, synchronously: a descriptor the caller closes. */
export function openRegularFileSync(file: string): { fd: number; size: number } {
    let fd: number;
    try {
        fd = openSync(file, READ_FLAGS);
    } catch (e) {
        throw openFailure(file, e);
    }
    try {
        const stats = fstatSync(fd);
        if (!stats.isFile()) throw notRegular(file, stats);
        return { fd, size: stats.size };
    } catch (e) {
        closeSync(fd);
        throw e;
    }
}

/** Checks that `file` (following links) is a regular file, for paths another component opens (memory-mapped weights). */
export async function requireRegularFile(file: string): Promise<number> {
    let stats: Stats;
    try {
        stats = await stat(file);
    } catch (e) {
        throw openFailure(file, e);
    }
    if (!stats.isFile()) throw notRegular(file, stats);
    return stats.size;
}

/** Checks that `dir` (following links) is a folder. */
export function requireFolder(dir: string): void {
    let stats: Stats;
    try {
        stats = statSync(dir);
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new FileAccessError(dir, code === "ENOENT" ? "no such folder" : `cannot read the folder (${code ?? String(e)})`, code);
    }
    if (!stats.isDirectory()) throw new FileAccessError(dir, `is ${describeFileKind(stats)}, not a folder`, "ENOTDIR");
}

/** Options of the bounded reads. */
export interface ReadLimit {
    /** Most bytes accepted (SIZE_LIMITS.*). */
    limit: number;
    /** What the file is, for the "too large" message ("a config.json"). */
    what: string;
}

/**
 * Bytes to ask of the next read of readSmallFile(Sync): what is left by the file's size plus 1 (so one read proves the
 * end), at least 64 KiB (files whose size reads as 0, as in procfs), at most 16 MiB, and never past limit + 1.
 */
function nextReadBytes(size: number, total: number, limit: number): number {
    return Math.max(1, Math.min(Math.max(size - total + 1, 1 << 16), 1 << 24, limit + 1 - total));
}

/**
 * Reads a small regular file whole: refused when it is larger than `limit` (checked on its size, and again while
 * reading, so a file that grows cannot exceed it either).
 */
export async function readSmallFile(file: string, { limit, what }: ReadLimit): Promise<Buffer> {
    const { handle, size } = await openRegularFile(file);
    try {
        if (size > limit) throw tooLarge(file, size, limit, what);
        const chunks: Buffer[] = [];
        let total = 0;
        for (;;) {
            const buffer = Buffer.allocUnsafe(nextReadBytes(size, total, limit));
            const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
            if (bytesRead === 0) break;
            chunks.push(buffer.subarray(0, bytesRead));
            total += bytesRead;
            if (total > limit) throw tooLarge(file, `more than ${limit}`, limit, what);
        }
        return Buffer.concat(chunks, total);
    } finally {
        await handle.close();
    }
}

/** readSmallFile, synchronously. */
export function readSmallFileSync(file: string, { limit, what }: ReadLimit): Buffer {
    const { fd, size } = openRegularFileSync(file);
    try {
        if (size > limit) throw tooLarge(file, size, limit, what);
        const chunks: Buffer[] = [];
        let total = 0;
        for (;;) {
            const buffer = Buffer.allocUnsafe(nextReadBytes(size, total, limit));
            const bytesRead = readSync(fd, buffer, 0, buffer.length, null);
            if (bytesRead === 0) break;
            chunks.push(buffer.subarray(0, bytesRead));
            total += bytesRead;
            if (total > limit) throw tooLarge(file, `more than ${limit}`, limit, what);
        }
        return Buffer.concat(chunks, total);
    } finally {
        closeSync(fd);
    }
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The byte index of the first byte that does not start or continue a well-formed UTF-8 sequence (overlong forms,
 * surrogates and code points past U+10FFFF included), or -1 when all of `bytes` is well-formed.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
    let i = 0;
    const n = bytes.length;
    while (i < n) {
        const b = bytes[i]!;
        if (b < 0x80) {
            i++;
            continue;
        }
        let need: number;
        let lo = 0x80;
        let hi = 0xbf;
        if (b >= 0xc2 && b <= 0xdf) need = 1;
        else if (b >= 0xe0 && b <= 0xef) {
            need = 2;
            if (b === 0xe0) lo = 0xa0; // no overlong 3-byte forms
            if (b === 0xed) hi = 0x9f; // no surrogates
        } else if (b >= 0xf0 && b <= 0xf4) {
            need = 3;
            if (b === 0xf0) lo = 0x90; // no overlong 4-byte forms
            if (b === 0xf4) hi = 0x8f; // nothing past U+10FFFF
        } else return i;
        for (let k = 1; k <= need; k++) {
            const c = bytes[i + k];
            if (c === undefined) return i;
            if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i;
        }
        i += need + 1;
    }
    return -1;
}

/** Decodes strict UTF-8 (a byte-order mark is kept); an invalid byte is an error naming its line and column. */
export function decodeUtf8Strict(bytes: Uint8Array, file: string): string {
    try {
        return strictDecoder.decode(bytes);
    } catch {
        const at = firstInvalidUtf8(bytes);
        let line = 1;
        let lineStart = 0;
        for (let i = 0; i < at; i++) {
            if (bytes[i] === 0x0a) {
                line++;
                lineStart = i + 1;
            }
        }
        const byte = bytes[at] ?? 0;
        throw new FileAccessError(`${file}:${line}`, `invalid UTF-8 (byte 0x${byte.toString(16).padStart(2, "0")} at byte ${at - lineStart + 1} of the line); the file must be UTF-8 text`, "EILSEQ");
    }
}

/** readSmallFile decoded as strict UTF-8. */
export async function readSmallTextFile(file: string, limit: ReadLimit): Promise<string> {
    return decodeUtf8Strict(await readSmallFile(file, limit), file);
}

/** readSmallFileSync decoded as strict UTF-8. */
export function readSmallTextFileSync(file: string, limit: ReadLimit): string {
    return decodeUtf8Strict(readSmallFileSync(file, limit), file);
}
