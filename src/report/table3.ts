/**
 * The Table-3 view (pure): one row per results run with LAMBADA ppl, LAMBADA acc, HellaSwag (acc_norm),
 * PIQA (acc), ARC-E (acc), ARC-C (acc_norm), WinoGrande (acc) — and, in the Mamba-2 layout, OpenBookQA
 * (acc_norm) — accuracies ×100 shown with one decimal, ppl with two, and the average of the accuracy columns
 * (six as the Mamba paper's Table 3, seven as the Mamba-2 paper's), next to one or two published rows (the papers,
 * the lm-eval 0.4.9.1 reproduction) and the differences. The metric per column is the papers' (Mamba §E.2,
 * Mamba-2 §D.3; paper_tables.md).
 *
 * Rounding rule: ours is rounded to the column's decimals (Number.toFixed), the published value is
 * already at that precision (a published average is recomputed from its columns, then rounded), and
 * the difference is taken between the two rounded numbers, so every row can be checked by eye.
 */
import { normaliseModelName } from "./modelName.js";
import {
    MAMBA_PAPER_ORDER, PAPER_METRICS, referenceRowFor, REFERENCE_SOURCES,
    type PaperSource, type ReferenceChoice, type ReferenceKind, type ReferenceRow, type Table3Values,
} from "./paperTables.js";
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

const column = (key: Table3ColumnKey, label: string, scale: number, decimals: number, higherIsBetter: boolean): Table3Column => ({
    key, label, task: PAPER_METRICS[key].task, metric: `${PAPER_METRICS[key].metric},none`, scale, decimals, higherIsBetter,
});

/** The Mamba paper's Table-3 columns (six tasks). */
export const TABLE3_COLUMNS: readonly Table3Column[] = [
    column("lambadaPpl", "LAMBADA ppl", 1, 2, false),
    column("lambadaAcc", "LAMBADA acc", 100, 1, true),
    column("hellaswag", "HellaSwag", 100, 1, true),
    column("piqa", "PIQA", 100, 1, true),
    column("arcEasy", "ARC-E", 100, 1, true),
    column("arcChallenge", "ARC-C", 100, 1, true),
    column("winogrande", "WinoGrande", 100, 1, true),
];

/** The Mamba-2 paper's columns (Table 3 and Table 10): the six tasks and OpenBookQA. */
export const MAMBA2_COLUMNS: readonly Table3Column[] = [...TABLE3_COLUMNS, column("openbookqa", "OpenBookQA", 100, 1, true)];

/** The accuracy columns the Mamba paper averages (all but LAMBADA ppl). */
export const AVERAGED_COLUMNS: readonly Table3ColumnKey[] = ["lambadaAcc", "hellaswag", "piqa", "arcEasy", "arcChallenge", "winogrande"];

/** The accuracy columns the Mamba-2 paper averages (seven, with OpenBookQA). */
export const MAMBA2_AVERAGED_COLUMNS: readonly Table3ColumnKey[] = [...AVERAGED_COLUMNS, "openbookqa"];

/**
 * Which paper's columns: "mamba" = the Mamba paper's Table 3 (six tasks, average of six; paper rows from the Mamba
 * paper first); "mamba2" = the Mamba-2 paper's (seven tasks with OpenBookQA, average of seven; paper rows from the
 * Mamba-2 paper first, since only it reports OpenBookQA, also for the Mamba-1 sizes).
 */
export type Table3Layout = "mamba" | "mamba2";

interface LayoutSpec {
    columns: readonly Table3Column[];
    averaged: readonly Table3ColumnKey[];
    paperOrder: readonly PaperSource[];
}

const LAYOUTS: Readonly<Record<Table3Layout, LayoutSpec>> = {
    mamba: { columns: TABLE3_COLUMNS, averaged: AVERAGED_COLUMNS, paperOrder: MAMBA_PAPER_ORDER },
    mamba2: { columns: MAMBA2_COLUMNS, averaged: MAMBA2_AVERAGED_COLUMNS, paperOrder: ["mamba2-t10", "mamba2-t3", "mamba-t3"] },
};

/**
 * The comparison a table gets when --reference is not given: the paper alone for the Mamba paper's layout (as it
 * always was), the paper and the lm-eval reproduction for the Mamba-2 layout.
 */
export function defaultReferenceChoice(layout: Table3Layout): ReferenceChoice {
    return layout === "mamba" ? "paper" : "both";
}

/** One comparison of a value with a published one. */
export interface Table3Comparison {
    reference: number | null;
    diff: number | null;
}

/** One cell: ours (rounded for display), and each reference with its difference. null = absent. */
export interface Table3Cell extends Table3Comparison {
    /** Our value in display units (×100 for accuracies), unrounded. */
    oursExact: number | null;
    ours: number | null;
    /** One per table reference kind, in order; `reference` and `diff` above are the first one's. */
    comparisons: Table3Comparison[];
}

export interface Table3Row {
    /** What the row is called: the normalised model name. */
    model: string;
    /** The identifier found in the file (pretrained= / model_name), if any. */
    modelId: string | undefined;
    resultsPath: string;
    /** The first reference kind's published row (same as references[0]). */
    reference: ReferenceRow | undefined;
    /** One per table reference kind, in order. */
    references: Array<ReferenceRow | undefined>;
    /** One cell per column of the table's layout (OpenBookQA only in the "mamba2" layout). */
    cells: Record<Exclude<Table3ColumnKey, "openbookqa">, Table3Cell> & { openbookqa?: Table3Cell };
    average: Table3Cell;
}

