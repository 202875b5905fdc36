/**
 * A minimal zip central-directory reader for PyTorch's zip checkpoints: it lists entries and finds where each stored
 * (uncompressed) entry's bytes start, so tensors can be memory-mapped in place. ZIP64 records are honoured.
 * Compressed or encrypted entries are refused by name (torch.save writes every entry stored).
 */
import { type FileHandle } from "node:fs/promises";
import { crc32 } from "node:zlib";
import { CheckpointFormatError } from "../errors.js";
import { FileAccessError, openRegularFile } from "../io/safeFile.js";

/** Opens the archive after checking it is a regular file (a FIFO never blocks the open). */
async function openArchive(file: string): Promise<{ handle: FileHandle; size: number }> {
    return openRegularFile(file).catch((e: unknown) => {
        const why = e instanceof FileAccessError && e.code === "ENOTREG" ? e.reason : "cannot open the zip archive";
        throw new CheckpointFormatError(`${file}: ${why}`);
    });
}

/** One file inside the archive. */
export interface ZipEntry {
    name: string;
    /** 0 = stored; anything else is compressed and cannot be read in place. */
    method: number;
    compressedSize: number;
    size: number;
    crc32: number;
    /** Absolute offset in the archive file of the entry's first data byte. */
    dataOffset: number;
}

/** The archive's entries by name. */
export interface ZipArchive {
    file: string;
    fileSize: number;
    entries: Map<string, ZipEntry>;
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
/** Most bytes read whole from an archive: its central directory, or one entry such as data.pkl (MiB in practice). */
const MAX_READ_WHOLE = 256 * 1024 * 1024;
const MAX_COMMENT = 0xffff;

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
    const bytes = Buffer.alloc(length);
    const { bytesRead } = await handle.read(bytes, 0, length, position);
    return bytes.subarray(0, bytesRead);
}

function u64(bytes: Buffer, at: number, file: string, what: string): number {
    const value = bytes.readBigUInt64LE(at);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new CheckpointFormatError(`${file}: zip ${what} ${value} is too large`);
    return Number(value);
}

/** Locates the central directory: [offset, size, entry count], following the ZIP64 locator when present. */
async function findCentralDirectory(handle: FileHandle, file: string, fileSize: number): Promise<[number, number, number]> {
    const tailLength = Math.min(fileSize, EOCD_SIZE + MAX_COMMENT);
    const tailStart = fileSize - tailLength;
    const tail = await readAt(handle, tailStart, tailLength);
    let eocd = -1;
    for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
        if (tail.readUInt32LE(i) === EOCD_SIGNATURE) {
            eocd = i;
            break;
        }
    }
    if (eocd < 0) throw new CheckpointFormatError(`${file}: not a zip archive (no end-of-central-directory record)`);
    let count = tail.readUInt16LE(eocd + 10);
    let size = tail.readUInt32LE(eocd + 12);
    let offset = tail.readUInt32LE(eocd + 16);
    const locatorAt = tailStart + eocd - 20;
    if (locatorAt >= 0) {
        const locator = await readAt(handle, locatorAt, 20);
        if (locator.length === 20 && locator.readUInt32LE(0) === ZIP64_LOCATOR_SIGNATURE) {
            const zip64At = u64(locator, 8, file, "ZIP64 record offset");
            const record = await readAt(handle, zip64At, 56);
            if (record.length !== 56 || record.readUInt32LE(0) !== ZIP64_EOCD_SIGNATURE) {
                throw new CheckpointFormatError(`${file}: ZIP64 end-of-central-directory record is missing or damaged`);
            }
            count = u64(record, 32, file, "entry count");
            size = u64(record, 40, file, "central directory size");
            offset = u64(record, 48, file, "central directory offset");
        }
    }
    if (offset + size > fileSize) throw new CheckpointFormatError(`${file}: zip central directory runs past the end of the file`);
    if (size > MAX_READ_WHOLE) throw new CheckpointFormatError(`${file}: zip central directory of ${size} bytes is not sane (limit ${MAX_READ_WHOLE})`);
    return [offset, size, count];
}

