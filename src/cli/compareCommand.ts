/**
 * `mamba-eval compare BASELINE CURRENT [--k 2] [--floor 0.001] [--exact] [--json] [--show N]`:
 * a thin yargs shell over runCompare. Prints the table (or JSON) to stdout; when the comparison fails
 * (a regression, or in exact mode any difference) the handler then throws ComparisonFailed, a
 * MambaEvalError, so the CLI prints its one line and exits with status 1.
 */
import type { CommandModule } from "yargs";
import { MambaEvalError, UsageError } from "../errors.js";
import { DEFAULT_COMPARE_OPTIONS } from "../report/compareResults.js";
import { compareReportJson, formatCompareText, summaryLine } from "../report/formatCompare.js";
import { runCompare } from "../report/runCompare.js";
import { integerFlag, numberFlag } from "./flags.js";

export interface CompareArgs {
    baseline: string;
    current: string;
    k: number;
    floor: number;
    exact: boolean;
    json: boolean;
    show: number;
}

export const compareCommand: CommandModule<object, CompareArgs> = {
    command: "compare <baseline> <current>",
    describe: "Compare two results files (or folders): flag metrics that got worse beyond noise",
    builder: (yargs) =>
        yargs
            .positional("baseline", { type: "string", demandOption: true, describe: "baseline results JSON, or a folder holding results_*.json" })
            .positional("current", { type: "string", demandOption: true, describe: "current results JSON, or a folder holding results_*.json" })
            .option("k", { type: "string", default: String(DEFAULT_COMPARE_OPTIONS.k), coerce: numberFlag("--k", 0), describe: "a regression is worse by more than k combined standard errors" })
            .option("floor", { type: "string", default: String(DEFAULT_COMPARE_OPTIONS.floor), coerce: numberFlag("--floor", 0), describe: "… and by more than this absolute amount" })
            .option("exact", { type: "boolean", default: false, describe: "fail on any difference at all (CI baselines)" })
            .option("json", { type: "boolean", default: false, describe: "print the report as JSON" })
            .option("show", { type: "string", default: "5", coerce: integerFlag("--show", 0), describe: "how many changed documents to show" }),
    handler: (args) => {
        const code = compareMain(args, (text) => process.stdout.write(text), (line) => {
            throw new ComparisonFailed(line);
        });
        if (code !== 0) process.exitCode = code;
    },
};

/** The comparison found a regression (or, in exact mode, a difference); the message is the summary line. */
export class ComparisonFailed extends MambaEvalError {}

/**
 * Runs the command; returns the exit status (0 ok, 1 failed). `onFail` is called with the summary
 * line when the comparison fails (after the report is written).
 */
export function compareMain(args: CompareArgs, write: (text: string) => void, onFail?: (summary: string) => void): number {
    if (!Number.isFinite(args.k) || args.k < 0) throw new UsageError(`--k ${String(args.k)}: expected a number ≥ 0`);
    if (!Number.isFinite(args.floor) || args.floor < 0) throw new UsageError(`--floor ${String(args.floor)}: expected a number ≥ 0`);
    if (!Number.isInteger(args.show) || args.show < 0) throw new UsageError(`--show ${String(args.show)}: expected an integer ≥ 0`);
    const report = runCompare(args.baseline, args.current, { k: args.k, floor: args.floor, exact: args.exact });
    write(args.json ? `${JSON.stringify(compareReportJson(report), null, 2)}\n` : `${formatCompareText(report, args.show)}\n`);
    if (!report.failed) return 0;
    onFail?.(`compare: ${summaryLine(report)}`);
    return 1;
}
