/**
 * Numeric and text flags read from their text (yargs `coerce`), so a bad value is refused with one line quoting
 * what was typed (`--seed abc: expected an integer …`) instead of becoming NaN and being accepted.
 */
import { UsageError } from "../errors.js";
import { requireFolder } from "../io/safeFile.js";

const INTEGER = /^\s*[+-]?\d+\s*$/;
const NUMBER = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

/** An integer flag in [min, max]. */
export function integerFlag(flag: string, min: number, max: number = Number.MAX_SAFE_INTEGER): (value: unknown) => number {
    return (value) => {
        const text = String(value);
        const n = INTEGER.test(text) ? Number(text) : NaN;
        if (!Number.isSafeInteger(n) || n < min || n > max) {
            throw new UsageError(`${flag} ${text}: expected an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`}`);
        }
        return n;
    };
}

/** A finite number flag with min ≤ value (min excluded when `exclusiveMin`) and value ≤ max. */
export function numberFlag(flag: string, min: number, max: number = Infinity, exclusiveMin = false): (value: unknown) => number {
    return (value) => {
        const text = String(value);
        const n = NUMBER.test(text) ? Number(text) : NaN;
        if (!Number.isFinite(n) || n < min || (exclusiveMin && n === min) || n > max) {
            const range = max === Infinity ? `${exclusiveMin ? ">" : ">="} ${min}` : `in ${exclusiveMin ? "(" : "["}${min}, ${max}]`;
            throw new UsageError(`${flag} ${text}: expected a number ${range}`);
        }
        return n;
    };
}

/** A text flag that must not be empty (a path, a name). */
export function nonEmptyFlag(flag: string): (value: unknown) => string {
    return (value) => {
        const text = String(value);
        if (text.trim() === "") throw new UsageError(`${flag}: expected a value, got an empty string`);
        return text;
    };
}

/** Refuses a folder flag (`--data_dir`) whose folder is missing or not a folder, with one line naming the flag. */
export function requireFolderFlag(flag: string, dir: string): void {
    try {
        requireFolder(dir);
    } catch (e) {
        throw new UsageError(`${flag} ${(e as Error).message}`);
    }
}
