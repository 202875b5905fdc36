/**
 * The table3 workflow: evaluate every published size on the six Table-3 tasks, one model after another,
 * each with its own cache file (so an interrupted run resumes where it stopped), then write the
 * Table-3 view (markdown + csv + svg) from the results.
 *
 * The evaluation itself is the evaluator's (simpleEvaluate, as `mamba-eval run` does it); this module needs only a
 * `Table3Evaluator` (one model → one results file), by default `simpleEvaluator` below. The models share one
 * RunMemo, so the task documents are read and the requests tokenised once for all of them, and on a GPU the next
 * model is opened while the current one runs.
 */
import { join } from "node:path";
import { MambaEvalError, UsageError } from "../errors.js";
import { REFERENCE_SOURCES, type ReferenceKind } from "./paperTables.js";
import { renderTable3Csv, renderTable3Markdown } from "./renderTable3.js";
import { renderTable3Svg } from "./renderSvg.js";
import { readResultsFile } from "./resultsFile.js";
import { buildTable3, type Table3 } from "./table3.js";
import { writeFileAtomic } from "../io/atomicWrite.js";
import type { OpenedModel } from "../lm/openModel.js";
import { RunMemo } from "../evaluator/runMemo.js";
import { openForEvaluation, simpleEvaluate, type SimpleEvaluateOptions, type SimpleEvaluateResult } from "../evaluator/simpleEvaluate.js";

/** The six tasks of Table 3, in lm-eval names. */
export const TABLE3_TASKS = ["lambada_openai", "hellaswag", "piqa", "arc_easy", "arc_challenge", "winogrande"] as const;

/** The published checkpoints per family, smallest first. */
export const TABLE3_MODELS = {
    mamba1: ["state-spaces/mamba-130m", "state-spaces/mamba-370m", "state-spaces/mamba-790m", "state-spaces/mamba-1.4b", "state-spaces/mamba-2.8b"],
    mamba2: ["state-spaces/mamba2-130m", "state-spaces/mamba2-370m", "state-spaces/mamba2-780m", "state-spaces/mamba2-1.3b", "state-spaces/mamba2-2.7b"],
} as const;

export type Table3Family = keyof typeof TABLE3_MODELS;

/** One model's evaluation, as the workflow asks the harness for it. */
export interface Table3EvalRequest {
    /** Hub id or local folder. */
    model: string;
    tasks: readonly string[];
    device: string | undefined;
    batchSize: string | undefined;
    /** lm-eval's --output_path: results go to <outputPath>/<model_name_sanitized>/results_<datetime>.json. */
    outputPath: string;
    /** This model's own cache file (--use_cache), or undefined for none. */
    cacheFile: string | undefined;
    /** The model evaluated after this one, if any (an evaluator may open it ahead). */
    next?: string;
}

/** Evaluates one model and returns the path of the results file it wrote. */
export type Table3Evaluator = (request: Table3EvalRequest) => Promise<string>;

export interface Table3Options {
    /** Models to run (hub ids, short names like "mamba-130m", or folders); default: the family's sizes. */
    models: readonly string[] | undefined;
    family: Table3Family;
    device: string | undefined;
    batchSize: string | undefined;
    outputPath: string;
    /** Folder for the per-model cache files, or undefined for no cache. */
    useCache: string | undefined;
    reference: ReferenceKind;
    /** Progress notes (stderr). */
    log: (line: string) => void;
    /** Aborted (SIGINT/SIGTERM): stop after the current model instead of going on with the next. */
    signal?: AbortSignal;
}

export interface Table3Outcome {
    table: Table3;
    /** The files written: markdown, csv, svg. */
    written: { markdown: string; csv: string; svg: string };
    /** The markdown file's content. */
    markdown: string;
    /** Models whose evaluation failed, with the error line. */
    failures: Array<{ model: string; message: string }>;
}

/** The models to run: --models (short names get the state-spaces/ org) or the family's published sizes. */
export function table3ModelList(models: readonly string[] | undefined, family: Table3Family): string[] {
    if (models === undefined || models.length === 0) return [...TABLE3_MODELS[family]];
    const list = models.map((m) => m.trim()).filter((m) => m !== "");
    if (list.length === 0) throw new UsageError("--models: expected a comma-separated list of model ids");
    return list.map((m) => (isShortPublishedName(m) ? `state-spaces/${m}` : m));
}

/** A bare published name ("mamba-130m", "mamba2-2.7b") rather than an org/id or a path. */
function isShortPublishedName(model: string): boolean {
    return !model.includes("/") && !model.includes("\\") && !model.startsWith(".") &&
        Object.values(TABLE3_MODELS).some((ids) => ids.some((id) => id === `state-spaces/${model}`));
}

