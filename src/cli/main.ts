/**
 * The `mamba-eval` command line: yargs, strict, one file per command, each a thin shell over library
 * functions. Errors print as one line `mamba-eval: <message>` (stack with --verbose); exit status 1, or 2
 * for usage errors (unknown flag or command, bad flag values).
 */
import { createRequire } from "node:module";
import type yargsModule from "yargs";
import { MambaEvalError, UsageError } from "../errors.js";
import { compareCommand } from "./compareCommand.js";
import { table3Command } from "./table3Command.js";
import { tableCommand } from "./tableCommand.js";
import { generateCommand } from "./generateCommand.js";
import { processIO, type CliIO } from "./io.js";
import { lsCommand } from "./lsCommand.js";
import { runCommand } from "./runCommand.js";
import { scoreCommand } from "./scoreCommand.js";
import { registeredFlags } from "./commonOptions.js";
import { didYouMean } from "../io/suggest.js";

// yargs' CommonJS build: its help formatter wraps at word boundaries (the ES-module build breaks words mid-line).
const yargs = createRequire(import.meta.url)("yargs") as typeof yargsModule;

const COMMANDS = ["run", "ls", "score", "generate", "compare", "table", "table3"];

/**
 * The first flag given twice (in either spelling, as `--x v`, `--x=v` or `--no-x`), if any: yargs would merge the
 * values into a list, which no flag takes (a path of "a,b", or a crash inside the command).
 */
export function repeatedFlag(argv: readonly string[]): string | undefined {
    const seen = new Set<string>();
    for (const arg of argv) {
        if (arg === "--") break;
        if (!arg.startsWith("--") || arg.length < 3) continue;
        let name = arg.slice(2).split("=")[0]!;
        if (name.startsWith("no-")) name = name.slice(3);
        const key = name.replaceAll("-", "_");
        if (seen.has(key)) return name;
        seen.add(key);
    }
    return undefined;
}

/** Runs the CLI on `argv` (without node and script); resolves to the exit status. */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
    const verbose = argv.includes("--verbose");
    let code = 0;
    const setCode = (c: number) => {
        code = c;
    };
    // An unknown first word is an unknown command, not a stray argument of the default command.
    const first = argv[0];
    if (first !== undefined && !first.startsWith("-") && !COMMANDS.includes(first)) {
        io.err(`mamba-eval: unknown command "${first}"${didYouMean(first, COMMANDS)} (commands: ${COMMANDS.join(", ")})\n`);
        return 2;
    }
    const repeated = repeatedFlag(argv);
    if (repeated !== undefined) {
        io.err(`mamba-eval: --${repeated} given more than once (each flag takes one value)\n`);
        return 2;
    }
    const parser = yargs(argv)
        .scriptName("mamba-eval")
        .parserConfiguration({ "camel-case-expansion": false })
        .command(runCommand(io, setCode))
        .command(lsCommand(io))
        .command(scoreCommand(io, setCode))
        .command(generateCommand(io, setCode))
        .command(compareCommand as never)
        .command(tableCommand as never)
        .command(table3Command as never)
        .strict()
        .recommendCommands()
        .exitProcess(false)
        .help()
        .version(false)
        .wrap(Math.min(120, process.stdout.columns ?? 100))
        .fail((msg, err) => {
            // yargs wraps errors of option coercion (e.g. --limit abc) in a YError: those are usage errors.
            if (err) throw err.name === "YError" ? new UsageError(err.message) : err;
            const unknown = /^Unknown arguments?: (.+)$/.exec(msg ?? "");
            if (unknown) {
                const names = unknown[1]!.split(", ");
                // yargs reports a stray positional word (`ls extra`) the same way as an unknown flag
                const given = (n: string) => argv.some((a) => a === `--${n}` || a === `-${n}` || a.startsWith(`--${n}=`));
                const strays = names.filter((n) => !given(n));
                if (strays.length > 0) throw new UsageError(`unexpected argument${strays.length > 1 ? "s" : ""} ${strays.map((n) => JSON.stringify(n)).join(", ")}`);
                const hints = names.map((n) => `--${n}${didYouMean(n, [...registeredFlags], (s) => `--${s}`)}`);
                throw new UsageError(`unknown flag ${hints.join(", ")}`);
            }
            throw new UsageError(msg ?? "invalid command line");
        });
    try {
        await parser.parseAsync();
        return code;
    } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        io.err(`mamba-eval: ${message.split("\n")[0]}\n`);
        if (verbose && e instanceof Error && e.stack) io.err(`${e.stack}\n`);
        if (e instanceof UsageError) return 2;
        if (!(e instanceof MambaEvalError) && !verbose) io.err("mamba-eval: (internal error; run with --verbose for the stack trace)\n");
        return 1;
    }
}
