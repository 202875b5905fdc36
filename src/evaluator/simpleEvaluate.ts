/**
 * lm-eval's simple_evaluate: model + tasks → scores, and with an output path the same files lm-eval writes.
 *
 *   open the model (checkpoint, tokenizer, backend, LM; the documents are read and tokenised while the weights load)
 *   → evaluate (evaluate.ts: every task's requests in one pooled loglikelihood call, per-document metrics,
 *     aggregation and stderr) → the results object (lm-eval main's layout plus a `mamba_eval` provenance block)
 *   → results_<date>.json and samples_<task>_<date>.jsonl under outputPath/<model>/ (when asked; runFiles.ts: never
 *     over an existing file).
 *
 * The CLI's `run` and the `table3` workflow call this; a program calls it the same way (src/index.ts).
 * With `useCache`, finished requests are kept in an SQLite file as they finish, so an aborted run (`signal`)
 * resumes where it stopped; the file answers only for this run's configuration (cache.ts). `signal` is honoured in
 * every phase: by the LM call, between the metrics of documents, and before anything is written.
 */
import path from "node:path";
import { MambaEvalError, TaskError, UsageError } from "../errors.js";
import { probeWritableFolder } from "../io/atomicWrite.js";
import { folderExists, removeIfEmpty } from "../io/dirs.js";
import type { JsonLike } from "../io/pyjson.js";
import { pyJsonDumps, pyRepr, toPlainJson, type PlainJson } from "../io/pyjson.js";
import { writeErrorMessage } from "../io/writeErrorMessage.js";
import { checkpointWeightNote } from "../model/checkpointFiles.js";
import { startWeightsChecksum } from "../model/checksum.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import { DEFAULT_MAX_LENGTH } from "../lm/defaults.js";
import type { LM, LMProgress } from "../lm/LM.js";
import { encodeTokenRequests, tokenRequestsKey } from "../lm/MambaLM.js";
import { openModel, type OpenedModel } from "../lm/openModel.js";
import { resolveTaskNames } from "../tasks/registry.js";
import type { TaskSpec } from "../tasks/types.js";
import { CachingLM, ResultCache } from "./cache.js";
import { evaluate, planTasks, pooledRequests, type EvaluateOptions, type TaskEvaluation } from "./evaluate.js";
import { openOptions, parseModelArgs, resolveModelSpec, type ModelSpec } from "./modelArgs.js";
import { toolVersion } from "./provenance.js";
import { fileDateIdFromMicros, nowMicros, outputLocation, sanitizeModelName } from "./results.js";
import { writeRunFiles, type WrittenRunFiles } from "./runFiles.js";
import { parseSeeds, runModelName, runResults } from "./runResults.js";
import { RunMemo } from "./runMemo.js";
import { samplesJsonl } from "./samples.js";
import { makeTable, tableHeaderLine } from "./table.js";

/** What to evaluate, and how: lm-eval's simple_evaluate arguments (camelCase) plus ours. */
export interface SimpleEvaluateOptions {
    /** "mamba_ssm" / "hf" / "mamba" (with `modelArgs` pretrained=…), or a checkpoint folder or hub id itself. */
    model: string;
    /** lm-eval's model_args string: "pretrained=…,dtype=…,max_length=…,tokenizer=…,state_budget_gb=…". */
    modelArgs?: string | undefined;
    /** Task names or tags ("ai2_arc"), or task specs. */
    tasks: readonly (string | TaskSpec)[];
    /** First N documents per task, or a fraction < 1 (testing only). */
    limit?: number | null | undefined;
    dtype?: "float32" | "bfloat16" | undefined;
    device?: "cpu" | "cuda" | undefined;
    /** tokenizer.json, a folder holding one, or a hub id. */
    tokenizer?: string | undefined;
    threads?: number | undefined;
    /** lm-eval's batch_size: "auto", "auto:N" or N (N×256 tokens per native call). Results never depend on it. */
    batchSize?: string | number | undefined;
    /** A folder in the tasks' original-files layout; default: the Hugging Face datasets through the hub cache. */
    dataDir?: string | undefined;
    /** SQLite file of finished requests (lm-eval's --use_cache). */
    useCache?: string | undefined;
    /** Where lm-eval writes results: a folder (results go to <outputPath>/<model>/results_<date>.json) or a .json file. */
    outputPath?: string | undefined;
    /** Also build (and with outputPath write) the per-document samples. */
    logSamples?: boolean | undefined;
    /** lm-eval's --seed (recorded; zero-shot scores do not use it). Default "0,1234,1234,1234". */
    seed?: string | undefined;
    /** Only 0: the tasks are zero-shot. */
    numFewshot?: number | null | undefined;
    /** Iterations of lm-eval's perplexity bootstrap (default 100000). */
    bootstrapIters?: number | undefined;
    /** Called with each task's first prompt and target (--write_out). */
    writeOut?: ((text: string) => void) | undefined;
    /** Progress of the pooled LM call. */
    onProgress?: ((progress: LMProgress) => void) | undefined;
    /** Called once every request has an answer, before metrics and files. */
    onScored?: (() => void) | undefined;
    /** Notes for the user (files written, token steps), one line each without the newline. */
    log?: ((line: string) => void) | undefined;
    /** Stops the run (a resumable error is thrown; with useCache the finished requests are kept). */
    signal?: AbortSignal | undefined;
    /** Inputs shared with other evaluations in this process (table3): documents, token requests, prefix tree. */
    memo?: RunMemo | undefined;
    /** The model, opened ahead by openForEvaluation with the same options; taken over (and disposed of) here. */
    opened?: Promise<OpenedModel> | undefined;
    /** Called once the model is open (table3 then opens the next one). */
    onOpened?: (() => void) | undefined;
}

