/**
 * PyTorch's zip checkpoint (`torch.save`, e.g. pytorch_model.bin) → `TensorSource[]`, with no Python and no torch.
 *
 * Layout: `<archive>/data.pkl` (the pickled state dict), `<archive>/data/<key>` (one stored entry per storage),
 * `<archive>/version`, `<archive>/byteorder`. The pickle is run by the restricted unpickler with exactly the globals a
 * state dict needs: collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_tensor / _rebuild_parameter
 * and the storage types (named by persistent ids `('storage', type, key, location, numel)`). Each tensor becomes
 * {file, offset = its data entry's offset + storage_offset × element size, shape, dtype}; tensors must be contiguous
 * (row-major). Tensors that share a storage (a tied lm_head) resolve to the same bytes.
 */
import { CheckpointFormatError } from "../errors.js";
import { FileAccessError, openRegularFile } from "../io/safeFile.js";
import { PyDict, PyGlobal, PyTuple, restrictedUnpickle, type PyValue, type UnpickleHooks } from "./pickle.js";
import { DTYPE_BYTES, elementCount } from "./tensorData.js";
import type { TensorDType, TensorSource } from "./types.js";
import { readZipArchive, readZipEntry, requireStored, type ZipArchive } from "./zip.js";

/** A storage type global: the dtype it holds, or the torch dtype name when we do not load it. */
interface StorageType {
    kind: "storage";
    dtype: TensorDType | undefined;
    torchName: string;
}

/** A storage named by a persistent id. */
interface StorageRef {
    kind: "storageRef";
    key: string;
    dtype: TensorDType | undefined;
    torchName: string;
    numel: number;
}

/** A tensor view on a storage, as _rebuild_tensor_v2 describes it. */
interface TensorRef {
    kind: "tensorRef";
    storage: StorageRef;
    storageOffset: number;
    shape: number[];
    stride: number[];
}

type Rebuild = { kind: "call"; fn: "OrderedDict" | "rebuild_tensor_v2" | "rebuild_tensor" | "rebuild_parameter" };

const STORAGE_TYPES: Readonly<Record<string, TensorDType | undefined>> = {
    FloatStorage: "F32",
    HalfStorage: "F16",
    BFloat16Storage: "BF16",
    // Real torch dtypes we recognise only to name them in the refusal.
    DoubleStorage: undefined,
    LongStorage: undefined,
    IntStorage: undefined,
    ShortStorage: undefined,
    CharStorage: undefined,
    ByteStorage: undefined,
    BoolStorage: undefined,
};

/** The approved globals and what they stand for. Everything else is refused by the unpickler. */
function resolveTorchGlobal(module: string, name: string): StorageType | Rebuild | undefined {
    if (module === "collections" && name === "OrderedDict") return { kind: "call", fn: "OrderedDict" };
    if (module === "torch._utils" && name === "_rebuild_tensor_v2") return { kind: "call", fn: "rebuild_tensor_v2" };
    if (module === "torch._utils" && name === "_rebuild_tensor") return { kind: "call", fn: "rebuild_tensor" };
    if (module === "torch._utils" && name === "_rebuild_parameter") return { kind: "call", fn: "rebuild_parameter" };
    if (module === "torch" && Object.hasOwn(STORAGE_TYPES, name)) {
        return { kind: "storage", dtype: STORAGE_TYPES[name], torchName: name };
    }
    return undefined;
}

function isInt(value: PyValue): value is number {
    return typeof value === "number" && Number.isSafeInteger(value);
}

function intTuple(value: PyValue | undefined, file: string, what: string): number[] {
    if (!(value instanceof PyTuple) || !value.items.every(isInt) || value.items.some((v) => (v as number) < 0)) {
        throw new CheckpointFormatError(`${file}: ${what} must be a tuple of non-negative integers`);
    }
    return value.items as number[];
}

function isTensorRef(value: unknown): value is TensorRef {
    return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "tensorRef";
}

