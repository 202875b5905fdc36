/**
 * The results table lm-eval prints (`make_table` in main/v0.4.3+, rendered by pytablewriter's MarkdownTableWriter),
 * and the line printed above it.
 *
 * Layout: columns Tasks | Version | Filter | n-shot | Metric | (↑/↓) | Value | (±) | Stderr; tasks sorted by name,
 * a task's metrics sorted by key, name and version only on its first row; values "%.4f", stderr "%.4f" or "   N/A".
 * pytablewriter then types each column: all integral numbers → integer column (right-aligned, printed as ints),
 * numbers with fractions → real column (right-aligned, every number printed with the column's largest number of
 * decimals, taken from Python's repr of the value), anything else → string column (left-aligned, as given).
 * Headers are centred (extra space on the right), columns are at least 3 wide, the separator marks right-aligned
 * columns with a trailing ":".
 *
 * API: `makeTable(results)` → the table text (lines joined by "\n", no trailing newline);
 * `tableHeaderLine(info)` → the "<model> (<model_args>), gen_kwargs: …" line.
 */
import { PyFloat, pyFloatRepr, type JsonLike } from "../io/pyjson.js";

type Cell = string | number | PyFloat;

/** The printed table for `results` (lm-eval's results object; "results", "versions", "n-shot", "higher_is_better" are read). */
export function makeTable(results: Readonly<Record<string, JsonLike>>): string {
    const headers = ["Tasks", "Version", "Filter", "n-shot", "Metric", "", "Value", "", "Stderr"];
    const perTask = asRecord(results["results"]);
    const versions = asRecord(results["versions"]);
    const nShot = asRecord(results["n-shot"]);
    const higherIsBetter = asRecord(results["higher_is_better"]);
    const rows: Cell[][] = [];
    for (const taskName of Object.keys(perTask).sort()) {
        const metrics = { ...asRecord(perTask[taskName]) };
        let name: string = typeof metrics["alias"] === "string" ? metrics["alias"] : taskName;
        delete metrics["alias"];
        delete metrics["name"];
        delete metrics["sample_len"];
        delete metrics["sample_count"];
        let version: Cell = taskName in versions ? toCell(versions[taskName]!) : "    N/A";
        const shots = taskName in nShot ? pyStr(nShot[taskName]!) : " ";
        const hib = asRecord(higherIsBetter[taskName] ?? {});
        for (const key of Object.keys(metrics).sort()) {
            const comma = key.indexOf(",");
            const metric = comma < 0 ? key : key.slice(0, comma);
            const filter = comma < 0 ? "" : key.slice(comma + 1);
            if (metric.endsWith("_stderr")) continue;
            const arrow = hib[metric] === true ? "↑" : hib[metric] === false ? "↓" : "";
            const value = formatValue(metrics[key]!);
            const stderrKey = `${metric}_stderr,${filter}`;
            if (stderrKey in metrics) {
                const se = metrics[stderrKey]!;
                rows.push([name, version, filter, shots, metric, arrow, value, "±", se === "N/A" ? "   N/A" : formatValue(se)]);
            } else {
                rows.push([name, version, filter, shots, metric, arrow, value, "", ""]);
            }
            name = "";
            version = "";
        }
    }
    return renderMarkdown(headers, rows);
}

/** What the CLI prints above the table. */
export interface TableHeaderInfo {
    model: string;
    /** Python str() of the model_args (main: a dict repr such as "{'pretrained': 'state-spaces/mamba-130m'}"). */
    modelArgs: string;
    /** Python str() of gen_kwargs (main: "{}" when unset). */
    genKwargs: string;
    limit: number | null;
    numFewshot: number | null;
    batchSize: string;
    /** Auto-detected batch sizes, printed in parentheses when non-empty. */
    batchSizes: readonly number[];
}

/** lm-eval main's line above the table. */
export function tableHeaderLine(info: TableHeaderInfo): string {
    const limit = info.limit === null ? "None" : pyFloatRepr(info.limit);
    const shots = info.numFewshot === null ? "None" : String(info.numFewshot);
    const sizes = info.batchSizes.length > 0 ? ` ([${info.batchSizes.join(", ")}])` : "";
    return `${info.model} (${info.modelArgs}), gen_kwargs: (${info.genKwargs}), limit: ${limit}, num_fewshot: ${shots}, batch_size: ${info.batchSize}${sizes}`;
}

// ---- helpers --------------------------------------------------------------------------------------------------

function asRecord(value: JsonLike | undefined): Record<string, JsonLike> {
    return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof PyFloat)
        ? (value as Record<string, JsonLike>)
        : {};
}

function toCell(value: JsonLike): Cell {
    if (typeof value === "string" || typeof value === "number" || value instanceof PyFloat) return value;
    return pyStr(value);
}

/** make_table's `f"{v:.4f}" if isinstance(v, float) else v`. */
function formatValue(value: JsonLike): Cell {
    if (value instanceof PyFloat) return pyFormatFixed(value.value, 4);
    if (typeof value === "number" && !Number.isInteger(value)) return pyFormatFixed(value, 4);
    return toCell(value);
}

