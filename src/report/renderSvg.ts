/**
 * The Table-3 view as an SVG chart, written by hand: one panel per model with grouped bars per task
 * (ours vs the published value, accuracies ×100 on a 0–100 axis), value labels on the bars, the
 * difference under each task, LAMBADA ppl and the average in the panel title, and a legend.
 */
import { REFERENCE_SOURCES } from "./paperTables.js";
import { AVERAGED_COLUMNS, formatCell, TABLE3_COLUMNS, type Table3, type Table3Row } from "./table3.js";

const WIDTH = 960;
const MARGIN_LEFT = 64;
const MARGIN_RIGHT = 24;
const HEADER_HEIGHT = 78;
const PANEL_HEIGHT = 270;
const PLOT_TOP = 44;
const PLOT_HEIGHT = 170;
const COLOR_OURS = "#2f6db5";
const COLOR_REFERENCE = "#b0b4ba";
const COLOR_BETTER = "#1b7f3b";
const COLOR_WORSE = "#b3261e";
const FONT = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";

/** The chart as a standalone SVG document. */
export function renderTable3Svg(table: Table3): string {
    const height = HEADER_HEIGHT + table.rows.length * PANEL_HEIGHT + 16;
    const refName = table.referenceKind === "paper" ? "paper" : "lm-eval reproduction";
    const sources = [...new Set(table.rows.flatMap((r) => (r.reference === undefined ? [] : [REFERENCE_SOURCES[r.reference.source]])))];
    const parts: string[] = [];
    parts.push(`<?xml version="1.0" encoding="UTF-8"?>`);
    parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT}>`);
    parts.push(`<rect x="0" y="0" width="${WIDTH}" height="${height}" fill="#ffffff"/>`);
    parts.push(text(MARGIN_LEFT, 30, "Zero-shot accuracy (lm-eval, ×100): ours vs published", { size: 18, weight: "bold" }));
    parts.push(text(MARGIN_LEFT, 50, `Published: ${sources.length > 0 ? sources.join("; ") : "none matched"}`, { size: 11, fill: "#444" }));
    // Legend.
    const legendX = WIDTH - MARGIN_RIGHT - 250;
    parts.push(`<rect x="${legendX}" y="18" width="14" height="14" fill="${COLOR_OURS}"/>`);
    parts.push(text(legendX + 20, 30, "ours", { size: 13 }));
    parts.push(`<rect x="${legendX + 80}" y="18" width="14" height="14" fill="${COLOR_REFERENCE}"/>`);
    parts.push(text(legendX + 100, 30, refName, { size: 13 }));
    table.rows.forEach((row, i) => parts.push(renderPanel(row, HEADER_HEIGHT + i * PANEL_HEIGHT, refName)));
    parts.push(`</svg>`);
    return `${parts.join("\n")}\n`;
}

function renderPanel(row: Table3Row, top: number, refName: string): string {
    const out: string[] = [`<g class="panel" transform="translate(0,${top})">`];
    const ppl = row.cells.lambadaPpl;
    const title = `${row.model} — LAMBADA ppl ${formatCell(ppl.ours, 2)}${ppl.reference !== null ? ` (${refName} ${formatCell(ppl.reference, 2)})` : ""}` +
        ` · average ${formatCell(row.average.ours, 1)}${row.average.reference !== null ? ` (${refName} ${formatCell(row.average.reference, 1)})` : ""}`;
    out.push(text(MARGIN_LEFT, 24, title, { size: 14, weight: "bold" }));
    if (row.reference === undefined) out.push(text(WIDTH - MARGIN_RIGHT, 24, "no published row for this model", { size: 11, fill: "#666", anchor: "end" }));

    // Axis and grid.
    const plotWidth = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    const y = (v: number) => PLOT_TOP + PLOT_HEIGHT - (Math.max(0, Math.min(100, v)) / 100) * PLOT_HEIGHT;
    for (let v = 0; v <= 100; v += 20) {
        out.push(`<line x1="${MARGIN_LEFT}" y1="${y(v)}" x2="${MARGIN_LEFT + plotWidth}" y2="${y(v)}" stroke="${v === 0 ? "#333" : "#e3e3e3"}" stroke-width="1"/>`);
        out.push(text(MARGIN_LEFT - 8, y(v) + 4, String(v), { size: 11, anchor: "end", fill: "#444" }));
    }
    out.push(`<line x1="${MARGIN_LEFT}" y1="${y(0)}" x2="${MARGIN_LEFT}" y2="${y(100)}" stroke="#333" stroke-width="1"/>`);
    out.push(text(18, PLOT_TOP + PLOT_HEIGHT / 2, "accuracy ×100", { size: 11, anchor: "middle", fill: "#444", rotate: true }));

    // Bars, two per task.
    const groupWidth = plotWidth / AVERAGED_COLUMNS.length;
    const barWidth = Math.min(44, groupWidth * 0.3);
    AVERAGED_COLUMNS.forEach((key, g) => {
        const column = TABLE3_COLUMNS.find((c) => c.key === key)!;
        const cell = row.cells[key];
        const center = MARGIN_LEFT + groupWidth * (g + 0.5);
        const bars: Array<{ value: number | null; x: number; color: string; cls: string; who: string }> = [
            { value: cell.ours, x: center - barWidth - 2, color: COLOR_OURS, cls: "bar ours", who: "ours" },
            { value: cell.reference, x: center + 2, color: COLOR_REFERENCE, cls: "bar reference", who: refName },
        ];
        for (const bar of bars) {
            if (bar.value === null || !Number.isFinite(bar.value)) continue;
            const barTop = y(bar.value);
            out.push(`<rect class="${bar.cls}" x="${fmt(bar.x)}" y="${fmt(barTop)}" width="${fmt(barWidth)}" height="${fmt(y(0) - barTop)}" fill="${bar.color}">` +
                `<title>${escapeXml(`${row.model} ${column.label} ${bar.who}: ${formatCell(bar.value, 1)}`)}</title></rect>`);
            out.push(text(bar.x + barWidth / 2, barTop - 4, formatCell(bar.value, 1), { size: 10, anchor: "middle", fill: "#222" }));
        }
        if (cell.ours === null) out.push(text(center, y(0) - 8, "no result", { size: 11, anchor: "middle", fill: "#666" }));
        out.push(text(center, y(0) + 18, column.label, { size: 12, anchor: "middle" }));
        if (cell.diff !== null) {
            out.push(text(center, y(0) + 34, `Δ ${formatCell(cell.diff, 1, true)}`, { size: 11, anchor: "middle", fill: cell.diff < 0 ? COLOR_WORSE : cell.diff > 0 ? COLOR_BETTER : "#555" }));
        }
    });
    out.push(`</g>`);
    return out.join("\n");
}

interface TextStyle {
    size: number;
    weight?: "bold";
    anchor?: "start" | "middle" | "end";
    fill?: string;
    rotate?: boolean;
}

function text(x: number, y: number, content: string, style: TextStyle): string {
    const attrs = [`x="${fmt(x)}"`, `y="${fmt(y)}"`, `font-size="${style.size}"`];
    if (style.weight !== undefined) attrs.push(`font-weight="${style.weight}"`);
    if (style.anchor !== undefined && style.anchor !== "start") attrs.push(`text-anchor="${style.anchor}"`);
    attrs.push(`fill="${style.fill ?? "#111"}"`);
    if (style.rotate === true) attrs.push(`transform="rotate(-90 ${fmt(x)} ${fmt(y)})"`);
    return `<text ${attrs.join(" ")}>${escapeXml(content)}</text>`;
}

/** Escapes text for XML content and attribute values. */
export function escapeXml(value: string): string {
    return value.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;").replaceAll("'", "&apos;");
}

/** Coordinates with at most two decimals (deterministic, compact). */
function fmt(value: number): string {
    return String(Math.round(value * 100) / 100);
}
