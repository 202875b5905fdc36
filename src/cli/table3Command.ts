/**
 * `mamba-eval table3 [--models a,b,…] [--family mamba1|mamba2] [--paper mamba2-table3] [--device] [--batch_size]
 * [--output_path results/table3] [--use_cache DIR] [--log_samples] [--data_dir] [--threads] [--dtype] [--tokenizer]
 * [--reference paper|repro|both] [--state_budget_gb N]`:
 * evaluates every published size of the family (Mamba-1 on the Mamba paper's six Table-3 tasks, Mamba-2 on the
 * Mamba-2 paper's seven, with OpenBookQA) or the checkpoints of a published table (--paper), one model after another,
 * each with its own cache file in --use_cache (so an interrupted run resumes), then writes table3.md, table3.csv and
 * table3.svg into --output_path and prints the markdown. Each model is evaluated as `mamba-eval run` evaluates it (simpleEvaluate),
 * so results files are exactly what run writes; src/report/table3Workflow.ts is the workflow as a library.
 */
import type { Argv, CommandModule } from "yargs";
import { ProgressReporter } from "../evaluator/progress.js";
import { addOptions } from "./commonOptions.js";
import { integerFlag, nonEmptyFlag, numberFlag, requireFolderFlag } from "./flags.js";
import { handleInterrupts } from "./interrupt.js";
import { makeDirs } from "../io/dirs.js";
import { describeFileKind } from "../io/safeFile.js";
import { MAX_STATE_BUDGET_GB, parseDevice, parseDtype } from "../evaluator/modelArgs.js";
import { checkOutputFolder, tokensPerCall } from "../evaluator/simpleEvaluate.js";
import { checkTokenizerSpec } from "../model/tokenizer.js";
import { statSync } from "node:fs";
import { validateEnvironment } from "./environment.js";
import { processIO, type CliIO } from "./io.js";
import { MambaEvalError, UsageError } from "../errors.js";
import { REFERENCE_CHOICES, type ReferenceChoice } from "../report/paperTables.js";
import { TABLE3_PRESET_NAMES, type Table3PresetName } from "../report/table3Presets.js";
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
    reference?: string;
    paper?: string;
    state_budget_gb?: number;
}

function table3Builder<T>(y: Argv<T>): Argv<T> {
    return addOptions(y, {
        models: { type: "string", describe: "comma-separated models (hub ids, folders, or short names like mamba-130m); default: every published size of --family (or the checkpoints of --paper)" },
        family: {
            type: "string", default: "mamba1", choices: ["mamba1", "mamba2"],
            describe: "which published sizes to run, and on which tasks: mamba1 = state-spaces/mamba-130m…2.8b on the Mamba paper's six " +
                "Table-3 tasks (average of six); mamba2 = state-spaces/mamba2-130m…2.7b on the Mamba-2 paper's seven (the six and openbookqa; average of seven)",
        },
        paper: {
            type: "string", choices: TABLE3_PRESET_NAMES,
            describe: "reproduce a published table instead of a family: mamba2-table3 = the Mamba-2 paper's Table 3 (2.7B models): " +
                "state-spaces/transformerpp-2.7b, mamba2-2.7b and mamba2attn-2.7b on the seven tasks, printed beside the paper's rows " +
                "(Mamba-2-MLP and Mamba-2-MLP-Attention have no public checkpoint: paper only) and the lm-eval 0.4.9.1 reproduction",
        },
        device: { type: "string", describe: "cpu | cuda (default cpu)" },
        batch_size: { type: "string", describe: "as for run: N or auto (results do not depend on it)" },
        output_path: { type: "string", default: "results/table3", coerce: nonEmptyFlag("--output_path"), describe: "results go to <output_path>/<model>/; the table to <output_path>/table3.{md,csv,svg}" },
        use_cache: { type: "string", coerce: nonEmptyFlag("--use_cache"), describe: "folder for one request cache per model (<model>.db); an interrupted run resumes from it" },
        log_samples: { type: "boolean", default: false, describe: "also write per-document samples (for compare)" },
        data_dir: { type: "string", describe: "folder with the tasks' original files (layout: <dir>/<task>/<file>, as fixtures/tasks); default: the HF datasets" },
        threads: { type: "string", coerce: integerFlag("--threads", 1, 256), describe: "CPU threads (default: all cores)" },
        dtype: { type: "string", describe: "compute dtype: float32 | bfloat16" },
        tokenizer: { type: "string", describe: "tokenizer.json file, folder or hub id (default EleutherAI/gpt-neox-20b)" },
        state_budget_gb: {
            type: "string", coerce: numberFlag("--state_budget_gb", 0, MAX_STATE_BUDGET_GB, true),
            describe: "GiB of saved prefix states kept at once, as run's --model_args state_budget_gb (default 1 on the CPU; 12 on a GPU, more on a large one); " +
                "results do not depend on it, except in the last bits for Mamba-2 with bf16 weights on a GPU",
        },
        reference: {
            type: "string", choices: REFERENCE_CHOICES,
            describe: "compare with the papers, the public lm-eval 0.4.9.1 reproduction of these checkpoints, or both " +
                "(default: paper for mamba1; both for mamba2 and --paper)",
        },
    });
}

