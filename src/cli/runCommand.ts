/**
 * `mamba-eval [run] --model M --tasks a,b …`: lm-eval's run. Loads the model, evaluates the tasks (all
 * loglikelihood requests in one pooled call), prints the results table and writes the results files.
 * With neither --model nor --tasks it evaluates the bundled tiny checkpoint on the bundled sample docs, offline.
 * SIGINT/SIGTERM stop the run cleanly; with --use_cache the finished requests are kept for a resumed run.
 */
import { mkdirSync, writeFileSync, existsSync, appendFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Argv, CommandModule } from "yargs";
import { MambaEvalError, TaskError, UsageError } from "../errors.js";
import { CachingLM, ResultCache } from "../harness/cache.js";
import { evaluate, type EvaluationOutput } from "../harness/evaluate.js";
import type { LM } from "../harness/lm.js";
import { ProgressReporter } from "../harness/progress.js";
import { resolveTaskNames } from "../tasks/registry.js";
import { addOptions, MODEL_OPTIONS } from "./commonOptions.js";
import type { CliIO } from "./io.js";
import { resolveModelSpec } from "./modelArgs.js";
import { openModel } from "./openModel.js";

export interface RunArgs {
    model?: string;
    model_args?: string;
    tokenizer?: string;
    dtype?: string;
    device?: string;
    threads?: number;
    tasks?: string;
    batch_size?: string;
    limit?: number;
    output_path?: string;
    log_samples?: boolean;
    seed?: string;
    use_cache?: string;
    write_out?: boolean;
    num_fewshot?: number;
    data_dir?: string;
    verbose?: boolean;
}

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The bundled default: a tiny GPT-NeoX-vocabulary checkpoint and sample docs of every task. */
export const DEFAULT_MODEL_DIR = path.join(PACKAGE_ROOT, "fixtures", "neox-mamba1");
export const DEFAULT_DATA_DIR = path.join(PACKAGE_ROOT, "fixtures", "tasks");
export const ALL_TASKS = "lambada_openai,hellaswag,piqa,arc_easy,arc_challenge,winogrande";

export function runBuilder<T>(y: Argv<T>): Argv<T> {
    return addOptions(y, {
        ...MODEL_OPTIONS,
        tasks: { type: "string", describe: `comma-separated task names or tags (default with no --model: ${ALL_TASKS})` },
        batch_size: { type: "string", default: "auto", describe: "N or auto: tokens per native call = N×256 (auto 8192); results do not depend on it" },
        limit: { type: "number", describe: "first N docs per task, or a fraction < 1 (for testing only)" },
        output_path: { type: "string", describe: "folder (or .json file) for the results file" },
        log_samples: { type: "boolean", default: false, describe: "also write per-document samples JSONL (needs --output_path)" },
        seed: { type: "string", default: "0,1234,1234,1234", describe: "accepted for lm-eval compatibility; zero-shot scores do not use it" },
        use_cache: { type: "string", describe: "SQLite file of finished requests; a rerun resumes from it" },
        write_out: { type: "boolean", default: false, describe: "print the first document's prompt and target per task" },
        num_fewshot: { type: "number", describe: "only 0 is supported (the Table-3 tasks are zero-shot)" },
        data_dir: { type: "string", describe: "folder with the tasks' original files (layout of ../shared/data); default: the HF datasets" },
    });
}

/** --batch_size → tokens per native call. */
export function tokensPerCall(batchSize: string | undefined): number | undefined {
    if (batchSize === undefined || batchSize === "auto" || batchSize.startsWith("auto:")) return undefined;
    if (!/^\d+$/.test(batchSize) || Number(batchSize) < 1) throw new UsageError(`--batch_size ${batchSize}: expected a positive integer or auto`);
    return Math.min(65536, Math.max(256, Number(batchSize) * 256));
}

