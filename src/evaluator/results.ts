/**
 * lm-eval's results file (main's layout), written byte-compatibly with Python's `json.dumps(indent=2,
 * ensure_ascii=False)`.
 *
 * API:
 * - `aggregateTask(task, docMetrics, originalCount, bootstrapIters)` → one task's aggregated metrics;
 * - `buildResults({ tasks, run, … })` → the results object (key order as lm-eval writes it, plus our
 *   `mamba_eval` provenance block);
 * - `writeResultsFile(results, { outputPath, modelNameSanitized, dateId })` → the path written (atomically, never
 *   over an existing file);
 * - `modelNameFromArgs`, `sanitizeModelName`, `fileDateId`, `fileDateIdFromMicros`, `outputLocation`: lm-eval's
 *   naming rules (runFiles.ts makes a run's names unique).
 * The Python-compatible serialisation it uses lives in pyjson.ts.
 */
import path from "node:path";
import type { TaskSpec } from "../tasks/types.js";
import { aggregate, stderrFor } from "../metrics/metrics.js";
import { writeFileAtomic } from "../io/atomicWrite.js";
import { pyFloat, pyFloatRepr, pyJsonDumps, type JsonLike, type PyFloat } from "../io/pyjson.js";

// ---- aggregation ----------------------------------------------------------------------------------------------

/** Per-document metric values of one task, keyed by metric name (as requests.ts's processResults returns them). */
export type DocMetrics = Readonly<Record<string, number>>;

/** One task's aggregated outcome. */
export interface TaskAggregate {
    task: TaskSpec;
    /** Number of documents in the evaluation split (n-samples.original). */
    originalCount: number;
    /** Number of documents scored (sample_len, n-samples.effective). */
    sampleLen: number;
    /** `"<metric>,none"` and `"<metric>_stderr,none"` in lm-eval's order (each metric followed by its stderr). */
    metrics: Record<string, PyFloat | "N/A">;
}

/** Aggregates per-document metrics the way lm-eval's evaluator does (stderr "N/A" when bootstrapIters ≤ 0 or n ≤ 1). */
export function aggregateTask(task: TaskSpec, docMetrics: readonly DocMetrics[], originalCount: number, bootstrapIters: number): TaskAggregate {
    const metrics: Record<string, PyFloat | "N/A"> = {};
    for (const m of task.metrics) {
        const items = docMetrics.map((d) => {
            const v = d[m.name];
            if (v === undefined) throw new Error(`${task.name}: a document has no "${m.name}" value`);
            return v;
        });
        metrics[`${m.name},none`] = pyFloat(aggregate(m.aggregation, items));
        const se = stderrFor(m.aggregation, items, bootstrapIters);
        metrics[`${m.name}_stderr,none`] = se === "N/A" ? se : pyFloat(se);
    }
    return { task, originalCount, sampleLen: docMetrics.length, metrics };
}

// ---- the results object ---------------------------------------------------------------------------------------

/** simple_evaluate's `config` block (main), in its key order. */
export interface RunConfig {
    model: string;
    /** The --model_args value (lm-eval main stores a dict; v0.4.x the string). */
    model_args: JsonLike;
    model_num_parameters: number;
    model_dtype: string;
    model_revision: string;
    model_sha: string;
    batch_size: JsonLike;
    batch_sizes: number[];
    device: string | null;
    use_cache: string | null;
    /** --limit as given (a float in lm-eval), or null. */
    limit: number | null;
    bootstrap_iters: number;
    gen_kwargs: JsonLike;
    random_seed: number | null;
    numpy_seed: number | null;
    torch_seed: number | null;
    fewshot_seed: number | null;
}

/** Tokenizer facts lm-eval logs (add_tokenizer_info). */
export interface TokenizerInfo {
    padToken: [string | null, string];
    eosToken: [string | null, string];
    bosToken: [string | null, string];
    eotTokenId: number | null;
    maxLength: number | null;
}

/** Our own provenance, stored under the `mamba_eval` key. */
export interface Provenance {
    tool_version: string;
    git_commit: string | null;
    backend: string;
    threads: number;
    dtype: string;
    model_fingerprint: string;
    [extra: string]: JsonLike;
}

/** Everything `buildResults` needs besides the per-task aggregates. */
export interface ResultsInput {
    tasks: readonly TaskAggregate[];
    config: RunConfig;
    /** `git_hash` of the evaluating tool (lm-eval writes its own repo's short hash). */
    gitHash: string | null;
    /** Unix start time in seconds (`date`). */
    startTime: number;
    tokenizer: TokenizerInfo;
    /** `task_hashes` (samples.ts `taskHash`), `{}` without --log_samples. */
    taskHashes: Record<string, string>;
    modelSource: string;
    modelName: string;
    totalEvaluationTimeSeconds: number;
    environment?: { pretty_env_info?: string; transformers_version?: string; lm_eval_version?: string; upper_git_hash?: string | null };
    provenance: Provenance;
}