/** Reads the ZIP64 extended-information extra field (id 0x0001) for whichever 32-bit fields overflowed. */
function applyZip64Extra(
    extra: Buffer, file: string, name: string, sizes: { size: number; compressedSize: number; localOffset: number },
): void {
    let at = 0;
    while (at + 4 <= extra.length) {
        const id = extra.readUInt16LE(at);
        const length = extra.readUInt16LE(at + 2);
        if (id === 0x0001) {
            let field = at + 4;
            const take = (): number => {
                if (field + 8 > at + 4 + length) throw new CheckpointFormatError(`${file}: zip entry ${name}: ZIP64 extra field too short`);
                const value = u64(extra, field, file, `entry ${name} field`);
                field += 8;
                return value;
            };
            if (sizes.size === 0xffffffff) sizes.size = take();
            if (sizes.compressedSize === 0xffffffff) sizes.compressedSize = take();
            if (sizes.localOffset === 0xffffffff) sizes.localOffset = take();
            return;
        }
        at += 4 + length;
    }
}

/** Reads the central directory and every entry's local header (to find where its data starts). */
export async function readZipArchive(file: string): Promise<ZipArchive> {
    const { handle, size: fileSize } = await openArchive(file);
    try {
        const [cdOffset, cdSize, count] = await findCentralDirectory(handle, file, fileSize);
        const directory = await readAt(handle, cdOffset, cdSize);
        const entries = new Map<string, ZipEntry>();
        let at = 0;
        for (let i = 0; i < count; i++) {
            if (at + 46 > directory.length || directory.readUInt32LE(at) !== CENTRAL_SIGNATURE) {
                throw new CheckpointFormatError(`${file}: zip central directory entry ${i} is damaged`);
            }
            const flags = directory.readUInt16LE(at + 8);
            const method = directory.readUInt16LE(at + 10);
            const crc = directory.readUInt32LE(at + 16);
            const nameLength = directory.readUInt16LE(at + 28);
            const extraLength = directory.readUInt16LE(at + 30);
            const commentLength = directory.readUInt16LE(at + 32);
            const name = directory.toString("utf8", at + 46, at + 46 + nameLength);
            const sizes = {
                compressedSize: directory.readUInt32LE(at + 20),
                size: directory.readUInt32LE(at + 24),
                localOffset: directory.readUInt32LE(at + 42),
            };
            const extraStart = at + 46 + nameLength;
            applyZip64Extra(directory.subarray(extraStart, extraStart + extraLength), file, name, sizes);
            at = extraStart + extraLength + commentLength;
            if (flags & 0x1) throw new CheckpointFormatError(`${file}: zip entry ${name} is encrypted`);
            const local = await readAt(handle, sizes.localOffset, 30);
            if (local.length !== 30 || local.readUInt32LE(0) !== LOCAL_SIGNATURE) {
                throw new CheckpointFormatError(`${file}: zip entry ${name}: local header missing at offset ${sizes.localOffset}`);
            }
            const dataOffset = sizes.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
            if (dataOffset + sizes.compressedSize > fileSize) {
                throw new CheckpointFormatError(`${file}: zip entry ${name} runs past the end of the file`);
            }
            entries.set(name, { name, method, compressedSize: sizes.compressedSize, size: sizes.size, crc32: crc, dataOffset });
        }
        return { file, fileSize, entries };
    } finally {
        await handle.close();
    }
}

/** Refuses an entry that is not stored uncompressed (its bytes could not be used in place). */
export function requireStored(archive: ZipArchive, entry: ZipEntry): void {
    if (entry.method !== 0 || entry.size !== entry.compressedSize) {
        throw new CheckpointFormatError(
            `${archive.file}: zip entry ${entry.name} is compressed (method ${entry.method}); ` +
            "PyTorch checkpoints must have stored (uncompressed) entries, as torch.save writes them",
        );
    }
}

/** Reads a whole stored entry (for small ones such as data.pkl) and checks its CRC-32. */
export async function readZipEntry(archive: ZipArchive, entry: ZipEntry): Promise<Buffer> {
    requireStored(archive, entry);
    if (entry.size > MAX_READ_WHOLE) throw new CheckpointFormatError(`${archive.file}: zip entry ${entry.name} of ${entry.size} bytes is too large to read whole (limit ${MAX_READ_WHOLE})`);
    const { handle } = await openArchive(archive.file);
    try {
        const bytes = await readAt(handle, entry.dataOffset, entry.size);
        if (bytes.length !== entry.size || crc32(bytes) !== entry.crc32) {
            throw new CheckpointFormatError(`${archive.file}: zip entry ${entry.name} fails its CRC-32 check`);
        }
        return bytes;
    } finally {
        await handle.close();
    }
}
