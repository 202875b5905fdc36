/**
 * The Table-3 view as markdown and CSV. Markdown: per model a line of ours, then for each reference (the paper
 * and/or the lm-eval reproduction) its published line and a Δ line, plus published-only lines (models of the
 * paper's table without a public checkpoint) and notes naming the metric per column, the averaging rule and each
 * row's source files. CSV (csv-stringify): one line per model, for each column ours then reference / diff per
 * reference.
 */
import { stringify } from "csv-stringify/sync";
import { REFERENCE_SOURCES, type ReferenceKind, type ReferenceRow } from "./paperTables.js";
import { describeReference, formatCell, publishedCells, referenceLabel, type Table3, type Table3Comparison } from "./table3.js";
import { renderPipeTable, type Align } from "./textTable.js";

const AVERAGE_LABEL = "Average";

/** How a reference kind's lines are labelled. */
const KIND_LABEL: Record<ReferenceKind, string> = { paper: "paper", repro: "reproduction" };

/** Markdown table with notes. */
export function renderTable3Markdown(table: Table3): string {
    const header = ["Model", "", ...table.columns.map((c) => `${c.label} ${c.higherIsBetter ? "↑" : "↓"}`), `${AVERAGE_LABEL} ↑`];
    const decimals = [...table.columns.map((c) => c.decimals), 1];
    const several = table.referenceKinds.length > 1;
    const rows: string[][] = [];
    for (const row of table.rows) {
        const cells = [...table.columns.map((c) => row.cells[c.key]!), row.average];
        rows.push([row.model, "ours", ...cells.map((c, i) => formatCell(c.ours, decimals[i] ?? 1))]);
        table.referenceKinds.forEach((kind, k) => {
            if (row.references[k] === undefined) return;
            const comparisons: Table3Comparison[] = cells.map((c) => c.comparisons[k]!);
            rows.push(["", KIND_LABEL[kind], ...comparisons.map((c, i) => formatCell(c.reference, decimals[i] ?? 1))]);
            rows.push(["", several ? `Δ ${KIND_LABEL[kind]}` : "Δ", ...comparisons.map((c, i) => formatCell(c.diff, decimals[i] ?? 1, true))]);
        });
    }
    for (const published of table.publishedOnly) {
        rows.push([`${published.model} (not run)`, KIND_LABEL[published.source === "repro" ? "repro" : "paper"],
            ...publishedCells(published, table).map((v, i) => formatCell(v, decimals[i] ?? 1))]);
    }
    const align: Align[] = ["left", "left", ...header.slice(2).map((): Align => "right")];
    const notes = [
        "",
        ...(table.layout === "mamba" ? MAMBA_NOTES : MAMBA2_NOTES),
        ...(several ? SEVERAL_NOTE : []),
        "",
        ...table.rows.map((row) => `- ${row.model}: ${row.resultsPath}; compared with ${referenceLabel(row)}`),
        ...table.publishedOnly.map((published) => `- ${published.model} (not run): ${describeReference(published)}`),
    ];
    return `${renderPipeTable(header, rows, align)}\n${notes.join("\n")}\n`;
}

const MAMBA_NOTES = [
    "Columns (lm-eval task / metric): LAMBADA ppl = lambada_openai perplexity; LAMBADA acc = lambada_openai acc;",
    "HellaSwag = hellaswag acc_norm; PIQA = piqa acc; ARC-E = arc_easy acc; ARC-C = arc_challenge acc_norm;",
    "WinoGrande = winogrande acc. Accuracies ×100. Average = mean of the six accuracy columns (as the Mamba paper's",
    "Table 3); the published average is recomputed from the published columns (the Mamba paper prints 50.0 and 57.1",
    "for Mamba-370M/790M, which do not match its own columns; Mamba-2 averages 7 tasks with OpenBookQA). Δ = ours − published",
    "after rounding both to the shown decimals.",
];

const MAMBA2_NOTES = [
    "Columns (lm-eval task / metric): LAMBADA ppl = lambada_openai perplexity; LAMBADA acc = lambada_openai acc;",
    "HellaSwag = hellaswag acc_norm; PIQA = piqa acc; ARC-E = arc_easy acc; ARC-C = arc_challenge acc_norm;",
    "WinoGrande = winogrande acc; OpenBookQA = openbookqa acc_norm. Accuracies ×100. Average = mean of the seven",
    "accuracy columns (as the Mamba-2 paper's Tables 3 and 10); the published average is recomputed from the published",
    "columns. Δ = ours − published after rounding both to the shown decimals.",
];

const SEVERAL_NOTE = [
    "paper = the papers' published rows; reproduction = a public lm-eval 0.4.9.1 run of the same checkpoints",
    "(`--model mamba_ssm`, batch 256), which agrees with the papers to within 0.1–0.3 for almost every cell.",
];

/** CSV with a header line; numbers at the shown precision, empty when absent. */
export function renderTable3Csv(table: Table3): string {
    const several = table.referenceKinds.length > 1;
    // One reference: "<key>_reference", "<key>_diff" (and reference_model/_source); several: "<key>_<kind>", "<key>_<kind>_diff".
    const prefix = (kind: ReferenceKind) => (several ? kind : "reference");
    const diffName = (key: string, kind: ReferenceKind) => (several ? `${key}_${kind}_diff` : `${key}_diff`);
    const keys = [...table.columns.map((c) => ({ key: c.key as string, decimals: c.decimals })), { key: "average", decimals: 1 }];
    const header = ["model", "model_id", "results_file"];
    for (const kind of table.referenceKinds) header.push(`${prefix(kind)}_model`, `${prefix(kind)}_source`);
    for (const { key } of keys) {
        header.push(key);
        for (const kind of table.referenceKinds) header.push(`${key}_${prefix(kind)}`, diffName(key, kind));
    }
    const records = table.rows.map((row) => {
        const record: string[] = [row.model, row.modelId ?? "", row.resultsPath];
        row.references.forEach((reference: ReferenceRow | undefined) => {
            record.push(reference?.model ?? "", reference === undefined ? "" : REFERENCE_SOURCES[reference.source]);
        });
        for (const { key, decimals } of keys) {
            const c = key === "average" ? row.average : row.cells[key as keyof typeof row.cells]!;
            record.push(csvNumber(c.ours, decimals));
            for (const comparison of c.comparisons) record.push(csvNumber(comparison.reference, decimals), csvNumber(comparison.diff, decimals));
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