/**
 * Python's `f"{x:.{places}f}"`: the exact binary value rounded half-to-even (JS toFixed rounds exact ties up,
 * e.g. 0.03125 → "0.0313" where Python gives "0.0312").
 */
export function pyFormatFixed(x: number, places: number): string {
    if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
    const exact = x.toFixed(Math.min(100, places + 30));
    const tie = new RegExp(`^-?\\d+\\.\\d{${places}}50*$`).exec(exact);
    const rounded = x.toFixed(places);
    if (!tie) return rounded;
    // An exact tie: keep the truncated digits when their last digit is even.
    const truncated = exact.slice(0, exact.length - 30);
    const lastDigit = Number(truncated.at(-1));
    return lastDigit % 2 === 0 ? (places === 0 ? truncated.replace(/\.$/, "") : truncated) : rounded;
}

/** Python str() of a JSON-ish value, enough for the table (ints, floats, strings). */
function pyStr(value: JsonLike): string {
    if (value instanceof PyFloat) return pyFloatRepr(value.value);
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : pyFloatRepr(value);
    if (typeof value === "string") return value;
    return JSON.stringify(value);
}

type Kind = "int" | "real" | "string" | "null";

interface Typed {
    kind: Kind;
    text: string;
    /** For numbers: the decimal digits of Python's repr (0 for integers). */
    decimals: number;
}

/** typepy's classification at pytablewriter's strictness: integral numbers (also "0.0000") are ints. */
function classify(cell: Cell): Typed {
    if (cell instanceof PyFloat) return classifyNumber(cell.value, pyFloatRepr(cell.value));
    if (typeof cell === "number") return classifyNumber(cell, pyStr(cell));
    if (cell === "") return { kind: "null", text: "", decimals: 0 };
    if (/^\s*[-+]?(\d+(\.\d*)?|\.\d+)\s*$/.test(cell)) {
        const x = Number(cell);
        return classifyNumber(x, cell.trim());
    }
    return { kind: "string", text: cell, decimals: 0 };
}

function classifyNumber(x: number, text: string): Typed {
    if (Number.isInteger(x)) return { kind: "int", text, decimals: 0 };
    const repr = pyFloatRepr(Math.abs(x));
    const dot = repr.indexOf(".");
    const exp = repr.search(/e-/);
    const decimals = dot >= 0 ? repr.length - dot - 1 : exp >= 0 ? Number(repr.slice(exp + 2)) : 0;
    return { kind: "real", text, decimals };
}

/** Formats a decimal string (or number) with exactly `places` decimals, as Python formats a Decimal. */
function toFixedDecimal(x: number, places: number): string {
    return x.toFixed(places);
}

function renderMarkdown(headers: readonly string[], rows: readonly Cell[][]): string {
    const columns = headers.map((header, c) => {
        const typed = rows.map((row) => classify(row[c]!));
        const kinds = new Set(typed.map((t) => t.kind));
        kinds.delete("null");
        const kind: Kind = kinds.has("string") ? "string" : kinds.has("real") ? "real" : kinds.has("int") ? "int" : "string";
        const places = Math.max(0, ...typed.filter((t) => t.kind === "real" || t.kind === "int").map((t) => t.decimals));
        const texts = rows.map((row, r) => {
            const t = typed[r]!;
            if (t.kind === "null") return "";
            if (t.kind === "string") return t.text;
            const x = Number(row[c] instanceof PyFloat ? (row[c] as PyFloat).value : row[c]);
            if (kind === "int" || (kind === "string" && t.kind === "int")) return String(Math.round(x));
            return toFixedDecimal(x, places);
        });
        const width = Math.max(3, displayWidth(header), ...texts.map(displayWidth));
        return { header, right: kind === "int" || kind === "real", texts, width };
    });
    const line = (cells: string[]) => `|${cells.join("|")}|`;
    const out = [
        line(columns.map((col) => center(col.header, col.width))),
        line(columns.map((col) => (col.right ? "-".repeat(col.width - 1) + ":" : "-".repeat(col.width)))),
    ];
    rows.forEach((_, r) => {
        out.push(line(columns.map((col) => pad(col.texts[r]!, col.width, col.right))));
    });
    return out.join("\n");
}

/** Display width as pytablewriter measures it: East Asian wide/fullwidth characters count 2, others 1. */
function displayWidth(text: string): number {
    let width = 0;
    for (const ch of text) width += isWide(ch.codePointAt(0)!) ? 2 : 1;
    return width;
}

function isWide(cp: number): boolean {
    return (
        (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0x303e) || (cp >= 0x3041 && cp <= 0x33ff) ||
        (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xa000 && cp <= 0xa4cf) ||
        (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) ||
        (cp >= 0xff00 && cp <= 0xff60) || (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
        (cp >= 0x20000 && cp <= 0x3fffd)
    );
}

function pad(text: string, width: number, right: boolean): string {
    const fill = " ".repeat(Math.max(0, width - displayWidth(text)));
    return right ? fill + text : text + fill;
}

function center(text: string, width: number): string {
    const total = Math.max(0, width - displayWidth(text));
    const left = Math.floor(total / 2);
    return " ".repeat(left) + text + " ".repeat(total - left);
}