/** lm-eval's sanitisation of a model name for file names: runs of "<>:/|\?*[] → "__". */
export function sanitiseModelName(model: string): string {
    return model.replace(/["<>:/|\\?*[\]]+/g, "__");
}

/** The cache file of one model inside the --use_cache folder. */
export function table3CacheFile(useCache: string | undefined, model: string): string | undefined {
    return useCache === undefined ? undefined : join(useCache, `${sanitiseModelName(model)}.db`);
}

/** Runs the whole workflow; a model that fails is reported and the others still run. */
export async function runTable3(options: Table3Options, evaluate: Table3Evaluator): Promise<Table3Outcome> {
    const models = table3ModelList(options.models, options.family);
    const resultFiles: string[] = [];
    const failures: Array<{ model: string; message: string }> = [];
    for (const [i, model] of models.entries()) {
        if (options.signal?.aborted) throw new MambaEvalError(`table3: interrupted before ${model}; run the same command to resume`);
        options.log(`table3: [${i + 1}/${models.length}] ${model} on ${TABLE3_TASKS.join(",")}`);
        try {
            const file = await evaluate({
                model,
                tasks: TABLE3_TASKS,
                device: options.device,
                batchSize: options.batchSize,
                outputPath: options.outputPath,
                cacheFile: table3CacheFile(options.useCache, model),
                ...(i + 1 < models.length ? { next: models[i + 1]! } : {}),
            });
            resultFiles.push(file);
            options.log(`table3: ${model} → ${file}`);
        } catch (error) {
            if (!(error instanceof MambaEvalError) || options.signal?.aborted) throw error;
            failures.push({ model, message: error.message });
            options.log(`table3: ${model} failed: ${error.message}`);
        }
    }
    if (resultFiles.length === 0) {
        throw new MambaEvalError(`table3: every model failed (${failures.map((f) => `${f.model}: ${f.message}`).join("; ")})`);
    }
    const table = buildTable3(resultFiles.map((file) => readResultsFile(file)), options.reference);
    const { written, markdown } = writeTable3Outputs(table, options.outputPath);
    return { table, written, markdown, failures };
}

/** Writes table3.md, table3.csv and table3.svg into the output folder; returns their paths and the markdown. */
export function writeTable3Outputs(table: Table3, outputPath: string): { written: Table3Outcome["written"]; markdown: string } {
    const written = { markdown: join(outputPath, "table3.md"), csv: join(outputPath, "table3.csv"), svg: join(outputPath, "table3.svg") };
    const sources = [...new Set(table.rows.flatMap((r) => (r.reference ? [REFERENCE_SOURCES[r.reference.source]] : [])))];
    const markdown = `# Table 3 (zero-shot, lm-eval) — compared with ${sources.join("; ") || "no published rows"}\n\n${renderTable3Markdown(table)}`;
    writeFileAtomic(written.markdown, markdown);
    writeFileAtomic(written.csv, renderTable3Csv(table));
    writeFileAtomic(written.svg, renderTable3Svg(table));
    return { written, markdown };
}

/** What every model of a table3 run is evaluated with, besides the model, tasks, device, batch size and files. */
export type Table3EvaluationSettings = Omit<SimpleEvaluateOptions, "model" | "modelArgs" | "tasks" | "device" | "batchSize" | "outputPath" | "useCache" | "memo" | "opened" | "onOpened">;

/**
 * The default evaluator: each model through simpleEvaluate, as `mamba-eval run --model mamba_ssm --model_args
 * pretrained=<model>` would evaluate it, with one RunMemo for all. `openAhead(device)`: whether to open the next
 * model while this one is evaluated (default: on a GPU only; on the CPU two models at once would double the host
 * memory a run needs). `onEvaluated` receives each model's result (the CLI prints its table).
 */
export function simpleEvaluator(
    settings: Table3EvaluationSettings,
    openAhead: (device: string | undefined) => boolean = (device) => device === "cuda",
    onEvaluated?: (model: string, result: SimpleEvaluateResult) => void,
): Table3Evaluator {
    const memo = new RunMemo();
    const optionsFor = (request: Table3EvalRequest, model: string): SimpleEvaluateOptions => ({
        ...settings,
        model: "mamba_ssm",
        modelArgs: `pretrained=${model}`,
        tasks: request.tasks,
        device: request.device as SimpleEvaluateOptions["device"],
        batchSize: request.batchSize,
        outputPath: request.outputPath,
        useCache: request.cacheFile,
    });
    let ahead: { model: string; opened: Promise<OpenedModel> } | undefined;
    return async (request) => {
        const opened = ahead?.model === request.model ? ahead.opened : undefined;
        if (ahead !== undefined && opened === undefined) void ahead.opened.then((m) => m.dispose(), () => undefined);
        ahead = undefined;
        const openNext = () => {
            if (request.next === undefined || !openAhead(request.device)) return;
            const next = openForEvaluation(optionsFor(request, request.next), memo);
            next.catch(() => undefined);  // its error is reported when its turn comes
            ahead = { model: request.next, opened: next };
        };
        const result = await simpleEvaluate({ ...optionsFor(request, request.model), memo, ...(opened ? { opened } : {}), onOpened: openNext });
        onEvaluated?.(request.model, result);
        if (result.resultsFile === undefined) throw new MambaEvalError(`${request.model}: the run wrote no results file under ${request.outputPath}`);
        return result.resultsFile;
    };
}
