/**
 * JSON as Python's `json.dumps` writes it. Python emits the bare tokens `NaN`, `Infinity` and
 * `-Infinity` for non-finite floats (allow_nan defaults to True), which `JSON.parse` rejects.
 * `parsePythonJson` accepts them and turns each into the string "NaN" / "Infinity" / "-Infinity";
 * `numberFromJson` reads such a value back as a number.
 */

const NON_FINITE_TOKENS = ["-Infinity", "Infinity", "NaN"] as const;

/**
 * Parses JSON text, accepting Python's non-finite float tokens outside strings.
 * Throws the SyntaxError of JSON.parse when the text is not JSON even with that allowance.
 */
export function parsePythonJson(text: string): unknown {
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);  // a byte-order mark an editor added (RFC 8259 § 8.1 allows ignoring it)
    try {
        return JSON.parse(text);
    } catch (error) {
        if (!/NaN|Infinity/.test(text)) throw error;
        return JSON.parse(quoteNonFiniteTokens(text));
    }
}

/** Rewrites bare NaN/Infinity/-Infinity tokens (outside JSON strings) as quoted strings. */
export function quoteNonFiniteTokens(text: string): string {
    let out = "";
    let inString = false;
    let i = 0;
    while (i < text.length) {
        const ch = text[i]!;
        if (inString) {
            out += ch;
            if (ch === "\\") {
                out += text[i + 1] ?? "";
                i += 2;
                continue;
            }
            if (ch === '"') inString = false;
            i += 1;
            continue;
        }
        if (ch === '"') {
            inString = true;
            out += ch;
            i += 1;
            continue;
        }
        const token = NON_FINITE_TOKENS.find((t) => text.startsWith(t, i));
        if (token !== undefined) {
            out += `"${token}"`;
            i += token.length;
            continue;
        }
        out += ch;
        i += 1;
    }
    return out;
}

/**
 * A JSON value as a number: numbers as they are, and the non-finite spellings of Python's json
 * ("NaN", "Infinity", "-Infinity") and repr ("nan", "inf", "-inf"). Anything else → undefined.
 */
export function numberFromJson(value: unknown): number | undefined {
    if (typeof value === "number") return value;
    if (typeof value !== "string") return undefined;
    switch (value) {
        case "NaN":
        case "nan":
            return Number.NaN;
        case "Infinity":
        case "inf":
            return Number.POSITIVE_INFINITY;
        case "-Infinity":
        case "-inf":
            return Number.NEGATIVE_INFINITY;
        default:
            return undefined;
    }
}
