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
import { existsSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { makeDirs } from "../fsDirs.js";
import path from "node:path";
import type { Argv, CommandModule } from "yargs";
import { MambaEvalError, TaskError, UsageError } from "../errors.js";
import { CachingLM, ResultCache } from "../harness/cache.js";
import { evaluate, planTasks, pooledRequests, type EvaluateOptions, type TaskEvaluation } from "../harness/evaluate.js";
import type { LM } from "../harness/lm.js";
import { ProgressReporter } from "../harness/progress.js";
import { pyRepr, type JsonLike } from "../harness/pyjson.js";
import { fileDateId, outputLocation, sanitizeModelName, writeResultsFile } from "../harness/results.js";
import { samplesFileName, writeSamplesFile } from "../harness/samples.js";
import { makeTable, tableHeaderLine } from "../harness/table.js";
import { resolveTaskNames } from "../tasks/registry.js";
import type { TaskSpec } from "../tasks/types.js";
import { BUNDLED_MODEL_DIR, BUNDLED_TASKS_DIR, BUNDLED_TOKENIZER, displayPath, TABLE3_TASKS } from "./bundled.js";
import { addOptions, MODEL_OPTIONS } from "./commonOptions.js";
import { writeErrorMessage, type CliIO } from "./io.js";
import { parseModelArgs, resolveModelSpec, type ModelSpec } from "./modelArgs.js";
import { openModel, type OpenedModel } from "./openModel.js";
import { parseSeeds, runModelName, runResults } from "./runResults.js";
import { startWeightsChecksum } from "../model/checksum.js";
import { RunMemo } from "../harness/runMemo.js";
import { DEFAULT_MAX_LENGTH } from "../harness/encodePair.js";
import { encodeTokenRequests, tokenRequestsKey } from "../model/MambaLM.js";
import type { TextTokenizer } from "../model/tokenizer.js";

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
        tasks: { type: "string", describe: `comma-separated task names or tags (default: ${ALL_TASKS})` },
        batch_size: { type: "string", default: "auto", describe: "N or auto: tokens per native call = N×256 (auto: 8192 on the CPU, 32768 on a GPU); results do not depend on it" },
        limit: { type: "string", coerce: parseLimit, describe: "first N docs per task, or a fraction < 1 (for testing only)" },
        output_path: { type: "string", describe: "folder (or .json file) for the results file" },
        log_samples: { type: "boolean", default: false, describe: "also write per-document samples JSONL (needs --output_path)" },
        seed: { type: "string", default: "0,1234,1234,1234", describe: "recorded for lm-eval compatibility; zero-shot scores do not use it" },
        use_cache: { type: "string", describe: "SQLite file of finished requests; a rerun resumes from it" },
        write_out: { type: "boolean", default: false, describe: "print the first document's prompt and target per task" },
        num_fewshot: { type: "number", describe: "only 0 is supported (the Table-3 tasks are zero-shot)" },
        data_dir: { type: "string", describe: "folder with the tasks' original files (layout of ../shared/data); default: the HF datasets (the bundled samples when no --model)" },
    });
}

/** --batch_size → tokens per native call (undefined: the default). */
export function tokensPerCall(batchSize: string | undefined): number | undefined {
    if (batchSize === undefined || batchSize === "auto" || /^auto:\d+$/.test(batchSize)) return undefined;
    if (!/^\d+$/.test(batchSize) || Number(batchSize) < 1) throw new UsageError(`--batch_size ${batchSize}: expected a positive integer, auto or auto:N`);
    return Math.min(65536, Math.max(256, Number(batchSize) * 256));
}

/** A run's flags with the defaults applied, and what was defaulted (for the stderr note). */
interface ResolvedRun {
    spec: ModelSpec;
    tasks: TaskSpec[];
    dataDir: string | undefined;
    notes: string[];
}

