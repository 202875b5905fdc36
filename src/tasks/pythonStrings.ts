/** Python str methods whose exact semantics the task prompts depend on. */

/** Python's str.strip() with no argument: removes leading/trailing Unicode whitespace as Python defines it. */
export function pythonStrip(text: string): string {
    return text.replace(PY_WHITESPACE_START, "").replace(PY_WHITESPACE_END, "");
}

/** Python's str.lstrip() with no argument: removes leading Unicode whitespace as Python defines it. */
export function pythonLstrip(text: string): string {
    return text.replace(PY_WHITESPACE_START, "");
}
// Python str.isspace(): Unicode White_Space plus the ASCII separators \x1c-\x1f.
const PY_WS = "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_WHITESPACE_START = new RegExp(`^[${PY_WS}]+`, "u");
const PY_WHITESPACE_END = new RegExp(`[${PY_WS}]+$`, "u");

/**
 * Python's str.capitalize(): the first character title-cased (upper-cased; the few title-case digraphs aside),
 * every other character lower-cased.
 */
export function pythonCapitalize(text: string): string {
    const [first, ...rest] = [...text];
    if (first === undefined) return "";
    return titleCase(first) + rest.join("").toLowerCase();
}
const TITLE_CASE: Record<string, string> = { "ǆ": "ǅ", "Ǆ": "ǅ", "ǉ": "ǈ", "Ǉ": "ǈ", "ǌ": "ǋ", "Ǌ": "ǋ", "ǳ": "ǲ", "Ǳ": "ǲ" };
function titleCase(ch: string): string {
    return TITLE_CASE[ch] ?? ch.toUpperCase();
}
