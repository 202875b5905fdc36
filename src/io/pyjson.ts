/**
 * Python-compatible JSON for lm-eval's files: `json.dumps(..., ensure_ascii=False)` with or without `indent`,
 * Python's float repr, a marker for floats that must print as floats even when integral, Python's repr of a
 * dict (the table header's model_args), and atomic file writes.
 *
 * API: `PyFloat`/`pyFloat`, `JsonLike`, `pyFloatRepr`, `pyJsonDumps`, `pyRepr`, `writeFileAtomic`.
 */
import { randomBytes } from "node:crypto";
import { rename, rm, writeFile } from "node:fs/promises";
import { makeDirs } from "./dirs.js";
import path from "node:path";

/**
 * A float that must print as a Python float even when it is integral (`1.0`, not `1`). Plain JS numbers print as
 * Python ints when integral and as Python floats otherwise.
 */
export class PyFloat {
    constructor(readonly value: number) {}
}

/** Marks `x` as a Python float for `pyJsonDumps`. */
export function pyFloat(x: number): PyFloat {
    return new PyFloat(x);
}

/** Values `pyJsonDumps` can write. */
export type JsonLike =
    | string
    | number
    | boolean
    | null
    | PyFloat
    | readonly JsonLike[]
    | { readonly [key: string]: JsonLike };

/** A plain JavaScript value of `value`: every PyFloat becomes its number (what a program reading the JSON gets). */
export type PlainJson = string | number | boolean | null | PlainJson[] | { [key: string]: PlainJson };
export function toPlainJson(value: JsonLike): PlainJson {
    if (value instanceof PyFloat) return value.value;
    if (Array.isArray(value)) return value.map(toPlainJson);
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(Object.entries(value as Record<string, JsonLike>).map(([k, v]) => [k, toPlainJson(v)]));
    }
    return value as string | number | boolean | null;
}

/**
 * Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the decimal exponent is in
 * [-4, 16), otherwise scientific with a signed two-digit exponent (e.g. -21.84375, 1e-05, 0.1, 1e+16, 1.0, inf).
 */
export function pyFloatRepr(x: number): string {
    if (Number.isNaN(x)) return "nan";
    if (x === Infinity) return "inf";
    if (x === -Infinity) return "-inf";
    if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
    const sign = x < 0 ? "-" : "";
    const [mantissa, exponentText] = Math.abs(x).toExponential().split("e") as [string, string];
    const digits = mantissa.replace(".", "");
    const exponent = Number(exponentText); // value = d.ddd × 10^exponent
    const decimalPoint = exponent + 1; // value = 0.ddd × 10^decimalPoint
    if (decimalPoint > -4 && decimalPoint <= 16) {
        if (decimalPoint <= 0) return `${sign}0.${"0".repeat(-decimalPoint)}${digits}`;
        if (decimalPoint >= digits.length) return `${sign}${digits}${"0".repeat(decimalPoint - digits.length)}.0`;
        return `${sign}${digits.slice(0, decimalPoint)}.${digits.slice(decimalPoint)}`;
    }
    const head = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const exponentSign = exponent < 0 ? "-" : "+";
    return `${sign}${head}e${exponentSign}${String(Math.abs(exponent)).padStart(2, "0")}`;
}

/** Python `json.dumps` of a float (`Infinity`/`NaN` as Python writes them). */
function floatToJson(x: number): string {
    if (Number.isNaN(x)) return "NaN";
    if (x === Infinity) return "Infinity";
    if (x === -Infinity) return "-Infinity";
    return pyFloatRepr(x);
}

/**
 * Python's `json.dumps(value, ensure_ascii=False)` (indent undefined: separators ", " and ": ") or with
 * `indent=N` (separators "," and ": ", one item per line). Key order is insertion order, as in Python dicts.
 * Integral numbers print as ints, others (and PyFloat) as Python floats; `undefined` object values are skipped.
 */
export function pyJsonDumps(value: JsonLike, indent?: number): string {
    const parts: string[] = [];
    write(value, 0);
    return parts.join("");

    function newline(level: number): string {
        return "\n" + " ".repeat((indent ?? 0) * level);
    }

    function write(v: JsonLike, level: number): void {
        if (v === null) parts.push("null");
        else if (typeof v === "string") parts.push(JSON.stringify(v));
        else if (typeof v === "boolean") parts.push(v ? "true" : "false");
        else if (typeof v === "number") parts.push(Number.isInteger(v) ? String(v) : floatToJson(v));
        else if (v instanceof PyFloat) parts.push(floatToJson(v.value));
        else if (Array.isArray(v)) writeItems(v as readonly JsonLike[], "[", "]", level, (item) => write(item, level + 1));
        else {
            const entries = Object.entries(v as Record<string, JsonLike>).filter(([, x]) => x !== undefined);
            writeItems(entries, "{", "}", level, ([k, x]) => {
                parts.push(JSON.stringify(k), ": ");
                write(x, level + 1);
            });
        }
    }

    function writeItems<T>(items: readonly T[], open: string, close: string, level: number, each: (item: T) => void): void {
        if (items.length === 0) {
            parts.push(open, close);
            return;
        }
        parts.push(open);
        items.forEach((item, i) => {
            if (i > 0) parts.push(indent === undefined ? ", " : ",");
            if (indent !== undefined) parts.push(newline(level + 1));
            each(item);
        });
        if (indent !== undefined) parts.push(newline(level));
        parts.push(close);
    }
}

/**
 * Python's `repr()` of a JSON-like value: strings in single quotes (double when the string holds a single quote
 * and no double quote), True/False/None, ints, float repr, `{'k': v}` and `[a, b]` with ", " separators.
 */
export function pyRepr(value: JsonLike): string {
    if (value === null) return "None";
    if (typeof value === "boolean") return value ? "True" : "False";
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : pyFloatRepr(value);
    if (value instanceof PyFloat) return pyFloatRepr(value.value);
    if (typeof value === "string") return pyStringRepr(value);
    if (Array.isArray(value)) return `[${(value as readonly JsonLike[]).map(pyRepr).join(", ")}]`;
    const entries = Object.entries(value as Record<string, JsonLike>).filter(([, x]) => x !== undefined);
    return `{${entries.map(([k, x]) => `${pyStringRepr(k)}: ${pyRepr(x)}`).join(", ")}}`;
}

/** Python's repr of a str (printable characters kept; \\, \n, \r, \t and other control characters escaped). */
function pyStringRepr(s: string): string {
    const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
    let out = quote;
    for (const ch of s) {
        const c = ch.codePointAt(0)!;
        if (ch === "\\") out += "\\\\";
        else if (ch === quote) out += "\\" + ch;
        else if (ch === "\n") out += "\\n";
        else if (ch === "\r") out += "\\r";
        else if (ch === "\t") out += "\\t";
        else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
        else out += ch;
    }
    return out + quote;
}

/** Writes a file through a temporary sibling and a rename, creating the folder; no partial file is ever visible. */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
    makeDirs(path.dirname(file));
    const temp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    try {
        await writeFile(temp, content, "utf8");
        await rename(temp, file);
    } catch (error) {
        await rm(temp, { force: true });
        throw error;
    }
}
