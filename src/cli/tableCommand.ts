/**
 * `mamba-eval table RESULTS… [--format markdown|csv|svg] [--out FILE] [--reference paper|repro|both] [--paper NAME]`:
 * the Table-3 view of one or more results files or folders, next to the published numbers. Runs with OpenBookQA
 * results get the Mamba-2 paper's seven columns (average of seven), others the Mamba paper's six.
 */
import type { CommandModule } from "yargs";
import { UsageError } from "../errors.js";
import { REFERENCE_CHOICES, type ReferenceChoice } from "../report/paperTables.js";
import { TABLE3_PRESET_NAMES, type Table3PresetName } from "../report/table3Presets.js";
import { formatFromFileName, loadTable3, renderTable3, TABLE_FORMATS, type TableFormat } from "../report/runTable.js";
import { checkOutputFile, writeOutputFile } from "./outputFile.js";

export interface TableArgs {
    results: string[];
    format: TableFormat | undefined;
    out: string | undefined;
    /** Default: paper for six-task (Mamba) tables, both for seven-task (Mamba-2) tables and --paper. */
    reference?: ReferenceChoice | undefined;
    paper?: Table3PresetName | undefined;
}

export const tableCommand: CommandModule<object, TableArgs> = {
    command: "table <results..>",
    describe: "Table-3 view (LAMBADA ppl/acc, HellaSwag, PIQA, ARC-E, ARC-C, WinoGrande[, OpenBookQA], average) next to the paper and/or the lm-eval reproduction",
    builder: (yargs) =>
        yargs
            .positional("results", { type: "string", array: true, demandOption: true, describe: "results JSON files, or folders holding them (one model per subfolder)" })
            .option("format", { choices: TABLE_FORMATS, describe: "output format (default: from --out's extension, else markdown)" })
            .option("out", { type: "string", describe: "write to this file instead of stdout" })
            .option("reference", {
                choices: REFERENCE_CHOICES,
                describe: "compare with the papers, the public lm-eval 0.4.9.1 reproduction of these checkpoints, or both " +
                    "(default: paper; both when the runs have openbookqa results, i.e. the Mamba-2 paper's seven columns, or with --paper)",
            })
            .option("paper", {
                choices: TABLE3_PRESET_NAMES,
                describe: "lay the table out as a published table: mamba2-table3 = the Mamba-2 paper's Table 3 (seven columns, its rows first, " +
                    "its rows without a run shown from the paper)",
            }),
    handler: (args) => {
        tableMain(args, (text) => process.stdout.write(text));
    },
};

/** Runs the command; output goes to --out or through `write`. */
export function tableMain(args: TableArgs, write: (text: string) => void): void {
    const implied = args.out === undefined ? undefined : formatFromFileName(args.out);
    if (args.format !== undefined && implied !== undefined && args.format !== implied) {
        throw new UsageError(`--format ${args.format} does not match --out ${args.out ?? ""} (a .${implied === "markdown" ? "md" : implied} file)`);
    }
    const format = args.format ?? implied ?? "markdown";
    if (args.out !== undefined) checkOutputFile("--out", args.out);
    const content = renderTable3(loadTable3(args.results, { reference: args.reference, paper: args.paper }), format);
    if (args.out === undefined) write(content);
    else {
        writeOutputFile("--out", args.out, content);
        write(`wrote ${args.out}\n`);
    }
}