function resolveRun(args: RunArgs): ResolvedRun {
    const notes: string[] = [];
    const bundledModel = args.model === undefined;
    if (bundledModel && args.model_args !== undefined) throw new UsageError("--model_args needs --model (e.g. --model mamba_ssm --model_args pretrained=state-spaces/mamba-130m)");
    if (bundledModel) {
        notes.push(`no --model: the bundled tiny checkpoint ${displayPath(BUNDLED_MODEL_DIR)} (random weights, GPT-NeoX-20B vocabulary)`);
        if (args.tokenizer === undefined) notes.push(`the bundled GPT-NeoX-20B tokenizer ${displayPath(BUNDLED_TOKENIZER)}`);
        if (args.data_dir === undefined) notes.push(`the bundled sample documents ${displayPath(BUNDLED_TASKS_DIR)} (invented, a few per task)`);
    }
    if (args.tasks === undefined) notes.push(`no --tasks: the Table-3 tasks ${ALL_TASKS}`);
    if (args.num_fewshot !== undefined && args.num_fewshot !== 0) throw new UsageError(`--num_fewshot ${args.num_fewshot}: only 0 is supported (the tasks are zero-shot)`);
    if (args.log_samples && !args.output_path) throw new UsageError("--log_samples needs --output_path");
    let tasks: TaskSpec[];
    try {
        tasks = resolveTaskNames((args.tasks ?? ALL_TASKS).split(","));
    } catch (e) {
        throw e instanceof TaskError ? new UsageError(`--tasks: ${e.message}`) : e;
    }
    if (tasks.length === 0) throw new UsageError("--tasks: no task named");
    const dataDir = args.data_dir ?? (bundledModel ? BUNDLED_TASKS_DIR : undefined);
    if (dataDir !== undefined && !existsSync(dataDir)) throw new UsageError(`--data_dir ${dataDir}: no such folder`);
    const spec = resolveModelSpec({
        model: args.model ?? displayPath(BUNDLED_MODEL_DIR),
        modelArgs: args.model_args,
        dtype: args.dtype,
        device: args.device,
        tokenizer: args.tokenizer ?? (bundledModel ? BUNDLED_TOKENIZER : undefined),
    });
    return { spec, tasks, dataDir, notes };
}

/**
 * The model a run evaluates, opened as runMain opens it (table3 uses this to open the next model early). With a
 * memo, the run's inputs are prepared in it while the weights load (primeInputs).
 */
export function openRunModel(args: RunArgs, memo?: RunMemo): Promise<OpenedModel> {
    const { spec, tasks, dataDir } = resolveRun(args);
    const maxTokensPerCall = tokensPerCall(args.batch_size);
    return openModel(spec, {
        threads: args.threads,
        needTokenizer: true,
        lm: {
            ...(maxTokensPerCall ? { maxTokensPerCall } : {}),
            ...(spec.stateBudgetBytes ? { stateBudgetBytes: spec.stateBudgetBytes } : {}),
            ...(memo ? { memo } : {}),
        },
        ...(memo ? { onTokenizer: (tokenizer: TextTokenizer) => primeInputs(memo, tokenizer, spec.maxLength ?? DEFAULT_MAX_LENGTH, { tasks, dataDir, limit: args.limit }) } : {}),
    });
}

/**
 * Reads the documents, builds and tokenises the requests and builds their prefix tree into `memo`, in the
 * background, exactly as the evaluation will ask for them (evaluate → MambaLM.loglikelihood finds them there), so
 * this work overlaps the weight upload. A failure here is left for the evaluation to meet and report.
 */
function primeInputs(memo: RunMemo, tokenizer: TextTokenizer, maxLength: number, options: Pick<EvaluateOptions, "tasks" | "dataDir" | "limit">): void {
    const key = tokenRequestsKey(tokenizer, maxLength);
    if (key === undefined) return;
    void (async () => {
        const requests = pooledRequests(await planTasks({ ...options, memo }));
        const tokens = await memo.tokenRequests(key, requests, () => encodeTokenRequests(tokenizer, requests, maxLength));
        memo.prefixTree(tokens, true);
    })().catch(() => undefined);
}

