/**
 * `mamba-eval [run] --model M --tasks a,b …`: lm-eval's run. Loads the model, evaluates the tasks (evaluate.ts:
 * all loglikelihood requests in one pooled call), prints lm-eval's header line and table, and with --output_path
 * writes the results JSON (and with --log_samples one samples JSONL per task) where lm-eval main writes them.
 *
 * Defaults (each announced on stderr): no --model → the bundled tiny checkpoint (fixtures/neox-mamba1) with the
 * bundled GPT-NeoX-20B tokenizer and the bundled sample documents (fixtures/tasks), fully offline; no --tasks →
 * the six Table-3 tasks. SIGINT/SIGTERM stop the run cleanly; with --use_cache the finished requests are kept
 * for a resumed run.
 */
import type { Argv, CommandModule } from "yargs";
import { UsageError } from "../errors.js";
import { ProgressReporter } from "../evaluator/progress.js";
import { checkEvaluateOptions, DEFAULT_SEED, simpleEvaluate, type SimpleEvaluateOptions } from "../evaluator/simpleEvaluate.js";
import { BUNDLED_MODEL_DIR, BUNDLED_TASKS_DIR, BUNDLED_TOKENIZER, displayPath, isBundledCheckpoint, TABLE3_TASKS } from "../io/bundled.js";
import { DEFAULT_TOKENS_PER_CALL } from "../lm/defaults.js";
import { addOptions, MODEL_OPTIONS } from "./commonOptions.js";
import { integerFlag, nonEmptyFlag, requireFolderFlag } from "./flags.js";
import { handleInterrupts } from "./interrupt.js";
import { validateEnvironment } from "./environment.js";
import type { CliIO } from "./io.js";

/** The run command's flags (yargs names). */
export interface RunArgs {
    model?: string | undefined;
    model_args?: string | undefined;
    tokenizer?: string | undefined;
    dtype?: string | undefined;
    device?: string | undefined;
    threads?: number | undefined;
    tasks?: string | undefined;
    batch_size?: string | undefined;
    limit?: number | undefined;
    output_path?: string | undefined;
    log_samples?: boolean | undefined;
    seed?: string | undefined;
    use_cache?: string | undefined;
    write_out?: boolean | undefined;
    num_fewshot?: number | undefined;
    data_dir?: string | undefined;
    verbose?: boolean | undefined;
}

/** The bundled checkpoint and sample documents the bare run uses (see bundled.ts). */
export const DEFAULT_MODEL_DIR = BUNDLED_MODEL_DIR;
export const DEFAULT_DATA_DIR = BUNDLED_TASKS_DIR;

/** The Table-3 tasks as a --tasks value. */
export const ALL_TASKS = TABLE3_TASKS.join(",");

export function runBuilder<T>(y: Argv<T>): Argv<T> {
    return addOptions(y, {
        ...MODEL_OPTIONS,
        tasks: { type: "string", coerce: nonEmptyFlag("--tasks"), describe: `comma-separated task names or tags (default: ${ALL_TASKS})` },
        batch_size: { type: "string", default: "auto", describe: `N or auto: tokens per native call = N×256 (auto: ${DEFAULT_TOKENS_PER_CALL.cpu} on the CPU, ${DEFAULT_TOKENS_PER_CALL.cuda} on a GPU); results do not depend on it` },
        limit: { type: "string", coerce: parseLimit, describe: "first N docs per task, or a fraction < 1 (for testing only)" },
        output_path: { type: "string", coerce: nonEmptyFlag("--output_path"), describe: "folder (or .json file) for the results file" },
        log_samples: { type: "boolean", default: false, describe: "also write per-document samples JSONL (needs --output_path)" },
        seed: { type: "string", default: DEFAULT_SEED, describe: "recorded for lm-eval compatibility; zero-shot scores do not use it" },
        use_cache: { type: "string", coerce: nonEmptyFlag("--use_cache"), describe: "SQLite file of finished requests; a rerun resumes from it" },
        write_out: { type: "boolean", default: false, describe: "print the first document's prompt and target per task" },
        num_fewshot: { type: "string", coerce: integerFlag("--num_fewshot", 0), describe: "only 0 is supported (the Table-3 tasks are zero-shot)" },
        data_dir: { type: "string", coerce: nonEmptyFlag("--data_dir"), describe: "folder with the tasks' original files (layout: <dir>/<task>/<file>, as fixtures/tasks); default: the HF datasets (the bundled samples when no --model)" },
    });
}