/** lm-eval's model_name_sanitized. */
export function sanitizeModelName(name: string): string {
    return name.replace(/["<>:/|\\?*[\]]+/g, "__");
}

/** The lm-eval (v0.4.3+/main) printed table. */
export function formatTable(out: EvaluationOutput): string {
    const lines = ["|    Tasks     |Version|Filter|n-shot|  Metric  |   |Value |   |Stderr|", "|--------------|------:|------|-----:|----------|---|-----:|---|-----:|"];
    for (const o of [...out.tasks].sort((a, b) => a.task.name.localeCompare(b.task.name))) {
        const metrics = [...o.task.metrics].sort((a, b) => a.name.localeCompare(b.name));
        metrics.forEach((m, i) => {
            const v = o.values[m.name]!;
            const se = v.stderr === "N/A" ? "   N/A" : v.stderr.toFixed(4);
            lines.push(`|${i === 0 ? o.task.name : ""}|${i === 0 ? String(o.task.version) : ""}|none|${i === 0 ? "0" : ""}|${m.name}|${m.higherIsBetter ? "↑" : "↓"}|${v.value.toFixed(4)}|±|${se}|`);
        });
    }
    return lines.join("\n") + "\n";
}

/** Runs the command; returns the exit status. */
export async function runMain(args: RunArgs, io: CliIO): Promise<number> {
    const bundled = args.model === undefined && args.tasks === undefined;
    if (!bundled && args.model === undefined) throw new UsageError("--model is required with --tasks (e.g. --model mamba_ssm --model_args pretrained=state-spaces/mamba-130m)");
    if (!bundled && args.tasks === undefined) throw new UsageError(`--tasks is required with --model (e.g. --tasks ${ALL_TASKS})`);
    if (args.num_fewshot !== undefined && args.num_fewshot !== 0) throw new UsageError(`--num_fewshot ${args.num_fewshot}: only 0 is supported`);
    if (args.log_samples && !args.output_path) throw new UsageError("--log_samples needs --output_path");
    if (args.limit !== undefined && !(args.limit > 0)) throw new UsageError(`--limit ${args.limit}: expected a count >= 1 or a fraction in (0, 1)`);
    let tasks;
    try {
        tasks = resolveTaskNames((args.tasks ?? ALL_TASKS).split(","));
    } catch (e) {
        throw e instanceof TaskError ? new UsageError(`--tasks: ${e.message}`) : e;
    }
    if (tasks.length === 0) throw new UsageError("--tasks: no task named");
    const maxTokensPerCall = tokensPerCall(args.batch_size);
    const dataDir = args.data_dir ?? (bundled ? DEFAULT_DATA_DIR : undefined);
    if (dataDir !== undefined && !existsSync(dataDir)) throw new UsageError(`--data_dir ${dataDir}: no such folder`);
    const spec = resolveModelSpec({
        model: args.model ?? DEFAULT_MODEL_DIR,
        modelArgs: args.model_args,
        dtype: args.dtype,
        device: args.device,
        tokenizer: args.tokenizer,
    });
    const model = await openModel(spec, { threads: args.threads, needTokenizer: true, lm: maxTokensPerCall ? { maxTokensPerCall } : {} });
    const cache = args.use_cache ? ResultCache.open(args.use_cache, { fingerprint: model.checkpoint.fingerprint, dtype: spec.dtype }) : undefined;
    const lm: LM = cache ? new CachingLM(model.lm, cache) : model.lm;
    const abort = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => abort.abort(new MambaEvalError(`interrupted by ${signal}`));
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    const progress = new ProgressReporter("loglikelihood", { write: (t) => io.err(t), isTTY: io.errIsTTY });
    const start = Date.now();
    try {
        let out: EvaluationOutput;
        try {
            out = await evaluate(lm, {
                tasks,
                limit: args.limit,
                dataDir,
                ...(args.write_out ? { writeOut: (t: string) => io.err(t) } : {}),
                lm: { onProgress: progress.update, signal: abort.signal },
            });
        } catch (e) {
            if (abort.signal.aborted) {
                progress.finish();
                const saved = cache ? `; ${cache.size()} finished requests are saved in ${cache.file}, run the same command to resume` : "";
                throw new MambaEvalError(`${(abort.signal.reason as Error).message}${saved}`);
            }
            throw e;
        }
        progress.finish();
        const stats = model.lm.lastStats;
        if (stats) io.err(`token steps: ${stats.tokenSteps} (lm-eval would run ${stats.unsharedTokenSteps}), ${stats.calls} native calls\n`);
        const results = {
            ...out.results,
            config: {
                model: spec.modelType,
                model_args: spec.modelArgs,
                batch_size: args.batch_size ?? "auto",
                batch_sizes: [],
                device: spec.device,
                use_cache: args.use_cache ?? null,
                limit: args.limit ?? null,
                bootstrap_iters: 100000,
                gen_kwargs: null,
                model_dtype: spec.dtype,
                model_sha: model.checkpoint.fingerprint,
            },
            date: start / 1000,
            max_length: spec.maxLength,
            eot_token_id: model.tokenizer?.eosTokenId,
            backend: { device: spec.device, threads: model.threads, isa: model.backend.info().isa },
            total_evaluation_time_seconds: String((Date.now() - start) / 1000),
        };
        const limitText = args.limit ?? "None";
        io.out(`${spec.modelType} (${spec.modelArgs}), gen_kwargs: (None), limit: ${limitText}, num_fewshot: None, batch_size: ${args.batch_size ?? "auto"}\n`);
        io.out(formatTable(out));
        if (args.output_path) writeOutputs(args.output_path, spec.pretrained, results, out, Boolean(args.log_samples), io);
        return 0;
    } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        cache?.close();
        await model.dispose();
    }
}

function writeOutputs(outputPath: string, pretrained: string, results: Record<string, unknown>, out: EvaluationOutput, logSamples: boolean, io: CliIO): void {
    const stamp = new Date().toISOString().replace(/Z$/, "").replaceAll(":", "-");
    const isFile = outputPath.endsWith(".json");
    const dir = isFile ? path.dirname(outputPath) : path.join(outputPath, sanitizeModelName(pretrained));
    mkdirSync(dir, { recursive: true });
    const file = isFile ? path.join(dir, `${path.basename(outputPath, ".json")}_${stamp}.json`) : path.join(dir, `results_${stamp}.json`);
    writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
    io.err(`wrote ${file}\n`);
    if (!logSamples) return;
    for (const o of out.tasks) {
        const samplesFile = path.join(dir, `samples_${o.task.name}_${stamp}.jsonl`);
        const lines = o.samples.map((s) =>
            JSON.stringify({
                doc_id: s.docId,
                doc: s.doc,
                target: String(s.target),
                arguments: Object.fromEntries(s.arguments.map((a, i) => [`gen_args_${i}`, { arg_0: a.context, arg_1: a.continuation }])),
                resps: s.responses.map((r) => [[String(r.logprob), r.isGreedy ? "True" : "False"]]),
                filtered_resps: s.responses.map((r) => [String(r.logprob), r.isGreedy ? "True" : "False"]),
                filter: "none",
                metrics: Object.keys(s.metrics),
                ...s.metrics,
            }),
        );
        appendFileSync(samplesFile, lines.join("\n") + "\n");
        io.err(`wrote ${samplesFile}\n`);
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