export interface SimpleEvaluateResult {
    /** lm-eval's results object, what results_<date>.json holds, as plain values (results.results.piqa["acc,none"]). */
    results: Record<string, PlainJson>;
    /** Per task: documents, requests, answers, per-document metrics, aggregate, samples. */
    evaluations: TaskEvaluation[];
    /** lm-eval's printed header line and markdown table. */
    header: string;
    table: string;
    /** The files written under outputPath (none without it). */
    resultsFile: string | undefined;
    samplesFiles: string[];
}

/** The options resolved: model specification, tasks, seeds. */
interface ResolvedEvaluation {
    spec: ModelSpec;
    tasks: TaskSpec[];
    seeds: ReturnType<typeof parseSeeds>;
    maxTokensPerCall: number | undefined;
}

function resolve(options: SimpleEvaluateOptions): ResolvedEvaluation {
    if (options.numFewshot !== undefined && options.numFewshot !== null && options.numFewshot !== 0) {
        throw new UsageError(`--num_fewshot ${options.numFewshot}: only 0 is supported (the tasks are zero-shot)`);
    }
    if (options.logSamples && options.outputPath === undefined) throw new UsageError("--log_samples needs --output_path");
    let tasks: TaskSpec[];
    try {
        // Names (and tags) in the order given, resolved together so a repeated task is run once.
        tasks = options.tasks.every((t) => typeof t === "string")
            ? resolveTaskNames(options.tasks as readonly string[])
            : options.tasks.flatMap((t) => (typeof t === "string" ? resolveTaskNames([t]) : [t]));
    } catch (e) {
        throw e instanceof TaskError ? new UsageError(`--tasks: ${e.message}`) : e;
    }
    if (tasks.length === 0) throw new UsageError("--tasks: no task named");
    const spec = resolveModelSpec({ model: options.model, modelArgs: options.modelArgs, dtype: options.dtype, device: options.device, tokenizer: options.tokenizer });
    return { spec, tasks, seeds: parseSeeds(options.seed ?? DEFAULT_SEED), maxTokensPerCall: tokensPerCall(options.batchSize) };
}

/** Checks the options (tasks, model arguments, seeds, batch size) without opening anything; throws UsageError. */
export function checkEvaluateOptions(options: SimpleEvaluateOptions): void {
    resolve(options);
}

/** lm-eval's default --seed. */
export const DEFAULT_SEED = "0,1234,1234,1234";

/** lm-eval's batch_size → tokens per native call (undefined: the device's default). */
export function tokensPerCall(batchSize: string | number | undefined): number | undefined {
    const text = batchSize === undefined ? undefined : String(batchSize);
    if (text === undefined || text === "auto" || /^auto:\d+$/.test(text)) return undefined;
    if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`--batch_size ${text}: expected a positive integer, auto or auto:N`);
    return Math.min(65536, Math.max(256, Number(text) * 256));
}

/**
 * Opens the model an evaluation with these options will use, and (with a memo) prepares its inputs in the memo
 * while the weights load. simpleEvaluate calls it; table3 calls it early for the next model and passes the
 * promise as `opened`.
 */
