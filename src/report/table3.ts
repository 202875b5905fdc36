/**
 * The Table-3 view (pure): one row per results run with LAMBADA ppl, LAMBADA acc, HellaSwag (acc_norm),
 * PIQA (acc), ARC-E (acc), ARC-C (acc_norm), WinoGrande (acc) — accuracies ×100 shown with one decimal,
 * ppl with two — and the average of the six accuracy columns, next to the published value and the
 * difference. The metric per column is the papers' (Mamba §E.2, Mamba-2 §D.3; paper_tables.md).
 *
 * Rounding rule: ours is rounded to the column's decimals (Number.toFixed), the published value is
 * already at that precision (a published average is recomputed from its six columns, then rounded), and
 * the difference is taken between the two rounded numbers, so every row can be checked by eye.
 */
import { normaliseModelName } from "./modelName.js";
import { referenceRowFor, REFERENCE_SOURCES, type ReferenceKind, type ReferenceRow, type Table3Values } from "./paperTables.js";
import type { ResultsRun } from "./resultsFile.js";

export type Table3ColumnKey = keyof Table3Values;

/** One column: where its number comes from and how it is shown. */
export interface Table3Column {
    key: Table3ColumnKey;
    label: string;
    task: string;
    metric: string;
    /** ×100 for accuracies. */
    scale: number;
    decimals: number;
    higherIsBetter: boolean;
}

export const TABLE3_COLUMNS: readonly Table3Column[] = [
    { key: "lambadaPpl", label: "LAMBADA ppl", task: "lambada_openai", metric: "perplexity,none", scale: 1, decimals: 2, higherIsBetter: false },
    { key: "lambadaAcc", label: "LAMBADA acc", task: "lambada_openai", metric: "acc,none", scale: 100, decimals: 1, higherIsBetter: true },
    { key: "hellaswag", label: "HellaSwag", task: "hellaswag", metric: "acc_norm,none", scale: 100, decimals: 1, higherIsBetter: true },
    { key: "piqa", label: "PIQA", task: "piqa", metric: "acc,none", scale: 100, decimals: 1, higherIsBetter: true },
    { key: "arcEasy", label: "ARC-E", task: "arc_easy", metric: "acc,none", scale: 100, decimals: 1, higherIsBetter: true },
    { key: "arcChallenge", label: "ARC-C", task: "arc_challenge", metric: "acc_norm,none", scale: 100, decimals: 1, higherIsBetter: true },
    { key: "winogrande", label: "WinoGrande", task: "winogrande", metric: "acc,none", scale: 100, decimals: 1, higherIsBetter: true },
];

/** The accuracy columns the average is taken over (all but LAMBADA ppl). */
export const AVERAGED_COLUMNS: readonly Table3ColumnKey[] = ["lambadaAcc", "hellaswag", "piqa", "arcEasy", "arcChallenge", "winogrande"];

/** One cell: ours (rounded for display), the reference value, and their difference. null = absent. */
export interface Table3Cell {
    /** Our value in display units (×100 for accuracies), unrounded. */
    oursExact: number | null;
    ours: number | null;
    reference: number | null;
    diff: number | null;
}

export interface Table3Row {
    /** What the row is called: the normalised model name. */
    model: string;
    /** The identifier found in the file (pretrained= / model_name), if any. */
    modelId: string | undefined;
    resultsPath: string;
    reference: ReferenceRow | undefined;
    cells: Record<Table3ColumnKey, Table3Cell>;
    average: Table3Cell;
}

export interface Table3 {
    rows: Table3Row[];
    referenceKind: ReferenceKind;
}

/** Builds the table from results runs, in the given order. */
export function buildTable3(runs: readonly ResultsRun[], referenceKind: ReferenceKind = "paper"): Table3 {
    return { rows: runs.map((run) => buildRow(run, referenceKind)), referenceKind };
}

function buildRow(run: ResultsRun, referenceKind: ReferenceKind): Table3Row {
    const model = run.modelId !== undefined ? normaliseModelName(run.modelId) : "(unnamed model)";
    const reference = run.modelId !== undefined ? referenceRowFor(model, referenceKind) : undefined;
    const cells = {} as Record<Table3ColumnKey, Table3Cell>;
    for (const column of TABLE3_COLUMNS) {
        const found = run.tasks.get(column.task)?.get(column.metric);
        const oursExact = found === undefined ? null : found.value * column.scale;
        cells[column.key] = cell(oursExact, reference?.values[column.key] ?? null, column.decimals);
    }
    const oursAll = AVERAGED_COLUMNS.map((key) => cells[key].oursExact);
    const refAll = AVERAGED_COLUMNS.map((key) => reference?.values[key] ?? null);
    const average = cell(meanOrNull(oursAll), meanOrNull(refAll), 1);
    return { model, modelId: run.modelId, resultsPath: run.path, reference, cells, average };
}

function cell(oursExact: number | null, referenceValue: number | null, decimals: number): Table3Cell {
    const ours = oursExact === null || !Number.isFinite(oursExact) ? oursExact : roundTo(oursExact, decimals);
    const reference = referenceValue === null ? null : roundTo(referenceValue, decimals);
    const diff = ours === null || reference === null || !Number.isFinite(ours) ? null : roundTo(ours - reference, decimals);
    return { oursExact, ours, reference, diff };
}

/** The mean when every value is present, else null. */
function meanOrNull(values: ReadonlyArray<number | null>): number | null {
    if (values.some((v) => v === null)) return null;
    return (values as number[]).reduce((a, b) => a + b, 0) / values.length;
}

/** Rounds to `decimals` places the way it is printed (toFixed), as a number. */
export function roundTo(value: number, decimals: number): number {
    return Number(value.toFixed(decimals));
}

/** A cell value as printed: fixed decimals, "—" when absent, a real minus sign. */
export function formatCell(value: number | null, decimals: number, signed = false): string {
    if (value === null) return "—";
    if (!Number.isFinite(value)) return String(value);
    const text = value.toFixed(decimals);
    if (!signed) return text.replace(/^-/, "−");
    if (Number(text) === 0) return (0).toFixed(decimals);
    return text.startsWith("-") ? `−${text.slice(1)}` : `+${text}`;
}

/** "Mamba paper (arXiv 2312.00752), Table 3" for a row's reference, or a note that there is none. */
export function referenceLabel(row: Table3Row): string {
    return row.reference === undefined ? "no published row" : `${row.reference.model}, ${REFERENCE_SOURCES[row.reference.source]}`;
}
