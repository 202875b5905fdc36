/**
 * `mamba-eval table3 [--models a,b,…] [--family mamba1|mamba2] [--device] [--batch_size] [--output_path results/table3]
 * [--use_cache DIR] [--log_samples] [--data_dir] [--threads] [--dtype] [--tokenizer] [--reference paper|repro]`:
 * evaluates every published size on the six Table-3 tasks, one model after another, each with its own cache
 * file in --use_cache (so an interrupted run resumes), then writes table3.md, table3.csv and table3.svg into
 * --output_path and prints the markdown. Each model is evaluated as `mamba-eval run` evaluates it (simpleEvaluate),
 * so results files are exactly what run writes; src/report/table3Workflow.ts is the workflow as a library.
 */
import { mkdirSync } from "node:fs";
import type { Argv, CommandModule } from "yargs";
import { ProgressReporter } from "../evaluator/progress.js";
import { addOptions } from "./commonOptions.js";
import { processIO, type CliIO } from "./io.js";
import { MambaEvalError, UsageError } from "../errors.js";
import type { ReferenceKind } from "../report/paperTables.js";
import { runTable3, simpleEvaluator, type Table3EvaluationSettings, type Table3Evaluator, type Table3Family } from "../report/table3Workflow.js";

export interface Table3Args {
    models?: string;
    family: string;
    device?: string;
    batch_size?: string;
    output_path: string;
    use_cache?: string;
    log_samples: boolean;
    data_dir?: string;
    threads?: number;
    dtype?: string;
    tokenizer?: string;
    reference: string;
}

function table3Builder<T>(y: Argv<T>): Argv<T> {
    return addOptions(y, {
        models: { type: "string", describe: "comma-separated models (hub ids, folders, or short names like mamba-130m); default: every published size of --family" },
        family: { type: "string", default: "mamba1", choices: ["mamba1", "mamba2"], describe: "which published sizes to run by default" },
        device: { type: "string", describe: "cpu | cuda (default cpu)" },
        batch_size: { type: "string", describe: "as for run: N or auto (results do not depend on it)" },
        output_path: { type: "string", default: "results/table3", describe: "results go to <output_path>/<model>/; the table to <output_path>/table3.{md,csv,svg}" },
        use_cache: { type: "string", describe: "folder for one request cache per model (<model>.db); an interrupted run resumes from it" },
        log_samples: { type: "boolean", default: false, describe: "also write per-document samples (for compare)" },
        data_dir: { type: "string", describe: "folder with the tasks' original files (layout: <dir>/<task>/<file>, as fixtures/tasks); default: the HF datasets" },
        threads: { type: "number", describe: "CPU threads (default: all cores)" },
        dtype: { type: "string", describe: "compute dtype: float32 | bfloat16" },
        tokenizer: { type: "string", describe: "tokenizer.json file, folder or hub id (default EleutherAI/gpt-neox-20b)" },
        reference: { type: "string", default: "paper", choices: ["paper", "repro"], describe: "compare with the papers or the lm-eval 0.4.9.1 reproduction" },
    });
}

export const table3Command: CommandModule<object, Table3Args> = {
    command: "table3",
    describe: "Evaluate every published Mamba size on the six Table-3 tasks and write the table (md, csv, svg)",
    builder: (y) => table3Builder(y) as unknown as Argv<Table3Args>,
    handler: async (args) => {
        await table3Main(args, processIO);
    },
};

/** Runs the workflow; throws a MambaEvalError (exit 1) when some model failed. */
export async function table3Main(args: Table3Args, io: CliIO): Promise<void> {
    if (args.family !== "mamba1" && args.family !== "mamba2") throw new UsageError(`--family ${args.family}: expected mamba1 or mamba2`);
    if (args.reference !== "paper" && args.reference !== "repro") throw new UsageError(`--reference ${args.reference}: expected paper or repro`);
    if (args.use_cache !== undefined) mkdirSync(args.use_cache, { recursive: true });
    const abort = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => abort.abort(new MambaEvalError(`interrupted by ${signal}`));
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
        const outcome = await runTable3(
            {
                models: args.models?.split(","),
                family: args.family as Table3Family,
                device: args.device,
                batchSize: args.batch_size,
                outputPath: args.output_path,
                useCache: args.use_cache,
                reference: args.reference as ReferenceKind,
                log: (line) => io.err(`${line}\n`),
                signal: abort.signal,
            },
            table3Evaluator(io, args, abort.signal),
        );
        io.err(`wrote ${outcome.written.markdown}, ${outcome.written.csv}, ${outcome.written.svg}\n`);
        io.out(outcome.markdown);
        if (outcome.failures.length > 0) {
            throw new MambaEvalError(`table3: ${outcome.failures.length} model(s) failed: ${outcome.failures.map((f) => `${f.model} (${f.message})`).join("; ")}`);
        }
    } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
    }
}

/**
 * Each model evaluated as `run` evaluates it (simpleEvaluate, progress on stderr), its lm-eval table printed to
 * stdout. `openAhead` as in simpleEvaluator (default: on a GPU only).
 */
export function table3Evaluator(
    io: CliIO,
    args: Pick<Table3Args, "log_samples" | "data_dir" | "threads" | "dtype" | "tokenizer">,
    signal?: AbortSignal,
    openAhead?: (device: string | undefined) => boolean,
): Table3Evaluator {
    let progress: ProgressReporter | undefined;
    return simpleEvaluator(
        {
            logSamples: args.log_samples,
            dataDir: args.data_dir,
            threads: args.threads,
            dtype: args.dtype as Table3EvaluationSettings["dtype"],
            tokenizer: args.tokenizer,
            log: (line) => io.err(`${line}\n`),
            onProgress: (p) => {
                progress ??= new ProgressReporter("loglikelihood", { write: (t) => io.err(t), isTTY: io.errIsTTY });
                progress.update(p);
            },
            onScored: () => {
                progress?.finish();
                progress = undefined;
            },
            ...(signal ? { signal } : {}),
        },
        openAhead,
        (_model, result) => io.out(`${result.header}\n${result.table}\n`),
    );
}