/** How table3 runs one model of several: shared inputs, and its model opened ahead while the one before ran. */
export interface RunContext {
    memo?: RunMemo;
    /** openRunModel(args, memo) started earlier; runMain takes it over (and disposes of it). */
    opened?: Promise<OpenedModel>;
    /** Called once this run's model is open (table3 then starts opening the next one). */
    onOpened?: () => void;
    /** Called with the results file this run wrote (with --output_path). */
    onResultsFile?: (file: string) => void;
}

/** Runs the command; returns the exit status. */
export async function runMain(args: RunArgs, io: CliIO, context: RunContext = {}): Promise<number> {
    const memo = context.memo ?? new RunMemo();  // inputs prepared while the weights load
    let spec: ModelSpec, tasks: TaskSpec[], dataDir: string | undefined, seeds: ReturnType<typeof parseSeeds>;
    const startTime = Date.now() / 1000;
    const dateId = fileDateId(new Date());
    try {
        let notes: string[];
        ({ spec, tasks, dataDir, notes } = resolveRun(args));
        seeds = parseSeeds(args.seed ?? "0,1234,1234,1234");
        if (notes.length > 0) io.err(`mamba-eval: using ${notes.join("; ")}\n`);
        if (args.output_path) await checkOutputFolder(args.output_path, outputLocation(args.output_path, sanitizeModelName(runModelName(spec)), dateId).dir);
    } catch (error) {
        void context.opened?.then((m) => m.dispose(), () => undefined);  // a model opened ahead for this run
        throw error;
    }
    const model = await (context.opened ?? openRunModel(args, memo));
    context.onOpened?.();
    const checksum = startWeightsChecksum(model.checkpoint);  // hashed on a worker while the evaluation runs
    let cache: ResultCache | undefined;
    try {
        cache = args.use_cache ? ResultCache.open(args.use_cache, { fingerprint: model.checkpoint.fingerprint, dtype: spec.dtype }) : undefined;
        const onScored = () => {
            const stats = model.lm.lastStats;
            if (stats) io.err(`token steps: ${stats.tokenSteps} (lm-eval would run ${stats.unsharedTokenSteps}), ${stats.calls} native calls\n`);
        };
        const evaluated = await evaluateWithSignals(model, cache, tasks, dataDir, args, io, memo, onScored);
        const tokenizer = model.tokenizer!;
        const info = model.backend.info();
        const results = runResults(evaluated, {
            spec,
            modelArgs: parseModelArgs(spec.modelArgs),
            checkpoint: model.checkpoint,
            weightsSha256: await checksum,
            backend: { device: info.device, isa: info.isa },
            threads: model.threads,
            tokenizer: { eosTokenId: tokenizer.eosTokenId, eosToken: await tokenizer.decode([tokenizer.eosTokenId]), source: tokenizer.source },
            batchSize: args.batch_size ?? "auto",
            useCache: args.use_cache ?? null,
            limit: args.limit ?? null,
            seeds,
            dataDir: dataDir === undefined ? null : path.resolve(dataDir),
            startTime,
            totalSeconds: Date.now() / 1000 - startTime,
        });
        if (args.output_path) {
            const resultsFile = await writeOutputs(args.output_path, results, evaluated, dateId, io);
            context.onResultsFile?.(resultsFile);
        }
        io.out(`${tableHeaderLine({
            model: spec.modelType,
            modelArgs: pyRepr(parseModelArgs(spec.modelArgs) as Record<string, JsonLike>),
            genKwargs: "{}",
            limit: args.limit ?? null,
            numFewshot: args.num_fewshot ?? null,
            batchSize: args.batch_size ?? "auto",
            batchSizes: [],
        })}\n`);
        io.out(`${makeTable(results)}\n`);
        return 0;
    } finally {
        cache?.close();
        await model.dispose();
    }
}