/** The hooks that give the approved globals their meaning. */
function torchHooks(file: string): UnpickleHooks {
    const storages = new Map<string, StorageRef>();
    const fail = (what: string): never => {
        throw new CheckpointFormatError(`${file}: ${what}`);
    };
    const rebuildTensor = (args: readonly PyValue[], name: string): TensorRef => {
        const [storage, offset, size, stride] = args;
        if (typeof storage !== "object" || storage === null || (storage as { kind?: unknown }).kind !== "storageRef") {
            fail(`${name} expects a storage as its first argument`);
        }
        if (!isInt(offset ?? null) || (offset as number) < 0) fail(`${name} expects a non-negative storage offset`);
        return {
            kind: "tensorRef",
            storage: storage as StorageRef,
            storageOffset: offset as number,
            shape: intTuple(size, file, `${name} size`),
            stride: intTuple(stride, file, `${name} stride`),
        };
    };
    return {
        resolveGlobal: resolveTorchGlobal,
        persistentLoad(pid) {
            const items = pid instanceof PyTuple ? pid.items : [];
            const [tag, type, key, , numel] = items;
            if (items.length !== 5 || tag !== "storage" || !(type instanceof PyGlobal) || typeof key !== "string" || !isInt(numel ?? null)) {
                fail("persistent id is not ('storage', storage_type, key, location, numel)");
            }
            const storageType = (type as PyGlobal).value as StorageType | Rebuild;
            if (storageType.kind !== "storage") fail(`persistent id names ${(type as PyGlobal).qualifiedName}, not a storage type`);
            const { dtype, torchName } = storageType as StorageType;
            const previous = storages.get(key as string);
            if (previous) {
                if (previous.torchName !== torchName) fail(`storage ${key as string} is used as both ${previous.torchName} and ${torchName}`);
                return previous;
            }
            const ref: StorageRef = { kind: "storageRef", key: key as string, dtype, torchName, numel: numel as number };
            storages.set(key as string, ref);
            return ref;
        },
        call(callable, args) {
            const target = callable.value as StorageType | Rebuild;
            if (target.kind !== "call") return fail(`calls ${callable.qualifiedName}, which is only allowed as a storage type`);
            switch (target.fn) {
                case "OrderedDict":
                    if (args.length !== 0) fail("OrderedDict is called with arguments");
                    return new PyDict("OrderedDict");
                case "rebuild_tensor_v2":
                    if (args.length < 6 || args.length > 7) fail(`_rebuild_tensor_v2 expects 6 or 7 arguments, got ${args.length}`);
                    return rebuildTensor(args, "_rebuild_tensor_v2");
                case "rebuild_tensor":
                    if (args.length !== 4) fail(`_rebuild_tensor expects 4 arguments, got ${args.length}`);
                    return rebuildTensor(args, "_rebuild_tensor");
                case "rebuild_parameter":
                    if (args.length !== 3 || !isTensorRef(args[0])) fail("_rebuild_parameter expects (tensor, requires_grad, hooks)");
                    return args[0] as TensorRef;
            }
        },
        build(target, state) {
            // OrderedDict.__reduce__ passes the instance dict (state_dict's `_metadata`) as BUILD state.
            if (!(target instanceof PyDict) || target.kind !== "OrderedDict") fail("BUILD on something other than an OrderedDict");
            (target as PyDict).attributes = state;
        },
    };
}

/** Row-major strides of `shape` (dimensions of size 1 may carry any stride, as torch's contiguity check allows). */
function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
    if (shape.length !== stride.length) return false;
    let expected = 1;
    for (let i = shape.length - 1; i >= 0; i--) {
        if (shape[i] !== 1 && stride[i] !== expected) return false;
        expected *= shape[i]!;
    }
    return true;
}

