/** Typed access to document fields, failing with one clear line when a row does not have the expected shape. */
import { DataFormatError } from "../errors.js";
import type { Doc, DocValue } from "./types.js";

/** `doc[key]` as a string, or a DataFormatError naming the task and field. */
export function stringField(doc: Doc, key: string, task: string): string {
    const value = doc[key];
    if (typeof value !== "string") throw new DataFormatError(`${task}: document field "${key}" must be a string, got ${describe(value)}`);
    return value;
}

/** `doc[key]` as an integer, or a DataFormatError naming the task and field. */
export function intField(doc: Doc, key: string, task: string): number {
    const value = doc[key];
    if (typeof value !== "number" || !Number.isInteger(value)) {
        throw new DataFormatError(`${task}: document field "${key}" must be an integer, got ${describe(value)}`);
    }
    return value;
}

/** `doc[key]` as a list of strings, or a DataFormatError naming the task and field. */
export function stringListField(doc: Doc, key: string, task: string): string[] {
    const value = doc[key];
    if (!Array.isArray(value) || !value.every((x) => typeof x === "string")) {
        throw new DataFormatError(`${task}: document field "${key}" must be a list of strings, got ${describe(value)}`);
    }
    return value as string[];
}

/** `doc[key]` as an object, or a DataFormatError naming the task and field. */
export function objectField(doc: Doc, key: string, task: string): Doc {
    const value = doc[key];
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
        throw new DataFormatError(`${task}: document field "${key}" must be an object, got ${describe(value)}`);
    }
    return value;
}

function describe(value: DocValue | undefined): string {
    if (value === undefined) return "nothing (field missing)";
    if (value === null) return "null";
    if (Array.isArray(value)) return "a list";
    return `${typeof value} ${JSON.stringify(value).slice(0, 40)}`;
}