/** A run's flags with the bundled defaults applied, and what was defaulted (for the stderr note). */
export function runOptions(args: RunArgs): { options: SimpleEvaluateOptions; notes: string[] } {
    const notes: string[] = [];
    if (args.model === undefined && args.model_args !== undefined) throw new UsageError("--model_args needs --model (e.g. --model mamba_ssm --model_args pretrained=state-spaces/mamba-130m)");
    // No --model, or one of the checkpoints the package ships: run offline on the bundled tokenizer and samples.
    const bundledModel = args.model === undefined || (args.model_args === undefined && isBundledCheckpoint(args.model));
    if (bundledModel) {
        notes.push(args.model === undefined
            ? `no --model: the bundled tiny checkpoint ${displayPath(BUNDLED_MODEL_DIR)} (random weights, GPT-NeoX-20B vocabulary)`
            : `the bundled checkpoint ${displayPath(args.model)} (random weights)`);
        if (args.tokenizer === undefined) notes.push(`the bundled GPT-NeoX-20B tokenizer ${displayPath(BUNDLED_TOKENIZER)}`);
        if (args.data_dir === undefined) notes.push(`the bundled sample documents ${displayPath(BUNDLED_TASKS_DIR)} (invented, a few per task)`);
    }
    if (args.tasks === undefined) notes.push(`no --tasks: the Table-3 tasks ${ALL_TASKS}`);
    const dataDir = args.data_dir ?? (bundledModel ? BUNDLED_TASKS_DIR : undefined);
    if (dataDir !== undefined) requireFolderFlag("--data_dir", dataDir);
    const options: SimpleEvaluateOptions = {
        model: args.model ?? displayPath(BUNDLED_MODEL_DIR),
        modelArgs: args.model_args,
        tasks: (args.tasks ?? ALL_TASKS).split(","),
        dtype: args.dtype as SimpleEvaluateOptions["dtype"],
        device: args.device as SimpleEvaluateOptions["device"],
        tokenizer: args.tokenizer ?? (bundledModel ? BUNDLED_TOKENIZER : undefined),
        threads: args.threads,
        batchSize: args.batch_size,
        limit: args.limit,
        dataDir,
        useCache: args.use_cache,
        outputPath: args.output_path,
        logSamples: args.log_samples,
        seed: args.seed,
        numFewshot: args.num_fewshot,
    };
    return { options, notes };
}

/** Runs the command: lm-eval's run through simpleEvaluate, progress on stderr, SIGINT/SIGTERM a clean stop. */
export async function runMain(args: RunArgs, io: CliIO): Promise<number> {
    validateEnvironment();
    const { options, notes } = runOptions(args);
    checkEvaluateOptions(options);  // a bad flag is its own one line, before the notes on defaults
    const interrupts = handleInterrupts(io);  // set before anything is printed: a signal from then on is ours
    if (notes.length > 0) io.err(`mamba-eval: using ${notes.join("; ")}\n`);
    const progress = new ProgressReporter("loglikelihood", { write: (t) => io.err(t), isTTY: io.errIsTTY });
    try {
        const run = await simpleEvaluate({
            ...options,
            writeOut: args.write_out ? (t: string) => io.err(t) : undefined,
            onProgress: progress.update,
            onScored: () => progress.finish(),
            log: (line) => io.err(`${line}\n`),
            signal: interrupts.signal,
        });
        io.out(`${run.header}\n`);
        io.out(`${run.table}\n`);
        return 0;
    } finally {
        progress.finish();
        interrupts.dispose();
    }
}

/** --limit as lm-eval reads it: a document count (≥ 1) or a fraction in (0, 1); anything else is refused as typed. */
export function parseLimit(text: string | number): number {
    const value = typeof text === "number" ? text : /^\s*[0-9]*\.?[0-9]+(e[-+]?[0-9]+)?\s*$/i.test(text) ? Number(text) : NaN;
    if (!(value > 0 && Number.isFinite(value))) throw new UsageError(`--limit ${text}: expected a count >= 1 or a fraction in (0, 1)`);
    return value;
}

export function runCommand(io: CliIO, setCode: (code: number) => void): CommandModule<object, RunArgs> {
    return {
        command: ["run", "$0"],
        describe: "Evaluate a model on tasks (the default command)",
        builder: (y) => runBuilder(y) as unknown as Argv<RunArgs>,
        handler: async (args) => setCode(await runMain(args, io)),
    };
}
