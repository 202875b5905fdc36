/**
 * The `configs:` entry of a dataset card (README.md's YAML front matter), read with a small YAML subset: block
 * mappings and sequences (including "- key: value" items), plain, 'single' and "double" quoted scalars, flow
 * sequences of scalars ([a, b]), block scalars (| and >), comments. Only the `configs:` block is parsed, so the rest
 * of the card may use any YAML; inside it, anything outside the subset (anchors, aliases, tags, flow mappings) is
 * refused with the line, never guessed.
 *
 * API: `cardConfigsYaml(readme, where)` → the parsed `configs` value, or undefined when the card has none.
 */
import { TaskError } from "../errors.js";

/** A YAML value of the subset. */
export type YamlValue = string | boolean | null | YamlValue[] | { [key: string]: YamlValue };

interface Line {
    indent: number;
    text: string;
    number: number;
}

class Parser {
    private at = 0;

    constructor(private readonly lines: Line[], private readonly where: string) {}

    fail(line: Line | undefined, why: string): never {
        throw new TaskError(`${this.where}: README.md configs, line ${line?.number ?? "end"}: ${why}`);
    }

    private peek(): Line | undefined {
        return this.lines[this.at];
    }

    /** A block (mapping or sequence) whose lines start at exactly `indent`. */
    block(indent: number): YamlValue {
        const first = this.peek();
        if (!first || first.indent !== indent) this.fail(first, "expected a nested value");
        return isItem(first.text) ? this.sequence(indent) : this.mapping(indent);
    }

    private sequence(indent: number): YamlValue[] {
        const items: YamlValue[] = [];
        for (let line = this.peek(); line && line.indent === indent && isItem(line.text); line = this.peek()) {
            const rest = line.text.slice(1);
            const gap = rest.length - rest.trimStart().length;
            const content = rest.trim();
            if (content === "") {
                this.at++;
                const next = this.peek();
                items.push(next && next.indent > indent ? this.block(next.indent) : null);
            } else {
                // "- key: value" or "- - x": the item's content starts a block at its own column.
                this.lines[this.at] = { indent: indent + 1 + gap, text: content, number: line.number };
                items.push(isItem(content) || splitKey(content) !== undefined ? this.block(indent + 1 + gap) : this.scalarLine(indent));
            }
        }
        return items;
    }

    private mapping(indent: number): { [key: string]: YamlValue } {
        const out: { [key: string]: YamlValue } = {};
        for (let line = this.peek(); line && line.indent === indent && !isItem(line.text); line = this.peek()) {
            const pair = splitKey(line.text);
            if (pair === undefined) this.fail(line, `expected "key: value", found ${JSON.stringify(line.text.slice(0, 40))}`);
            const [rawKey, rawValue] = pair;
            const key = scalar(rawKey, line, this);
            if (typeof key !== "string") this.fail(line, "mapping keys must be strings");
            if (key in out) this.fail(line, `duplicate key ${JSON.stringify(key)}`);
            this.at++;
            if (rawValue === "") {
                const next = this.peek();
                if (next && next.indent > indent) out[key] = this.block(next.indent);
                else if (next && next.indent === indent && isItem(next.text)) out[key] = this.sequence(indent);
                else out[key] = null;
            } else if (rawValue === "|" || rawValue === ">" || /^[|>][-+]?$/.test(rawValue)) {
                out[key] = this.blockScalar(indent, rawValue.startsWith(">"));
            } else {
                out[key] = this.withContinuation(rawValue, indent, line);
            }
        }
        return out;
    }

    /** A scalar item line of a sequence ("- value"), already rewritten to its content. */
    private scalarLine(indent: number): YamlValue {
        const line = this.peek()!;
        this.at++;
        return this.withContinuation(line.text, indent, line);
    }

    /** A plain scalar may continue on more-indented lines (folded with spaces). */
    private withContinuation(raw: string, indent: number, line: Line): YamlValue {
        let text = raw;
        for (let next = this.peek(); next && next.indent > indent && !isQuoted(raw); next = this.peek()) {
            text += ` ${next.text}`;
            this.at++;
        }
        return scalar(text, line, this);
    }

    private blockScalar(indent: number, folded: boolean): string {
        const parts: string[] = [];
        for (let next = this.peek(); next && next.indent > indent; next = this.peek()) {
            parts.push(next.text);
            this.at++;
        }
        return parts.join(folded ? " " : "\n");
    }

    done(): boolean {
        return this.at >= this.lines.length;
    }

    current(): Line | undefined {
        return this.peek();
    }
}

