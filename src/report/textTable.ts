/**
 * A small markdown (pipe) table writer with padded columns, readable in a terminal and pasteable into
 * a pull request.
 */

export type Align = "left" | "right";

/** Renders rows under a header; every row must have as many cells as the header. */
export function renderPipeTable(header: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[]): string {
    const widths = header.map((h, i) => Math.max(displayWidth(h), 3, ...rows.map((r) => displayWidth(r[i] ?? ""))));
    const line = (cells: readonly string[]) =>
        `| ${cells.map((cell, i) => pad(cell, widths[i] ?? 0, align[i] ?? "left")).join(" | ")} |`;
    const rule = `|${widths.map((w, i) => (align[i] === "right" ? `${"-".repeat(w + 1)}:` : `:${"-".repeat(w + 1)}`)).join("|")}|`;
    return [line(header), rule, ...rows.map(line)].join("\n");
}

function pad(text: string, width: number, align: Align): string {
    const fill = " ".repeat(Math.max(0, width - displayWidth(text)));
    return align === "right" ? fill + text : text + fill;
}

/** Width in code points (good enough for the arrows, Δ and − used here). */
function displayWidth(text: string): number {
    return [...text].length;
}
