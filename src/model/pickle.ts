/**
 * A restricted unpickler: it interprets the pickle opcodes (protocols 2–5) that a PyTorch state dict uses and
 * executes nothing. Every global the pickle names must be approved by the caller's `resolveGlobal` (anything else is
 * refused with the global's name); calls (REDUCE) and BUILD go to the caller's hooks, which see only approved
 * globals. Object-creating opcodes (INST, OBJ, NEWOBJ, NEWOBJ_EX), extensions and out-of-band buffers are refused.
 */
import { CheckpointFormatError } from "../errors.js";

/** A Python tuple (kept apart from lists, which are plain arrays). */
export class PyTuple {
    constructor(readonly items: readonly PyValue[]) {}
}

/** A Python dict (or OrderedDict), insertion-ordered; `attributes` holds a BUILD state set on it, if any. */
export class PyDict {
    readonly entries = new Map<PyValue, PyValue>();
    attributes: PyValue = null;
    constructor(readonly kind: "dict" | "OrderedDict" = "dict") {}
}

/** A global the caller approved; `value` is what the caller maps it to. */
export class PyGlobal {
    constructor(readonly module: string, readonly name: string, readonly value: unknown) {}
    get qualifiedName(): string {
        return `${this.module}.${this.name}`;
    }
}

/** Values the unpickler produces. Opaque values made by the caller's hooks are carried as `object`. */
export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | PyDict | PyGlobal | object;

/** The caller's policy: which globals exist, what persistent ids and calls mean. */
export interface UnpickleHooks {
    /** Returns the value for an approved global, or undefined to refuse it. */
    resolveGlobal(module: string, name: string): unknown;
    /** BINPERSID: turns a persistent id into a value (throws to refuse). */
    persistentLoad(pid: PyValue): PyValue;
    /** REDUCE: calls an approved global with positional arguments (throws to refuse). */
    call(callable: PyGlobal, args: readonly PyValue[]): PyValue;
    /** BUILD: applies `state` to `target` (throws to refuse). */
    build(target: PyValue, state: PyValue): void;
}

const MARK = Symbol("mark");
type StackItem = PyValue | typeof MARK;

/** Opcodes named for messages and the dispatch below. */
const OPS: Readonly<Record<number, string>> = {
    0x80: "PROTO", 0x95: "FRAME", 0x2e: "STOP", 0x28: "MARK", 0x7d: "EMPTY_DICT", 0x5d: "EMPTY_LIST", 0x29: "EMPTY_TUPLE",
    0x74: "TUPLE", 0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3", 0x71: "BINPUT", 0x72: "LONG_BINPUT", 0x94: "MEMOIZE",
    0x68: "BINGET", 0x6a: "LONG_BINGET", 0x63: "GLOBAL", 0x93: "STACK_GLOBAL", 0x58: "BINUNICODE", 0x8c: "SHORT_BINUNICODE",
    0x8d: "BINUNICODE8", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING", 0x42: "BINBYTES", 0x43: "SHORT_BINBYTES",
    0x8e: "BINBYTES8", 0x4a: "BININT", 0x4b: "BININT1", 0x4d: "BININT2", 0x8a: "LONG1", 0x8b: "LONG4", 0x4e: "NONE",
    0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x47: "BINFLOAT", 0x73: "SETITEM", 0x75: "SETITEMS", 0x61: "APPEND",
    0x65: "APPENDS", 0x52: "REDUCE", 0x51: "BINPERSID", 0x62: "BUILD", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP",
};

