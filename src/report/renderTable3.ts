/**
 * The Table-3 view as markdown and CSV. Markdown: three lines per model (ours, the published row, Δ)
 * plus notes naming the metric per column, the averaging rule and each row's source files.
 * CSV (csv-stringify): one line per model, for each column ours / reference / diff.
 */
import { stringify } from "csv-stringify/sync";
import { REFERENCE_SOURCES } from "./paperTables.js";
import { formatCell, referenceLabel, TABLE3_COLUMNS, type Table3, type Table3Cell } from "./table3.js";
import { renderPipeTable, type Align } from "./textTable.js";

const AVERAGE_LABEL = "Average";

/** Markdown table with notes. */
export function renderTable3Markdown(table: Table3): string {
    const header = ["Model", "", ...TABLE3_COLUMNS.map((c) => `${c.label} ${c.higherIsBetter ? "↑" : "↓"}`), `${AVERAGE_LABEL} ↑`];
    const decimals = [...TABLE3_COLUMNS.map((c) => c.decimals), 1];
    const rows: string[][] = [];
    const refName = table.referenceKind === "paper" ? "paper" : "reproduction";
    for (const row of table.rows) {
        const cells: Table3Cell[] = [...TABLE3_COLUMNS.map((c) => row.cells[c.key]), row.average];
        rows.push([row.model, "ours", ...cells.map((c, i) => formatCell(c.ours, decimals[i] ?? 1))]);
        if (row.reference !== undefined) {
            rows.push(["", refName, ...cells.map((c, i) => formatCell(c.reference, decimals[i] ?? 1))]);
            rows.push(["", "Δ", ...cells.map((c, i) => formatCell(c.diff, decimals[i] ?? 1, true))]);
        }
    }
    const align: Align[] = ["left", "left", ...header.slice(2).map((): Align => "right")];
    const notes = [
        "",
        "Columns (lm-eval task / metric): LAMBADA ppl = lambada_openai perplexity; LAMBADA acc = lambada_openai acc;",
        "HellaSwag = hellaswag acc_norm; PIQA = piqa acc; ARC-E = arc_easy acc; ARC-C = arc_challenge acc_norm;",
        "WinoGrande = winogrande acc. Accuracies ×100. Average = mean of the six accuracy columns (as the Mamba paper's",
        "Table 3); the published average is recomputed from the published columns (the Mamba paper prints 50.0 and 57.1",
        "for Mamba-370M/790M, which do not match its own columns; Mamba-2 averages 7 tasks with OpenBookQA). Δ = ours − published",
        "after rounding both to the shown decimals.",
        "",
        ...table.rows.map((row) => `- ${row.model}: ${row.resultsPath}; compared with ${referenceLabel(row)}`),
    ];
    return `${renderPipeTable(header, rows, align)}\n${notes.join("\n")}\n`;
}

/** CSV with a header line; numbers at the shown precision, empty when absent. */
export function renderTable3Csv(table: Table3): string {
    const keys = [...TABLE3_COLUMNS.map((c) => ({ key: c.key as string, decimals: c.decimals })), { key: "average", decimals: 1 }];
    const header = ["model", "model_id", "results_file", "reference_model", "reference_source"];
    for (const { key } of keys) header.push(key, `${key}_reference`, `${key}_diff`);
    const records = table.rows.map((row) => {
        const record: string[] = [
            row.model,
            row.modelId ?? "",
            row.resultsPath,
            row.reference?.model ?? "",
            row.reference === undefined ? "" : REFERENCE_SOURCES[row.reference.source],
        ];
        for (const { key, decimals } of keys) {
            const c = key === "average" ? row.average : row.cells[key as keyof typeof row.cells];
            record.push(csvNumber(c.ours, decimals), csvNumber(c.reference, decimals), csvNumber(c.diff, decimals));
        }
        return record;
    });
    return stringify([header, ...records]);
}

function csvNumber(value: number | null, decimals: number): string {
    if (value === null) return "";
    if (!Number.isFinite(value)) return String(value);
    const text = value.toFixed(decimals);
    return Number(text) === 0 ? (0).toFixed(decimals) : text;
}
