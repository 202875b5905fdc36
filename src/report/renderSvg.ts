/**
 * The Table-3 view as an SVG chart, written by hand: one panel per model with grouped bars per task
 * (ours vs each published value — the paper and/or the lm-eval reproduction —, accuracies ×100 on a 0–100 axis),
 * value labels on the bars, the differences under each task, LAMBADA ppl and the average in the panel title, and
 * a legend.
 */
import { REFERENCE_SOURCES, type ReferenceKind } from "./paperTables.js";
import { formatCell, type Table3, type Table3Row } from "./table3.js";

const WIDTH = 960;
const MARGIN_LEFT = 64;
const MARGIN_RIGHT = 24;
const HEADER_HEIGHT = 78;
const PANEL_HEIGHT = 270;
const PLOT_TOP = 44;
const PLOT_HEIGHT = 170;
const COLOR_OURS = "#2f6db5";
/** Bar colours of the first and second reference (whichever kinds they are). */
const COLOR_REFERENCE = ["#b0b4ba", "#e3a64f"];
const KIND_NAME: Record<ReferenceKind, string> = { paper: "paper", repro: "lm-eval reproduction" };
const COLOR_BETTER = "#1b7f3b";
const COLOR_WORSE = "#b3261e";
const FONT = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";

/** The chart as a standalone SVG document. */
export function renderTable3Svg(table: Table3): string {
    const height = HEADER_HEIGHT + table.rows.length * PANEL_HEIGHT + 16;
    const sources = [...new Set(table.rows.flatMap((r) => r.references.flatMap((ref) => (ref === undefined ? [] : [REFERENCE_SOURCES[ref.source]]))))];
    const parts: string[] = [];
    parts.push(`<?xml version="1.0" encoding="UTF-8"?>`);
    parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT}>`);
    parts.push(`<rect x="0" y="0" width="${WIDTH}" height="${height}" fill="#ffffff"/>`);
    parts.push(text(MARGIN_LEFT, 30, "Zero-shot accuracy (lm-eval, ×100): ours vs published", { size: 18, weight: "bold" }));
    parts.push(text(MARGIN_LEFT, 50, `Published: ${sources.length > 0 ? sources.join("; ") : "none matched"}`, { size: 11, fill: "#444" }));
    // Legend: ours, then one entry per reference kind.
    const legend = [{ label: "ours", color: COLOR_OURS }, ...table.referenceKinds.map((kind, k) => ({ label: KIND_NAME[kind], color: COLOR_REFERENCE[k]! }))];
    let legendX = WIDTH - MARGIN_RIGHT - (table.referenceKinds.length > 1 ? 400 : 250);
    for (const [i, entry] of legend.entries()) {
        parts.push(`<rect x="${legendX}" y="18" width="14" height="14" fill="${entry.color}"/>`);
        parts.push(text(legendX + 20, 30, entry.label, { size: 13 }));
        legendX += i === 0 ? 80 : 170;
    }
    table.rows.forEach((row, i) => parts.push(renderPanel(table, row, HEADER_HEIGHT + i * PANEL_HEIGHT)));
    parts.push(`</svg>`);
    return `${parts.join("\n")}\n`;
}

function renderPanel(table: Table3, row: Table3Row, top: number): string {
    const out: string[] = [`<g class="panel" transform="translate(0,${top})">`];
    const kinds = table.referenceKinds;
    const several = kinds.length > 1;
    const published = (cell: Table3Row["average"], decimals: number): string => {
        const shown = kinds.flatMap((kind, k) => {
            const reference = cell.comparisons[k]!.reference;
            return reference === null ? [] : [`${KIND_NAME[kind]} ${formatCell(reference, decimals)}`];
        });
        return shown.length > 0 ? ` (${shown.join(", ")})` : "";
    };
    const ppl = row.cells.lambadaPpl;
    const title = `${row.model} — LAMBADA ppl ${formatCell(ppl.ours, 2)}${published(ppl, 2)} · average ${formatCell(row.average.ours, 1)}${published(row.average, 1)}`;
    out.push(text(MARGIN_LEFT, 24, title, { size: 14, weight: "bold" }));
    if (row.references.every((r) => r === undefined)) out.push(text(WIDTH - MARGIN_RIGHT, 24, "no published row for this model", { size: 11, fill: "#666", anchor: "end" }));

    // Axis and grid.
    const plotWidth = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    const y = (v: number) => PLOT_TOP + PLOT_HEIGHT - (Math.max(0, Math.min(100, v)) / 100) * PLOT_HEIGHT;
    for (let v = 0; v <= 100; v += 20) {
        out.push(`<line x1="${MARGIN_LEFT}" y1="${y(v)}" x2="${MARGIN_LEFT + plotWidth}" y2="${y(v)}" stroke="${v === 0 ? "#333" : "#e3e3e3"}" stroke-width="1"/>`);
        out.push(text(MARGIN_LEFT - 8, y(v) + 4, String(v), { size: 11, anchor: "end", fill: "#444" }));
    }
    out.push(`<line x1="${MARGIN_LEFT}" y1="${y(0)}" x2="${MARGIN_LEFT}" y2="${y(100)}" stroke="#333" stroke-width="1"/>`);
    out.push(text(18, PLOT_TOP + PLOT_HEIGHT / 2, "accuracy ×100", { size: 11, anchor: "middle", fill: "#444", rotate: true }));

    // Bars per task: ours, then one per reference.
    const groupWidth = plotWidth / table.averaged.length;
    const barCount = 1 + kinds.length;
    const barWidth = Math.min(44, (groupWidth * 0.6) / barCount);
    table.averaged.forEach((key, g) => {
        const column = table.columns.find((c) => c.key === key)!;
        const cell = row.cells[key]!;
        const center = MARGIN_LEFT + groupWidth * (g + 0.5);
        const start = center - (barCount * barWidth + (barCount - 1) * 4) / 2;
        const bars: Array<{ value: number | null; color: string; cls: string; who: string }> = [
            { value: cell.ours, color: COLOR_OURS, cls: "bar ours", who: "ours" },
            ...kinds.map((kind, k) => ({
                value: cell.comparisons[k]!.reference, color: COLOR_REFERENCE[k]!, cls: several ? `bar reference ${kind}` : "bar reference", who: KIND_NAME[kind],
            })),
        ];
        bars.forEach((bar, b) => {
            if (bar.value === null || !Number.isFinite(bar.value)) return;
            const x = start + b * (barWidth + 4);
            const barTop = y(bar.value);
            out.push(`<rect class="${bar.cls}" x="${fmt(x)}" y="${fmt(barTop)}" width="${fmt(barWidth)}" height="${fmt(y(0) - barTop)}" fill="${bar.color}">` +
                `<title>${escapeXml(`${row.model} ${column.label} ${bar.who}: ${formatCell(bar.value, 1)}`)}</title></rect>`);
            out.push(text(x + barWidth / 2, barTop - 4, formatCell(bar.value, 1), { size: 10, anchor: "middle", fill: "#222" }));
        });
        if (cell.ours === null) out.push(text(center, y(0) - 8, "no result", { size: 11, anchor: "middle", fill: "#666" }));
        out.push(text(center, y(0) + 18, column.label, { size: 12, anchor: "middle" }));
        kinds.forEach((kind, k) => {
            const diff = cell.comparisons[k]!.diff;
            if (diff === null) return;
            const label = several ? `Δ ${kind} ${formatCell(diff, 1, true)}` : `Δ ${formatCell(diff, 1, true)}`;
            out.push(text(center, y(0) + 34 + 14 * k, label, { size: 11, anchor: "middle", fill: diff < 0 ? COLOR_WORSE : diff > 0 ? COLOR_BETTER : "#555" }));
        });
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
