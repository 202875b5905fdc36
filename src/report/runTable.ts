/**
 * The table workflow as library functions: results paths (files or folders) → runs → Table-3 view →
 * markdown | csv | svg text.
 */
import { UsageError } from "../errors.js";
import { resolveResultsFiles } from "./locateResults.js";
import { referenceKinds, type ReferenceChoice } from "./paperTables.js";
import { renderTable3Csv, renderTable3Markdown } from "./renderTable3.js";
import { renderTable3Svg } from "./renderSvg.js";
import { readResultsFile, type ResultsRun } from "./resultsFile.js";
import { buildTable3, defaultReferenceChoice, detectLayout, type Table3, type Table3Layout } from "./table3.js";
import { paperRowsNotRun, TABLE3_PRESETS, type Table3PresetName } from "./table3Presets.js";

export const TABLE_FORMATS = ["markdown", "csv", "svg"] as const;
export type TableFormat = (typeof TABLE_FORMATS)[number];

/** How a table is laid out and what it is compared with. */
export interface TableChoices {
    /** --reference; default: defaultReferenceChoice(layout). */
    reference?: ReferenceChoice | undefined;
    /** --paper: a published table (its columns, its rows first, and its rows without a run shown from the paper). */
    paper?: Table3PresetName | undefined;
    /** Columns; default: the preset's, else "mamba2" when some run has OpenBookQA results, else "mamba". */
    layout?: Table3Layout | undefined;
}

/** Builds the Table-3 view of the runs with the given choices (defaults as in TableChoices). */
export function buildReportTable(runs: readonly ResultsRun[], choices: TableChoices = {}): Table3 {
    const preset = choices.paper === undefined ? undefined : TABLE3_PRESETS[choices.paper];
    const layout = choices.layout ?? preset?.layout ?? detectLayout(runs);
    const table = buildTable3(runs, {
        references: referenceKinds(choices.reference ?? defaultReferenceChoice(layout)),
        layout,
        ...(preset ? { preferPaper: preset.preferPaper } : {}),
    });
    return preset ? { ...table, publishedOnly: paperRowsNotRun(preset, table.rows.map((r) => r.model)) } : table;
}

/** Reads every results file the paths stand for (each file once, in argument order) and builds the table. */
export function loadTable3(paths: readonly string[], choices: ReferenceChoice | TableChoices = {}): Table3 {
    if (paths.length === 0) throw new UsageError("table: expected at least one results file or folder");
    const files: string[] = [];
    for (const path of paths) {
        for (const file of resolveResultsFiles(path, "RESULTS")) if (!files.includes(file)) files.push(file);
    }
    return buildReportTable(files.map((file) => readResultsFile(file)), typeof choices === "string" ? { reference: choices } : choices);
}

/** Renders the table in one format. */
export function renderTable3(table: Table3, format: TableFormat): string {
    switch (format) {
        case "markdown":
            return renderTable3Markdown(table);
        case "csv":
            return renderTable3Csv(table);
        case "svg":
            return renderTable3Svg(table);
    }
}

/** The format a --out file name implies (.md, .csv, .svg), if any. */
export function formatFromFileName(path: string): TableFormat | undefined {
    const ext = /\.([a-z]+)$/i.exec(path)?.[1]?.toLowerCase();
    return ext === "md" || ext === "markdown" ? "markdown" : ext === "csv" ? "csv" : ext === "svg" ? "svg" : undefined;
}