const isItem = (text: string): boolean => text === "-" || text.startsWith("- ");
const isQuoted = (text: string): boolean => /^["']/.test(text);

/** "key: value" → [key, value] (the colon outside quotes, followed by a space or the end). */
function splitKey(text: string): [string, string] | undefined {
    let quote: string | undefined;
    for (let i = 0; i < text.length; i++) {
        const c = text[i]!;
        if (quote) {
            if (c === quote) quote = undefined;
        } else if ((c === '"' || c === "'") && i === 0) {
            quote = c;
        } else if (c === ":" && (i + 1 === text.length || text[i + 1] === " ")) {
            return [text.slice(0, i).trim(), text.slice(i + 1).trim()];
        }
    }
    return undefined;
}

function unquoteDouble(body: string, line: Line, parser: Parser): string {
    return body.replace(/\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)/g, (_, e: string) => {
        if (e.length > 1) return String.fromCharCode(parseInt(e.slice(1), 16));
        const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "0": "\0", '"': '"', "\\": "\\", "/": "/", " ": " " };
        if (e in simple) return simple[e]!;
        return parser.fail(line, `unsupported escape \\${e}`);
    });
}

function scalar(raw: string, line: Line, parser: Parser): YamlValue {
    const text = raw.trim();
    if (text.startsWith('"')) {
        const match = /^"((?:[^"\\]|\\.)*)"$/.exec(text);
        if (!match) parser.fail(line, "unterminated double-quoted string");
        return unquoteDouble(match[1]!, line, parser);
    }
    if (text.startsWith("'")) {
        const match = /^'((?:[^']|'')*)'$/.exec(text);
        if (!match) parser.fail(line, "unterminated single-quoted string");
        return match[1]!.replace(/''/g, "'");
    }
    if (text.startsWith("[")) {
        if (!text.endsWith("]")) parser.fail(line, "unterminated flow sequence");
        const inner = text.slice(1, -1).trim();
        if (inner === "") return [];
        return splitFlow(inner, line, parser).map((item) => scalar(item, line, parser));
    }
    if (/^[{&*!|>%@`]/.test(text)) parser.fail(line, `unsupported YAML ${JSON.stringify(text.slice(0, 20))}`);
    if (/^(true|True|TRUE)$/.test(text)) return true;
    if (/^(false|False|FALSE)$/.test(text)) return false;
    if (/^(null|Null|NULL|~)?$/.test(text)) return null;
    return text;
}

/** Splits "a, 'b, c', d" at top-level commas. */
function splitFlow(inner: string, line: Line, parser: Parser): string[] {
    const items: string[] = [];
    let quote: string | undefined;
    let start = 0;
    for (let i = 0; i < inner.length; i++) {
        const c = inner[i]!;
        if (quote) {
            if (c === quote) quote = undefined;
        } else if (c === '"' || c === "'") {
            quote = c;
        } else if (c === "[" || c === "{") {
            parser.fail(line, "nested flow collections are not supported");
        } else if (c === ",") {
            items.push(inner.slice(start, i));
            start = i + 1;
        }
    }
    items.push(inner.slice(start));
    return items.map((s) => s.trim()).filter((s, i, all) => s !== "" || i < all.length - 1);
}

/** Drops a comment: " #…" outside quotes (or a whole-line comment). */
function stripComment(text: string): string {
    let quote: string | undefined;
    for (let i = 0; i < text.length; i++) {
        const c = text[i]!;
        if (quote) {
            if (c === quote) quote = undefined;
        } else if (c === '"' || c === "'") {
            if (i === 0 || /[\s:[,-]/.test(text[i - 1]!)) quote = c;
        } else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]!))) {
            return text.slice(0, i).trimEnd();
        }
    }
    return text.trimEnd();
}

/** The front matter's lines (between the opening "---" and the closing "---" or "..."), or undefined. */
function frontMatter(readme: string): string[] | undefined {
    const lines = readme.replace(/^\uFEFF/, "").split(/\r?\n/);
    if (lines[0]?.trim() !== "---") return undefined;
    const end = lines.findIndex((l, i) => i > 0 && (l.trimEnd() === "---" || l.trimEnd() === "..."));
    return end < 0 ? undefined : lines.slice(1, end);
}

/** The `configs` value of the card's front matter (see the module comment), or undefined when there is none. */
export function cardConfigsYaml(readme: string, where: string): YamlValue | undefined {
    const lines = frontMatter(readme);
    if (lines === undefined) return undefined;
    const start = lines.findIndex((l) => /^configs\s*:/.test(l));
    if (start < 0) return undefined;
    const block: Line[] = [];
    const head = stripComment(lines[start]!).replace(/^configs\s*:/, "").trim();
    for (let i = start + 1; i < lines.length; i++) {
        const raw = lines[i]!;
        if (/^\S/.test(raw) && !raw.startsWith("-") && !raw.startsWith("#")) break;
        if (raw.includes("\t") && /^\s*\t/.test(raw)) throw new TaskError(`${where}: README.md configs, line ${i + 2}: tabs are not valid YAML indentation`);
        const text = stripComment(raw);
        if (text.trim() === "") continue;
        block.push({ indent: text.length - text.trimStart().length, text: text.trim(), number: i + 2 });
    }
    const parser = new Parser(block, where);
    if (head !== "") {
        if (block.length > 0) parser.fail(block[0], "configs has both an inline value and nested lines");
        return scalar(head, { indent: 0, text: head, number: start + 2 }, parser);
    }
    if (block.length === 0) return null;
    const value = parser.block(block[0]!.indent);
    if (!parser.done()) parser.fail(parser.current(), "unexpected indentation");
    return value;
}