/** Runs a pickle under `hooks` and returns the top-level value. `file` names the source in error messages. */
export function restrictedUnpickle(data: Uint8Array, file: string, hooks: UnpickleHooks): PyValue {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const decoder = new TextDecoder("utf-8", { fatal: true });
    const stack: StackItem[] = [];
    const memo = new Map<number, PyValue>();
    let pos = 0;

    const fail = (what: string): never => {
        throw new CheckpointFormatError(`${file}: pickle ${what} (at byte ${pos})`);
    };
    const need = (n: number): number => {
        if (n < 0 || pos + n > data.length) fail("is truncated");
        const at = pos;
        pos += n;
        return at;
    };
    const u8 = (): number => data[need(1)]!;
    const u16 = (): number => view.getUint16(need(2), true);
    const u32 = (): number => view.getUint32(need(4), true);
    const u64 = (): number => {
        const value = view.getBigUint64(need(8), true);
        return value > BigInt(data.length) ? fail("declares a length beyond its end") : Number(value);
    };
    const bytes = (n: number): Uint8Array => data.subarray(need(n), pos);
    const text = (n: number): string => {
        const raw = bytes(n);
        try {
            return decoder.decode(raw);
        } catch {
            return fail("has a string that is not valid UTF-8");
        }
    };
    const line = (): string => {
        const end = data.indexOf(0x0a, pos);
        if (end < 0) fail("is truncated");
        return text(end - pos + 1).slice(0, -1);
    };
    const pop = (): PyValue => {
        const item = stack.pop();
        if (item === undefined || item === MARK) return fail("pops from an empty stack");
        return item as PyValue;
    };
    const top = (): PyValue => {
        const item = stack[stack.length - 1];
        if (item === undefined || item === MARK) return fail("reads an empty stack");
        return item as PyValue;
    };
    const popToMark = (): PyValue[] => {
        const at = stack.lastIndexOf(MARK);
        if (at < 0) fail("has no MARK to pop to");
        const items = stack.splice(at) as PyValue[];
        items.shift();
        return items;
    };
    const littleEndianSigned = (raw: Uint8Array): number | bigint => {
        let value = 0n;
        for (let i = raw.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(raw[i]!);
        if (raw.length > 0 && raw[raw.length - 1]! & 0x80) value -= 1n << BigInt(8 * raw.length);
        return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
    };
    const global = (module: string, name: string): PyGlobal => {
        const value = hooks.resolveGlobal(module, name);
        if (value === undefined) {
            fail(`refers to global ${module}.${name}, which is not allowed in a checkpoint (only the globals a PyTorch ` +
                "state dict needs are); nothing was executed");
        }
        return new PyGlobal(module, name, value);
    };
    const setItems = (target: PyValue, items: PyValue[]): void => {
        if (!(target instanceof PyDict)) fail("sets items on something that is not a dict");
        if (items.length % 2 !== 0) fail("has an odd number of SETITEMS values");
        for (let i = 0; i < items.length; i += 2) (target as PyDict).entries.set(items[i]!, items[i + 1]!);
    };
    const append = (target: PyValue, items: PyValue[]): void => {
        if (!Array.isArray(target)) fail("appends to something that is not a list");
        (target as PyValue[]).push(...items);
    };

    for (;;) {
        const opAt = pos;
        const op = u8();
        switch (op) {
            case 0x80: { // PROTO
                const protocol = u8();
                if (protocol < 2 || protocol > 5) fail(`protocol ${protocol} is not supported (expected 2 to 5)`);
                break;
            }
            case 0x95: u64(); break; // FRAME: framing is only a read-ahead hint
            case 0x2e: { // STOP
                const result = pop();
                if (stack.length !== 0) fail("ends with values left on the stack");
                return result;
            }
            case 0x28: stack.push(MARK); break;
            case 0x7d: stack.push(new PyDict()); break;
            case 0x5d: stack.push([]); break;
            case 0x29: stack.push(new PyTuple([])); break;
            case 0x74: stack.push(new PyTuple(popToMark())); break;
            case 0x85: stack.push(new PyTuple([pop()])); break;
            case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break; }
            case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break; }
            case 0x71: memo.set(u8(), top()); break;
            case 0x72: memo.set(u32(), top()); break;
            case 0x94: memo.set(memo.size, top()); break;
            case 0x68: case 0x6a: {
                const key = op === 0x68 ? u8() : u32();
                if (!memo.has(key)) fail(`reads memo entry ${key}, which was never stored`);
                stack.push(memo.get(key)!);
                break;
            }
            case 0x63: { const module = line(); const name = line(); stack.push(global(module, name)); break; }
            case 0x93: {
                const name = pop();
                const module = pop();
                if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
                stack.push(global(module as string, name as string));
                break;
            }
            case 0x58: stack.push(text(u32())); break;
            case 0x8c: stack.push(text(u8())); break;
            case 0x8d: stack.push(text(u64())); break;
            case 0x54: stack.push(text(view.getInt32(need(4), true))); break;
            case 0x55: stack.push(text(u8())); break;
            case 0x42: stack.push(bytes(u32())); break;
            case 0x43: stack.push(bytes(u8())); break;
            case 0x8e: stack.push(bytes(u64())); break;
            case 0x4a: stack.push(view.getInt32(need(4), true)); break;
            case 0x4b: stack.push(u8()); break;
            case 0x4d: stack.push(u16()); break;
            case 0x8a: stack.push(littleEndianSigned(bytes(u8()))); break;
            case 0x8b: {
                const n = view.getInt32(need(4), true);
                stack.push(littleEndianSigned(bytes(n)));
                break;
            }
            case 0x4e: stack.push(null); break;
            case 0x88: stack.push(true); break;
            case 0x89: stack.push(false); break;
            case 0x47: stack.push(view.getFloat64(need(8), false)); break;
            case 0x73: { const value = pop(); const key = pop(); setItems(top(), [key, value]); break; }
            case 0x75: { const items = popToMark(); setItems(top(), items); break; }
            case 0x61: { const value = pop(); append(top(), [value]); break; }
            case 0x65: { const items = popToMark(); append(top(), items); break; }
            case 0x52: { // REDUCE
                const args = pop();
                const callable = pop();
                if (!(callable instanceof PyGlobal)) fail("calls something that is not an approved global");
                if (!(args instanceof PyTuple)) fail(`calls ${(callable as PyGlobal).qualifiedName} without an argument tuple`);
                stack.push(hooks.call(callable as PyGlobal, (args as PyTuple).items));
                break;
            }
            case 0x51: stack.push(hooks.persistentLoad(pop())); break;
            case 0x62: { const state = pop(); hooks.build(top(), state); break; }
            case 0x30: if (stack.pop() === undefined) fail("pops from an empty stack"); break;
            case 0x31: popToMark(); break;
            case 0x32: stack.push(top()); break;
            default: {
                pos = opAt;
                const printable = op >= 0x20 && op < 0x7f ? ` '${String.fromCharCode(op)}'` : "";
                fail(`uses opcode 0x${op.toString(16).padStart(2, "0")}${printable}, which a PyTorch state dict does not need ` +
                    "(object construction, extensions, buffers and text-protocol opcodes are refused)");
            }
        }
    }
}

/** The opcode names this unpickler understands (for documentation and tests). */
export const SUPPORTED_PICKLE_OPCODES: readonly string[] = Object.values(OPS);