/** The results object with lm-eval main's keys in its order, then our `mamba_eval` block. */
export function buildResults(input: ResultsInput): Record<string, JsonLike> {
    const byName = [...input.tasks].sort((a, b) => a.task.name.localeCompare(b.task.name));
    const perTask = <T extends JsonLike>(f: (t: TaskAggregate) => T, tasks: readonly TaskAggregate[] = byName): Record<string, T> =>
        Object.fromEntries(tasks.map((t) => [t.task.name, f(t)]));
    const env = input.environment ?? {};
    const c = input.config;
    return {
        results: perTask((t) => ({ name: t.task.name, alias: t.task.name, sample_len: t.sampleLen, ...t.metrics }), input.tasks),
        group_subtasks: {},
        configs: perTask((t) => t.task.config),
        versions: perTask((t) => pyFloat(t.task.version)),
        "n-shot": perTask(() => 0),
        higher_is_better: perTask((t) => Object.fromEntries(t.task.metrics.map((m) => [m.name, m.higherIsBetter]))),
        "n-samples": perTask((t) => ({ original: t.originalCount, effective: t.sampleLen }), input.tasks),
        config: {
            model: c.model,
            model_args: c.model_args,
            model_num_parameters: c.model_num_parameters,
            model_dtype: c.model_dtype,
            model_revision: c.model_revision,
            model_sha: c.model_sha,
            batch_size: c.batch_size,
            batch_sizes: c.batch_sizes,
            device: c.device,
            use_cache: c.use_cache,
            limit: c.limit === null ? null : pyFloat(c.limit),
            bootstrap_iters: c.bootstrap_iters,
            gen_kwargs: c.gen_kwargs,
            random_seed: c.random_seed,
            numpy_seed: c.numpy_seed,
            torch_seed: c.torch_seed,
            fewshot_seed: c.fewshot_seed,
        },
        git_hash: input.gitHash,
        date: pyFloat(input.startTime),
        pretty_env_info: env.pretty_env_info ?? "N/A (torch not installed)",
        transformers_version: env.transformers_version ?? "N/A",
        lm_eval_version: env.lm_eval_version ?? "N/A",
        upper_git_hash: env.upper_git_hash ?? null,
        tokenizer_pad_token: input.tokenizer.padToken,
        tokenizer_eos_token: input.tokenizer.eosToken,
        tokenizer_bos_token: input.tokenizer.bosToken,
        eot_token_id: input.tokenizer.eotTokenId,
        max_length: input.tokenizer.maxLength,
        task_hashes: input.taskHashes,
        model_source: input.modelSource,
        model_name: input.modelName,
        model_name_sanitized: sanitizeModelName(input.modelName),
        system_instruction: null,
        system_instruction_sha: null,
        fewshot_as_multiturn: false,
        chat_template: null,
        chat_template_sha: null,
        total_evaluation_time_seconds: pyFloatRepr(input.totalEvaluationTimeSeconds),
        mamba_eval: input.provenance,
    };
}

// ---- naming and writing ---------------------------------------------------------------------------------------

/** lm-eval's model name from --model_args: the value of the first of peft, delta, pretrained, model, path, engine. */
export function modelNameFromArgs(modelArgs: string | Readonly<Record<string, JsonLike>>): string | null {
    const keys = ["peft", "delta", "pretrained", "model", "path", "engine"];
    if (typeof modelArgs !== "string") {
        for (const key of keys) if (key in modelArgs) return String(modelArgs[key]);
        return null;
    }
    for (const key of keys) {
        const marker = `${key}=`;
        if (modelArgs.includes(marker)) return modelArgs.split(marker)[1]!.split(",")[0]!;
    }
    return null;
}

/**
 * lm-eval's `sanitize_model_name`: runs of `"<>:/|\?*[]` become "__" (state-spaces/mamba-130m → state-spaces__mamba-130m).
 * A name made only of dots ("." or "..", e.g. `--model ..`) would name the output folder itself or its parent, and
 * results would land outside --output_path: its dots become underscores ("..": "__").
 */
export function sanitizeModelName(name: string): string {
    const sanitized = name.replace(/["<>:/|\\?*[\]]+/g, "__");
    return /^\.*$/.test(sanitized) ? sanitized.replaceAll(".", "_") || "_" : sanitized;
}

/** Python's `datetime.now().isoformat().replace(":", "-")` for `date` (local time; microseconds omitted when 0). */
export function fileDateId(date: Date): string {
    return fileDateIdFromMicros(date.getTime() * 1000);
}

/** fileDateId of a time in microseconds since the epoch (the microsecond digits kept, as Python's datetime keeps them). */
export function fileDateIdFromMicros(micros: number): string {
    const date = new Date(Math.floor(micros / 1000));
    const p = (n: number, w = 2) => String(n).padStart(w, "0");
    const base = `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}T${p(date.getHours())}-${p(date.getMinutes())}-${p(date.getSeconds())}`;
    const fraction = ((micros % 1_000_000) + 1_000_000) % 1_000_000;
    return fraction === 0 ? base : `${base}.${p(fraction, 6)}`;
}

/** Now, in whole microseconds since the epoch (the wall clock, with the monotonic clock's sub-millisecond digits). */
export function nowMicros(): number {
    return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/** Where lm-eval main puts files for an --output_path: a ".json" path writes next to it, otherwise into `<dir>/<model>`. */
export function outputLocation(outputPath: string, modelNameSanitized: string, dateId: string): { dir: string; resultsFile: string } {
    if (path.extname(outputPath) === ".json") {
        const dir = path.dirname(outputPath);
        return { dir, resultsFile: path.join(dir, `${path.basename(outputPath, ".json")}_${dateId}.json`) };
    }
    const dir = path.join(outputPath, modelNameSanitized);
    return { dir, resultsFile: path.join(dir, `results_${dateId}.json`) };
}

/**
 * Writes `results` as lm-eval does (indent 2, ensure_ascii=False) to its lm-eval location, atomically and never
 * over an existing file (FileExistsError: see runFiles.ts, which picks a free date id); returns the path.
 */
export async function writeResultsFile(
    results: Readonly<Record<string, JsonLike>>,
    where: { outputPath: string; modelNameSanitized: string; dateId: string },
): Promise<string> {
    const { resultsFile } = outputLocation(where.outputPath, where.modelNameSanitized, where.dateId);
    writeFileAtomic(resultsFile, pyJsonDumps(results, 2), { noClobber: true });
    return resultsFile;
}