/** Finds `<prefix>/data.pkl` (the prefix is "archive" for current torch, the file stem for some older versions). */
function archivePrefix(archive: ZipArchive): string {
    const pickles = [...archive.entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
    if (pickles.length !== 1) {
        throw new CheckpointFormatError(`${archive.file}: expected exactly one <archive>/data.pkl entry, found ${pickles.length}`);
    }
    return pickles[0]!.slice(0, -"/data.pkl".length);
}

/** Refuses the legacy (pre-1.6, non-zip) torch.save format and other non-zip files with a clear message. */
async function requireZip(file: string): Promise<void> {
    const { handle } = await openRegularFile(file).catch((e: unknown) => {
        const why = e instanceof FileAccessError && e.code === "ENOTREG" ? e.reason : "cannot open the PyTorch checkpoint";
        throw new CheckpointFormatError(`${file}: ${why}`);
    });
    try {
        const head = Buffer.alloc(4);
        const { bytesRead } = await handle.read(head, 0, 4, 0);
        if (bytesRead === 4 && head.readUInt32LE(0) === 0x04034b50) return;
        if (bytesRead >= 2 && head[0] === 0x80 && head[1] !== undefined && head[1] <= 5) {
            throw new CheckpointFormatError(
                `${file}: legacy torch format (non-zip torch.save) not supported; re-save it with torch >= 1.6 or convert it to safetensors`,
            );
        }
        throw new CheckpointFormatError(`${file}: not a PyTorch zip checkpoint (it does not start with a zip header)`);
    } finally {
        await handle.close();
    }
}

/** Resolves one tensor to its bytes in the archive. */
function tensorSource(archive: ZipArchive, prefix: string, name: string, t: TensorRef): TensorSource {
    const file = archive.file;
    const { storage } = t;
    if (storage.dtype === undefined) {
        throw new CheckpointFormatError(`${file}: tensor ${name} is ${storage.torchName}; expected FloatStorage, HalfStorage or BFloat16Storage`);
    }
    if (!isContiguous(t.shape, t.stride)) {
        throw new CheckpointFormatError(
            `${file}: tensor ${name} has shape [${t.shape.join(", ")}] with strides [${t.stride.join(", ")}]; only contiguous row-major tensors are supported`,
        );
    }
    const entryName = `${prefix}/data/${storage.key}`;
    const entry = archive.entries.get(entryName);
    if (!entry) throw new CheckpointFormatError(`${file}: tensor ${name} needs storage entry ${entryName}, which is missing`);
    requireStored(archive, entry);
    const elementBytes = DTYPE_BYTES[storage.dtype];
    if (entry.size !== storage.numel * elementBytes) {
        throw new CheckpointFormatError(`${file}: storage entry ${entryName} holds ${entry.size} bytes, expected ${storage.numel} × ${elementBytes}`);
    }
    const numel = elementCount(t.shape);
    if (numel > 0 && t.storageOffset + numel > storage.numel) {
        throw new CheckpointFormatError(`${file}: tensor ${name} runs past the end of its storage ${storage.key}`);
    }
    return {
        name,
        dtype: storage.dtype,
        shape: t.shape,
        file,
        offset: entry.dataOffset + t.storageOffset * elementBytes,
        byteLength: numel * elementBytes,
    };
}

/** Reads a PyTorch zip checkpoint's tensors (names as saved; weightMap.ts canonicalises them), in pickle order. */
export async function readTorchBin(file: string): Promise<TensorSource[]> {
    await requireZip(file);
    const archive = await readZipArchive(file);
    const prefix = archivePrefix(archive);
    const byteorder = archive.entries.get(`${prefix}/byteorder`);
    if (byteorder) {
        const order = (await readZipEntry(archive, byteorder)).toString("utf8").trim();
        if (order !== "little") throw new CheckpointFormatError(`${file}: byteorder is "${order}"; only little-endian checkpoints are supported`);
    }
    const pickle = await readZipEntry(archive, archive.entries.get(`${prefix}/data.pkl`)!);
    const root = restrictedUnpickle(pickle, `${file} (${prefix}/data.pkl)`, torchHooks(file));
    if (!(root instanceof PyDict)) throw new CheckpointFormatError(`${file}: data.pkl does not hold a state dict (a dict of tensors)`);
    const tensors: TensorSource[] = [];
    for (const [key, value] of root.entries) {
        if (typeof key !== "string") throw new CheckpointFormatError(`${file}: state dict has a key that is not a string`);
        if (!isTensorRef(value)) throw new CheckpointFormatError(`${file}: state dict entry ${key} is not a tensor`);
        tensors.push(tensorSource(archive, prefix, key, value));
    }
    return tensors;
}