/** evaluate() with progress on stderr and SIGINT/SIGTERM turned into a clean stop. */
async function evaluateWithSignals(
    model: OpenedModel,
    cache: ResultCache | undefined,
    tasks: readonly TaskSpec[],
    dataDir: string | undefined,
    args: RunArgs,
    io: CliIO,
    memo: RunMemo | undefined,
    onScored: () => void,
): Promise<TaskEvaluation[]> {
    const lm: LM = cache ? new CachingLM(model.lm, cache) : model.lm;
    const abort = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => abort.abort(new MambaEvalError(`interrupted by ${signal}`));
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    const progress = new ProgressReporter("loglikelihood", { write: (t) => io.err(t), isTTY: io.errIsTTY });
    try {
        const evaluated = await evaluate(lm, {
            tasks,
            limit: args.limit,
            dataDir,
            logSamples: Boolean(args.log_samples),
            writeOut: args.write_out ? (t: string) => io.err(t) : undefined,
            lm: { onProgress: progress.update, signal: abort.signal },
            memo,
            onScored: () => {
                progress.finish();
                onScored();
            },
        });
        return evaluated;  // the progress line was finished at onScored, which every successful evaluate calls
    } catch (e) {
        progress.finish();
        if (abort.signal.aborted) {
            const saved = cache ? `; ${cache.size()} finished requests are saved in ${cache.file}, run the same command to resume` : "";
            throw new MambaEvalError(`${(abort.signal.reason as Error).message}${saved}`);
        }
        throw e;
    } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
    }
}

/** --limit as lm-eval reads it: a document count (≥ 1) or a fraction in (0, 1); anything else is refused as typed. */
export function parseLimit(text: string | number): number {
    const value = typeof text === "number" ? text : /^\s*[0-9]*\.?[0-9]+(e[-+]?[0-9]+)?\s*$/i.test(text) ? Number(text) : NaN;
    if (!(value > 0)) throw new UsageError(`--limit ${text}: expected a count >= 1 or a fraction in (0, 1)`);
    return value;
}

/**
 * Creates the folder the results will go to and proves it writable (a probe file), before any work is done, so a
 * bad --output_path fails in a second rather than after the evaluation.
 */
async function checkOutputFolder(outputPath: string, dir: string): Promise<void> {
    const probe = path.join(dir, `.mamba-eval-write-test-${process.pid}`);
    try {
        makeDirs(dir);
        await writeFile(probe, "");
        await rm(probe, { force: true });
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new UsageError(`--output_path ${outputPath}: cannot create or write the folder ${dir} (${code ?? String(e)})`);
    }
}

/** The results file, then (with --log_samples) one samples file per task, named with one date id; returns the results file. */
async function writeOutputs(outputPath: string, results: Record<string, JsonLike>, evaluated: readonly TaskEvaluation[], dateId: string, io: CliIO): Promise<string> {
    const modelNameSanitized = sanitizeModelName(String(results["model_name"]));
    const { dir, resultsFile } = outputLocation(outputPath, modelNameSanitized, dateId);
    await withWriteError(resultsFile, () => writeResultsFile(results, { outputPath, modelNameSanitized, dateId }));
    io.err(`wrote ${resultsFile}\n`);
    for (const t of evaluated) {
        if (!t.samples) continue;
        const samplesFile = path.join(dir, samplesFileName(t.task.name, dateId));
        await withWriteError(samplesFile, () => writeSamplesFile(samplesFile, t.samples!));
        io.err(`wrote ${samplesFile}\n`);
    }
    return resultsFile;
}

/** Runs a file write; a filesystem error (a full disk, a read-only mount) becomes one line naming the file. */
async function withWriteError<T>(file: string, write: () => Promise<T>): Promise<T> {
    try {
        return await write();
    } catch (e) {
        throw new MambaEvalError(writeErrorMessage(file, e));
    }
}

export function runCommand(io: CliIO, setCode: (code: number) => void): CommandModule<object, RunArgs> {
    return {
        command: ["run", "$0"],
        describe: "Evaluate a model on tasks (the default command)",
        builder: (y) => runBuilder(y) as unknown as Argv<RunArgs>,
        handler: async (args) => setCode(await runMain(args, io)),
    };
}
