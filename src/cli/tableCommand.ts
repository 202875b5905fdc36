/**
 * `mamba-eval table RESULTS… [--format markdown|csv|svg] [--out FILE] [--reference paper|repro]`:
 * the Table-3 view of one or more results files or folders, next to the published numbers.
 */
import type { CommandModule } from "yargs";
import { UsageError } from "../errors.js";
import type { ReferenceKind } from "../report/paperTables.js";
import { formatFromFileName, loadTable3, renderTable3, TABLE_FORMATS, type TableFormat } from "../report/runTable.js";
import { writeFileAtomic } from "../io/atomicWrite.js";

export interface TableArgs {
    results: string[];
    format: TableFormat | undefined;
    out: string | undefined;
    reference: ReferenceKind;
}

export const tableCommand: CommandModule<object, TableArgs> = {
    command: "table <results..>",
    describe: "Table-3 view (LAMBADA ppl/acc, HellaSwag, PIQA, ARC-E, ARC-C, WinoGrande, average) next to the paper",
    builder: (yargs) =>
        yargs
            .positional("results", { type: "string", array: true, demandOption: true, describe: "results JSON files, or folders holding them (one model per subfolder)" })
            .option("format", { choices: TABLE_FORMATS, describe: "output format (default: from --out's extension, else markdown)" })
            .option("out", { type: "string", describe: "write to this file instead of stdout" })
            .option("reference", { choices: ["paper", "repro"] as const, default: "paper" as const, describe: "compare with the papers or with the lm-eval 0.4.9.1 reproduction" }),
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
    const content = renderTable3(loadTable3(args.results, args.reference), format);
    if (args.out === undefined) write(content);
    else {
        writeFileAtomic(args.out, content);
        write(`wrote ${args.out}\n`);
    }
}
