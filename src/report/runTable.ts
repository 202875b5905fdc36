/**
 * The table workflow as library functions: results paths (files or folders) → runs → Table-3 view →
 * markdown | csv | svg text.
 */
import { UsageError } from "../errors.js";
import { resolveResultsFiles } from "./locateResults.js";
import type { ReferenceKind } from "./paperTables.js";
import { renderTable3Csv, renderTable3Markdown } from "./renderTable3.js";
import { renderTable3Svg } from "./renderSvg.js";
import { readResultsFile } from "./resultsFile.js";
import { buildTable3, type Table3 } from "./table3.js";

export const TABLE_FORMATS = ["markdown", "csv", "svg"] as const;
export type TableFormat = (typeof TABLE_FORMATS)[number];

/** Reads every results file the paths stand for (each file once, in argument order) and builds the table. */
export function loadTable3(paths: readonly string[], reference: ReferenceKind): Table3 {
    if (paths.length === 0) throw new UsageError("table: expected at least one results file or folder");
    const files: string[] = [];
    for (const path of paths) {
        for (const file of resolveResultsFiles(path, "RESULTS")) if (!files.includes(file)) files.push(file);
    }
    return buildTable3(files.map((file) => readResultsFile(file)), reference);
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
