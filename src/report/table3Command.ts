/**
 * `mamba-eval table3 [--models a,b,…] [--family mamba1|mamba2] [--device] [--batch_size] [--output_path results/table3]
 * [--use_cache DIR] [--log_samples] [--data_dir] [--threads] [--dtype] [--tokenizer] [--reference paper|repro]`:
 * evaluates every published size on the six Table-3 tasks, one model after another, each with its own cache
 * file in --use_cache (so an interrupted run resumes), then writes table3.md, table3.csv and table3.svg into
 * --output_path and prints the markdown. Each model's evaluation is the run command's (src/cli/runCommand.ts
 * → src/harness/evaluate.ts), so results files are exactly what `mamba-eval run` writes; the models share one
 * RunMemo, so the task documents are read and the requests tokenised once for all of them.
 */
import { mkdirSync } from "node:fs";
import type { Argv, CommandModule } from "yargs";
import { openRunModel, runMain, type RunArgs } from "../cli/runCommand.js";
import type { OpenedModel } from "../cli/openModel.js";
import { RunMemo } from "../harness/runMemo.js";
import { addOptions } from "../cli/commonOptions.js";
import { processIO, type CliIO } from "../cli/io.js";
import { MambaEvalError, UsageError } from "../errors.js";
import type { ReferenceKind } from "./paperTables.js";
import { runTable3, type Table3EvalRequest, type Table3Evaluator, type Table3Family } from "./table3Workflow.js";

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
        data_dir: { type: "string", describe: "folder with the tasks' original files (layout of ../shared/data); default: the HF datasets" },
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
    const onSignal = () => abort.abort();
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
            harnessEvaluator(io, args),
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
 * One model through the run command; returns the results file it wrote. `openAhead(device)`: whether to open the
 * next model while this one is evaluated (default: on a GPU only; on the CPU two models at once would double the host
 * memory a run needs).
 */
export function harnessEvaluator(
    io: CliIO,
    args: Pick<Table3Args, "log_samples" | "data_dir" | "threads" | "dtype" | "tokenizer">,
    openAhead: (device: string | undefined) => boolean = (device) => device === "cuda",
): Table3Evaluator {
    const memo = new RunMemo();  // documents, token requests and prefix tree, made once for every model
    const runArgs = (request: Table3EvalRequest, model: string): RunArgs => ({
        model: "mamba_ssm",
        model_args: `pretrained=${model}`,
        tasks: request.tasks.join(","),
        device: request.device,
        batch_size: request.batchSize,
        output_path: request.outputPath,
        use_cache: request.cacheFile,
        log_samples: args.log_samples,
        data_dir: args.data_dir,
        threads: args.threads,
        dtype: args.dtype,
        tokenizer: args.tokenizer,
    });
    let ahead: { model: string; opened: Promise<OpenedModel> } | undefined;
    return async (request) => {
        const opened = ahead?.model === request.model ? ahead.opened : undefined;
        if (ahead !== undefined && opened === undefined) void ahead.opened.then((m) => m.dispose(), () => undefined);
        ahead = undefined;
        const openNext = () => {
            if (request.next === undefined || !openAhead(request.device)) return;
            const next = openRunModel(runArgs(request, request.next), memo);
            next.catch(() => undefined);  // its error is reported when its turn comes
            ahead = { model: request.next, opened: next };
        };
        let file: string | undefined;
        const code = await runMain(runArgs(request, request.model), io, {
            memo,
            ...(opened ? { opened } : {}),
            onOpened: openNext,
            onResultsFile: (written) => (file = written),
        });
        if (code !== 0) throw new MambaEvalError(`${request.model}: evaluation ended with status ${code}`);
        if (file === undefined) throw new MambaEvalError(`${request.model}: the run wrote no results file under ${request.outputPath}`);
        return file;
    };
}