export function openForEvaluation(options: SimpleEvaluateOptions, memo?: RunMemo): Promise<OpenedModel> {
    const { spec, tasks, maxTokensPerCall } = resolve(options);
    return openModel(openOptions(spec, {
        threads: options.threads,
        ...(options.signal ? { hub: { signal: options.signal } } : {}),
        lm: {
            ...(maxTokensPerCall ? { maxTokensPerCall } : {}),
            ...(memo ? { memo } : {}),
        },
        ...(memo ? { onTokenizer: (tokenizer: TextTokenizer) => primeInputs(memo, tokenizer, spec.maxLength ?? DEFAULT_MAX_LENGTH, { tasks, dataDir: options.dataDir, limit: options.limit, ...(options.signal ? { hub: { signal: options.signal } } : {}) }) } : {}),
    }));
}

/**
 * Reads the documents, builds and tokenises the requests and builds their prefix tree into `memo`, in the
 * background, exactly as the evaluation will ask for them (evaluate → MambaLM.loglikelihood finds them there), so
 * this work overlaps the weight upload. A failure here is left for the evaluation to meet and report.
 */
function primeInputs(memo: RunMemo, tokenizer: TextTokenizer, maxLength: number, options: Pick<EvaluateOptions, "tasks" | "dataDir" | "limit" | "hub">): void {
    const key = tokenRequestsKey(tokenizer, maxLength);
    if (key === undefined) return;
    void (async () => {
        const requests = pooledRequests(await planTasks({ ...options, memo }));
        const tokens = await memo.tokenRequests(key, requests, () => encodeTokenRequests(tokenizer, requests, maxLength));
        memo.prefixTree(tokens, true);
    })().catch(() => undefined);
}

/** Evaluates; see the module comment. */
export async function simpleEvaluate(options: SimpleEvaluateOptions): Promise<SimpleEvaluateResult> {
    const memo = options.memo ?? new RunMemo();
    const log = options.log ?? (() => undefined);
    const startMicros = nowMicros();
    const startTime = startMicros / 1e6;
    let resolved: ResolvedEvaluation;
    let createdFolder: string | undefined;  // the model's results folder, when this run made it (removed if left empty)
    try {
        resolved = resolve(options);
        if (options.outputPath !== undefined) {
            const dir = outputLocation(options.outputPath, sanitizeModelName(runModelName(resolved.spec)), "x").dir;
            if (!folderExists(dir)) createdFolder = dir;
            checkOutputFolder(options.outputPath, dir);
        }
    } catch (error) {
        void options.opened?.then((m) => m.dispose(), () => undefined);  // a model opened ahead for this run
        throw error;
    }
    const { spec, tasks, seeds } = resolved;
    const model = await (options.opened ?? openForEvaluation(options, memo));
    options.onOpened?.();
    const checksum = startWeightsChecksum(model.checkpoint);  // hashed on a worker while the evaluation runs
    let cache: ResultCache | undefined;
    try {
        const interrupted = () => interruption(options.signal, cache);
        if (options.signal?.aborted) throw interrupted();
        const note = await checkpointWeightNote(model.checkpoint);
        if (note !== undefined) log(`note: ${note}`);
        const info = model.backend.info();
        const tokenizer = model.tokenizer!;
        let lm: LM = model.lm;
        if (options.useCache) {
            cache = ResultCache.open(options.useCache, {
                fingerprint: model.checkpoint.fingerprint,
                dtype: spec.dtype,
                device: info.device,
                tokenizerSha256: tokenizer.contentSha256,
                eosTokenId: tokenizer.eosTokenId,
                maxLength: spec.maxLength,
                toolVersion: toolVersion(),
            });
            // The one configuration whose answers depend on the run's set of requests and its state budget
            // (docs/architecture.md).
            const requestSetMatters = info.device === "cuda" && spec.dtype === "bfloat16" && model.checkpoint.config.family === "mamba2";
            const bindRequestSet = requestSetMatters ? { stateBudgetBytes: model.lm.stateBudgetBytes() } : undefined;
            lm = new CachingLM(model.lm, cache, { weightsSha256: checksum, ...(bindRequestSet ? { bindRequestSet } : {}) });
        }
        let evaluations: TaskEvaluation[];
        try {
            evaluations = await evaluate(lm, {
                tasks,
                limit: options.limit,
                dataDir: options.dataDir,
                ...(options.signal ? { hub: { signal: options.signal } } : {}),
                logSamples: Boolean(options.logSamples),
                writeOut: options.writeOut,
                bootstrapIters: options.bootstrapIters,
                lm: { ...(options.onProgress ? { onProgress: options.onProgress } : {}), ...(options.signal ? { signal: options.signal } : {}) },
                memo,
                onScored: () => {
                    options.onScored?.();
                    const stats = model.lm.lastStats;
                    if (stats) log(`token steps: ${stats.tokenSteps} (lm-eval would run ${stats.unsharedTokenSteps}), ${stats.calls} native calls`);
                },
            });
        } catch (e) {
            if (options.signal?.aborted) throw interrupted();
            throw e;
        }
        // The metrics ran without a turn of the event loop: let a signal that came meanwhile be seen now.
        await turnOfEventLoop();
        if (options.signal?.aborted) throw interrupted();
        const batchSize = options.batchSize === undefined ? "auto" : String(options.batchSize);
        const results = runResults(evaluations, {
            spec,
            modelArgs: parseModelArgs(spec.modelArgs),
            checkpoint: model.checkpoint,
            weightsSha256: await checksum,
            backend: { device: info.device, isa: info.isa },
            threads: model.threads,
            tokenizer: { eosTokenId: tokenizer.eosTokenId, eosToken: await tokenizer.decode([tokenizer.eosTokenId]), source: tokenizer.source },
            batchSize,
            useCache: options.useCache ?? null,
            limit: options.limit ?? null,
            seeds,
            dataDir: options.dataDir === undefined ? null : path.resolve(options.dataDir),
            startTime,
            totalSeconds: Date.now() / 1000 - startTime,
        });
        await turnOfEventLoop();
        if (options.signal?.aborted) throw interrupted();
        const written = options.outputPath !== undefined ? writeOutputs(options.outputPath, results, evaluations, startMicros, log) : undefined;
        const header = tableHeaderLine({
            model: spec.modelType,
            modelArgs: pyRepr(parseModelArgs(spec.modelArgs) as Record<string, JsonLike>),
            genKwargs: "{}",
            limit: options.limit ?? null,
            numFewshot: options.numFewshot ?? null,
            batchSize,
            batchSizes: [],
        });
        return { results: toPlainJson(results) as Record<string, PlainJson>, evaluations, header, table: makeTable(results), resultsFile: written?.resultsFile, samplesFiles: written?.samplesFiles ?? [] };
    } catch (error) {
        if (createdFolder !== undefined) removeIfEmpty(createdFolder);  // an interrupted or failed run leaves no empty folder
        throw error;
    } finally {
        cache?.close();
        await model.dispose();
    }
}

