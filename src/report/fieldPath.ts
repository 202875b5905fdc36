/**
 * Field paths for one-line error messages: ["results", "hellaswag", "acc,none"] →
 * `results.hellaswag["acc,none"]`, and zod issues turned into such a line.
 */
import type { z } from "zod";

/** Formats a JSON field path the way a reader would type it in JavaScript. */
export function formatFieldPath(path: readonly PropertyKey[]): string {
    let out = "";
    for (const key of path) {
        if (typeof key === "number") out += `[${key}]`;
        else if (typeof key === "string" && /^[A-Za-z_$][\w$-]*$/.test(key)) out += out === "" ? key : `.${key}`;
        else out += `[${JSON.stringify(String(key))}]`;
    }
    return out === "" ? "(top level)" : out;
}

/** The first zod issue as "field X: message". */
export function firstIssueLine(error: z.ZodError): string {
    const issue = error.issues[0];
    if (issue === undefined) return "invalid content";
    return `field ${formatFieldPath(issue.path)}: ${issue.message}`;
}