export interface Table3 {
    rows: Table3Row[];
    /** The first reference kind (same as referenceKinds[0]). */
    referenceKind: ReferenceKind;
    /** What every row is compared with, in order (one or two kinds). */
    referenceKinds: readonly ReferenceKind[];
    layout: Table3Layout;
    columns: readonly Table3Column[];
    averaged: readonly Table3ColumnKey[];
    /** Published rows shown without a run of ours (e.g. the Mamba-2 paper's models without a public checkpoint). */
    publishedOnly: readonly ReferenceRow[];
}

export interface Table3Options {
    /** What each row is compared with, in order. Default: ["paper"]. */
    references?: readonly ReferenceKind[];
    /** Columns and averaging; default: "mamba2" when some run has openbookqa results, else "mamba". */
    layout?: Table3Layout;
    /** The paper table searched first for the "paper" reference (then the layout's order). */
    preferPaper?: PaperSource;
    /** Published rows to show without a run (see Table3.publishedOnly). */
    publishedOnly?: readonly ReferenceRow[];
}

/** Builds the table from results runs, in the given order. A bare reference kind stands for `{ references: [kind] }`. */
export function buildTable3(runs: readonly ResultsRun[], options: ReferenceKind | Table3Options = {}): Table3 {
    const opts: Table3Options = typeof options === "string" ? { references: [options] } : options;
    const referenceKinds = opts.references !== undefined && opts.references.length > 0 ? [...opts.references] : (["paper"] as ReferenceKind[]);
    const layout = opts.layout ?? detectLayout(runs);
    const spec = LAYOUTS[layout];
    const paperOrder = opts.preferPaper === undefined ? spec.paperOrder : [opts.preferPaper, ...spec.paperOrder.filter((s) => s !== opts.preferPaper)];
    return {
        rows: runs.map((run) => buildRow(run, referenceKinds, spec, paperOrder)),
        referenceKind: referenceKinds[0]!,
        referenceKinds,
        layout,
        columns: spec.columns,
        averaged: spec.averaged,
        publishedOnly: opts.publishedOnly ?? [],
    };
}

/** "mamba2" when some run has OpenBookQA results (the Mamba-2 paper's seventh task), else "mamba". */
export function detectLayout(runs: readonly ResultsRun[]): Table3Layout {
    const obqa = MAMBA2_COLUMNS.find((c) => c.key === "openbookqa")!;
    return runs.some((run) => run.tasks.get(obqa.task)?.get(obqa.metric) !== undefined) ? "mamba2" : "mamba";
}

function buildRow(run: ResultsRun, kinds: readonly ReferenceKind[], spec: LayoutSpec, paperOrder: readonly PaperSource[]): Table3Row {
    const model = run.modelId !== undefined ? normaliseModelName(run.modelId) : "(unnamed model)";
    const references = kinds.map((kind) => (run.modelId !== undefined ? referenceRowFor(model, kind, paperOrder) : undefined));
    const cells: Partial<Record<Table3ColumnKey, Table3Cell>> = {};
    for (const column of spec.columns) {
        const found = run.tasks.get(column.task)?.get(column.metric);
        const oursExact = found === undefined ? null : found.value * column.scale;
        cells[column.key] = cell(oursExact, references.map((r) => r?.values[column.key] ?? null), column.decimals);
    }
    const oursAll = spec.averaged.map((key) => cells[key]!.oursExact);
    const refAll = references.map((r) => meanOrNull(spec.averaged.map((key) => r?.values[key] ?? null)));
    const average = cell(meanOrNull(oursAll), refAll, 1);
    return { model, modelId: run.modelId, resultsPath: run.path, reference: references[0], references, cells: cells as Table3Row["cells"], average };
}

function cell(oursExact: number | null, referenceValues: ReadonlyArray<number | null>, decimals: number): Table3Cell {
    const ours = oursExact === null || !Number.isFinite(oursExact) ? oursExact : roundTo(oursExact, decimals);
    const comparisons = referenceValues.map((value): Table3Comparison => {
        const reference = value === null ? null : roundTo(value, decimals);
        const diff = ours === null || reference === null || !Number.isFinite(ours) ? null : roundTo(ours - reference, decimals);
        return { reference, diff };
    });
    return { oursExact, ours, reference: comparisons[0]?.reference ?? null, diff: comparisons[0]?.diff ?? null, comparisons };
}

/** The mean when every value is present, else null. */
function meanOrNull(values: ReadonlyArray<number | null>): number | null {
    if (values.some((v) => v === null)) return null;
    return (values as number[]).reduce((a, b) => a + b, 0) / values.length;
}

/** A published row's values in display precision, and its average recomputed over `averaged` (null if incomplete). */
export function publishedCells(row: ReferenceRow, table: Pick<Table3, "columns" | "averaged">): Array<number | null> {
    const values = table.columns.map((c) => (row.values[c.key] === null ? null : roundTo(row.values[c.key]!, c.decimals)));
    const average = meanOrNull(table.averaged.map((key) => row.values[key]));
    return [...values, average === null ? null : roundTo(average, 1)];
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

/** "Mamba paper (arXiv 2312.00752), Table 3" for a published row, or a note that there is none. */
export function describeReference(reference: ReferenceRow | undefined): string {
    return reference === undefined ? "no published row" : `${reference.model}, ${REFERENCE_SOURCES[reference.source]}`;
}

/** What a row is compared with: its first reference, or every reference joined by "; " when there are several. */
export function referenceLabel(row: Table3Row): string {
    if (row.references.length <= 1) return describeReference(row.reference);
    const found = row.references.filter((r): r is ReferenceRow => r !== undefined);
    return found.length === 0 ? "no published row" : found.map(describeReference).join("; ");
}