export const table3Command: CommandModule<object, Table3Args> = {
    command: "table3",
    describe: "Evaluate every published Mamba (or Mamba-2) size on its paper's zero-shot tasks and write the table (md, csv, svg)",
    builder: (y) => table3Builder(y) as unknown as Argv<Table3Args>,
    handler: async (args) => {
        await table3Main(args, processIO);
    },
};

/** Runs the workflow; throws a MambaEvalError (exit 1) when some model failed. */
export async function table3Main(args: Table3Args, io: CliIO): Promise<void> {
    validateEnvironment();
    if (args.family !== "mamba1" && args.family !== "mamba2") throw new UsageError(`--family ${args.family}: expected mamba1 or mamba2`);
    if (args.reference !== undefined && !(REFERENCE_CHOICES as readonly string[]).includes(args.reference)) {
        throw new UsageError(`--reference ${args.reference}: expected ${REFERENCE_CHOICES.join(", ")}`);
    }
    if (args.paper !== undefined && !(TABLE3_PRESET_NAMES as readonly string[]).includes(args.paper)) {
        throw new UsageError(`--paper ${args.paper}: expected ${TABLE3_PRESET_NAMES.join(", ")}`);
    }
    // The flags every model would otherwise refuse one by one, after opening it: checked once, up front.
    if (args.dtype !== undefined) parseDtype(args.dtype, "--dtype");
    if (args.device !== undefined) parseDevice(args.device, "--device");
    tokensPerCall(args.batch_size);
    if (args.tokenizer !== undefined) checkTokenizerSpec(args.tokenizer);
    if (args.data_dir !== undefined) requireFolderFlag("--data_dir", args.data_dir);
    checkOutputFolder(args.output_path, args.output_path);  // the table's folder, and every model's results folder's parent
    if (args.use_cache !== undefined) {
        let existing;
        try {
            existing = statSync(args.use_cache, { throwIfNoEntry: false });
        } catch (e) {
            const code = (e as NodeJS.ErrnoException).code;
            throw new UsageError(`--use_cache ${args.use_cache}: ${code === "ENOTDIR" ? "a part of the path is not a folder" : `cannot be read (${code ?? String(e)})`}`);
        }
        if (existing && !existing.isDirectory()) throw new UsageError(`--use_cache ${args.use_cache}: is ${describeFileKind(existing)}; table3 expects a folder (one cache file per model)`);
        try {
            makeDirs(args.use_cache);
        } catch (e) {
            throw new UsageError(`--use_cache ${args.use_cache}: cannot create the folder (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
        }
    }
    const interrupts = handleInterrupts(io);
    const abort = { signal: interrupts.signal };
    try {
        const outcome = await runTable3(
            {
                models: args.models?.split(","),
                family: args.family as Table3Family,
                device: args.device,
                batchSize: args.batch_size,
                outputPath: args.output_path,
                useCache: args.use_cache,
                reference: args.reference as ReferenceChoice | undefined,
                paper: args.paper as Table3PresetName | undefined,
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
        interrupts.dispose();
    }
}

/**
 * Each model evaluated as `run` evaluates it (simpleEvaluate, progress on stderr), its lm-eval table printed to
 * stdout. `openAhead` as in simpleEvaluator (default: on a GPU only).
 */
export function table3Evaluator(
    io: CliIO,
    args: Pick<Table3Args, "log_samples" | "data_dir" | "threads" | "dtype" | "tokenizer" | "state_budget_gb">,
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
            stateBudgetGb: args.state_budget_gb,
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
