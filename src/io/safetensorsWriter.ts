/**
 * Writes float32 tensors to a .safetensors file: an 8-byte little-endian header length, the JSON header (dtype,
 * shape, data_offsets per tensor, in the given order), padded with spaces to a multiple of 8, then the raw
 * little-endian data.
 *
 * The header is written first from the tensors' shapes, then the data is streamed in pieces (SafetensorsF32Writer),
 * so a file of any size (logits of long sequences reach several GiB) is written without holding it in memory. The
 * file is written through atomicWrite.ts: until `commit` nothing replaces the target, and a failed or abandoned
 * write leaves any old file there intact.
 */
import { MambaEvalError } from "../errors.js";
import { AtomicFileWriter } from "./atomicWrite.js";
import { writeErrorMessage } from "./writeErrorMessage.js";

export interface F32Tensor {
    name: string;
    shape: number[];
    data: Float32Array;
}

/** A tensor's name and shape (its data comes later). */
export interface F32TensorShape {
    name: string;
    shape: readonly number[];
}

/** The header bytes (length prefix included) and the data bytes each tensor takes. */
export function safetensorsF32Header(tensors: readonly F32TensorShape[]): { header: Buffer; dataBytes: number[] } {
    const header: Record<string, { dtype: string; shape: readonly number[]; data_offsets: [number, number] }> = {};
    const dataBytes: number[] = [];
    let offset = 0;
    for (const t of tensors) {
        const bytes = t.shape.reduce((a, b) => a * b, 1) * 4;
        if (!Number.isSafeInteger(bytes)) throw new RangeError(`tensor ${t.name}: shape ${JSON.stringify(t.shape)} is too large`);
        header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + bytes] };
        dataBytes.push(bytes);
        offset += bytes;
    }
    let json = JSON.stringify(header);
    json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
    const headerBytes = Buffer.from(json, "utf8");
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(headerBytes.length));
    return { header: Buffer.concat([length, headerBytes]), dataBytes };
}

/**
 * A safetensors file written tensor by tensor, each tensor's data in pieces of any size, in the order of the shapes
 * given. `commit` checks every byte promised by the header was written, then moves the file into place.
 */
export class SafetensorsF32Writer {
    private readonly out: AtomicFileWriter;
    private readonly dataBytes: number[];
    private tensor = 0;
    private writtenOfTensor = 0;

    constructor(readonly file: string, tensors: readonly F32TensorShape[]) {
        const { header, dataBytes } = safetensorsF32Header(tensors);
        this.dataBytes = dataBytes;
        this.out = this.guard(() => new AtomicFileWriter(file));
        this.guard(() => this.out.write(header));
        this.skipEmpty();
    }

    /** Runs a file operation; a filesystem error becomes one line naming the file (the write is abandoned). */
    private guard<T>(operation: () => T): T {
        try {
            return operation();
        } catch (e) {
            this.out?.abort();
            throw new MambaEvalError(writeErrorMessage(this.file, e));
        }
    }

    private skipEmpty(): void {
        while (this.tensor < this.dataBytes.length && this.writtenOfTensor === this.dataBytes[this.tensor]) {
            this.tensor++;
            this.writtenOfTensor = 0;
        }
    }

    /** Appends the next values (little-endian float32) of the current tensor. */
    write(values: Float32Array): void {
        const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength); // little-endian hosts
        const room = (this.dataBytes[this.tensor] ?? 0) - this.writtenOfTensor;
        if (bytes.byteLength > room) {
            this.out.abort();
            throw new RangeError(`${this.file}: ${bytes.byteLength} bytes written to tensor ${this.tensor}, which has room for ${room}`);
        }
        this.guard(() => this.out.write(bytes));
        this.writtenOfTensor += bytes.byteLength;
        this.skipEmpty();
    }

    /** Moves the finished file into place (replacing an old file there only now). */
    commit(): void {
        if (this.tensor < this.dataBytes.length) {
            this.out.abort();
            throw new RangeError(`${this.file}: tensor ${this.tensor} is incomplete`);
        }
        this.guard(() => this.out.commit());
    }

    /** Abandons the file; an old file at the target stays as it was. */
    abort(): void {
        this.out.abort();
    }
}

/** Writes `tensors` to `file` (replacing it only once the whole file is written). */
export function writeSafetensorsF32(file: string, tensors: readonly F32Tensor[]): void {
    for (const t of tensors) {
        const count = t.shape.reduce((a, b) => a * b, 1);
        if (count !== t.data.length) throw new RangeError(`tensor ${t.name}: shape ${JSON.stringify(t.shape)} holds ${count} values, data has ${t.data.length}`);
    }
    const writer = new SafetensorsF32Writer(file, tensors);
    for (const t of tensors) writer.write(t.data);
    writer.commit();
}