/** Resolves after one turn of the event loop (signal handlers, timers and I/O callbacks get to run). */
function turnOfEventLoop(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
}

/** The error of a run stopped by `signal`: its reason, and where the finished requests are kept. */
function interruption(signal: AbortSignal | undefined, cache: ResultCache | undefined): MambaEvalError {
    const reason = signal?.reason instanceof Error ? signal.reason.message : "interrupted";
    const saved = cache ? `; ${cache.size()} finished requests are saved in ${cache.file}, run the same command to resume` : "";
    return new MambaEvalError(`${reason}${saved}`);
}

/**
 * Creates the folder the results will go to and proves it writable (a probe file created exclusively under an
 * unpredictable name, then removed), before any work is done, so a bad --output_path fails in a second rather than
 * after the evaluation.
 */
export function checkOutputFolder(outputPath: string, dir: string): void {
    try {
        probeWritableFolder(dir);
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new UsageError(`--output_path ${outputPath}: cannot create or write the folder ${dir} (${code ?? String(e)})`);
    }
}

/**
 * The results file, then (with samples) one samples file per task, under one date id that no existing file uses
 * (runFiles.ts); a failed write (a full disk, a read-only mount) becomes one line naming the file.
 */
function writeOutputs(outputPath: string, results: Record<string, JsonLike>, evaluations: readonly TaskEvaluation[], startMicros: number, log: (line: string) => void): { resultsFile: string; samplesFiles: string[] } {
    const modelNameSanitized = sanitizeModelName(String(results["model_name"]));
    const samples = evaluations.filter((t) => t.samples).map((t) => ({ task: t.task.name, jsonl: samplesJsonl(t.samples!) }));
    let written: WrittenRunFiles;
    try {
        written = writeRunFiles(outputPath, modelNameSanitized, startMicros, pyJsonDumps(results, 2), samples);
    } catch (e) {
        if (e instanceof MambaEvalError) throw e;
        throw new MambaEvalError(writeErrorMessage(outputLocation(outputPath, modelNameSanitized, fileDateIdFromMicros(startMicros)).resultsFile, e));
    }
    log(`wrote ${written.resultsFile}`);
    for (const file of written.samplesFiles) log(`wrote ${file}`);
    return { resultsFile: written.resultsFile, samplesFiles: written.samplesFiles };
}
