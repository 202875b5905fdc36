/**
 * The table3 workflow: evaluate every published size of a family — Mamba-1 on the Mamba paper's six Table-3 tasks,
 * Mamba-2 on the Mamba-2 paper's seven (with OpenBookQA) — or the checkpoints of a published table (`--paper`,
 * table3Presets.ts), one model after another, each with its own cache file (so an interrupted run resumes where it
 * stopped), then write the Table-3 view (markdown + csv + svg) from the results.
 *
 * The evaluation itself is the evaluator's (simpleEvaluate, as `mamba-eval run` does it); this module needs only a
 * `Table3Evaluator` (one model → one results file), by default `simpleEvaluator` below. The models share one
 * RunMemo, so the task documents are read and the requests tokenised once for all of them, and on a GPU the next
 * model is opened while the current one runs.
 */
import { join } from "node:path";
import { MambaEvalError, UsageError } from "../errors.js";
import { REFERENCE_SOURCES, type ReferenceChoice } from "./paperTables.js";
import { renderTable3Csv, renderTable3Markdown } from "./renderTable3.js";
import { renderTable3Svg } from "./renderSvg.js";
import { readResultsFile } from "./resultsFile.js";
import { buildReportTable } from "./runTable.js";
import type { Table3, Table3Layout } from "./table3.js";
import { MAMBA2_TASKS } from "../io/bundled.js";
import { TABLE3_PRESETS, type Table3PresetName } from "./table3Presets.js";
import { writeFileAtomic } from "../io/atomicWrite.js";
import type { OpenedModel } from "../lm/openModel.js";
import { RunMemo } from "../evaluator/runMemo.js";
import { openForEvaluation, simpleEvaluate, type SimpleEvaluateOptions, type SimpleEvaluateResult } from "../evaluator/simpleEvaluate.js";

/** The six tasks of the Mamba paper's Table 3, in lm-eval names. */
export const TABLE3_TASKS = ["lambada_openai", "hellaswag", "piqa", "arc_easy", "arc_challenge", "winogrande"] as const;

/** The published checkpoints per family, smallest first. */
export const TABLE3_MODELS = {
    mamba1: ["state-spaces/mamba-130m", "state-spaces/mamba-370m", "state-spaces/mamba-790m", "state-spaces/mamba-1.4b", "state-spaces/mamba-2.8b"],
    mamba2: ["state-spaces/mamba2-130m", "state-spaces/mamba2-370m", "state-spaces/mamba2-780m", "state-spaces/mamba2-1.3b", "state-spaces/mamba2-2.7b"],
} as const;

export type Table3Family = keyof typeof TABLE3_MODELS;

/** The tasks each family is evaluated on: its paper's (Mamba: six; Mamba-2: seven, with OpenBookQA). */
export const FAMILY_TASKS: Readonly<Record<Table3Family, readonly string[]>> = { mamba1: TABLE3_TASKS, mamba2: MAMBA2_TASKS };

/** The table columns of each family: its paper's (average of six or of seven). */
export const FAMILY_LAYOUT: Readonly<Record<Table3Family, Table3Layout>> = { mamba1: "mamba", mamba2: "mamba2" };

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
    /** What the table compares with; undefined: the paper (Mamba-1), the paper and the reproduction (Mamba-2). */
    reference: ReferenceChoice | undefined;
    /** A published table to reproduce instead of the family (its models unless `models` is given, its tasks). */
    paper?: Table3PresetName | undefined;
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

/** A bare published name ("mamba-130m", "mamba2-2.7b", "mamba2attn-2.7b") rather than an org/id or a path. */
function isShortPublishedName(model: string): boolean {
    const published = [...Object.values(TABLE3_MODELS), ...Object.values(TABLE3_PRESETS).map((p) => p.models)];
    return !model.includes("/") && !model.includes("\\") && !model.startsWith(".") &&
        published.some((ids) => ids.some((id) => id === `state-spaces/${model}`));
}

/** What a table3 run evaluates and how its table is laid out. */
export interface Table3Plan {
    models: string[];
    tasks: readonly string[];
    layout: Table3Layout;
    /** The first line of table3.md; undefined: "Table 3 (zero-shot, lm-eval) — compared with <sources>". */
    title: string | undefined;
}

/** The models, tasks and layout of a run: the --paper preset's, else the family's (--models replaces the models). */
export function table3Plan(options: Pick<Table3Options, "models" | "family" | "paper">): Table3Plan {
    const preset = options.paper === undefined ? undefined : TABLE3_PRESETS[options.paper];
    if (preset === undefined) {
        return { models: table3ModelList(options.models, options.family), tasks: FAMILY_TASKS[options.family], layout: FAMILY_LAYOUT[options.family], title: undefined };
    }
    const models = options.models === undefined || options.models.length === 0 ? [...preset.models] : table3ModelList(options.models, options.family);
    return { models, tasks: preset.tasks, layout: preset.layout, title: preset.title };
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
    const { models, tasks, layout, title } = table3Plan(options);
    const resultFiles: string[] = [];
    const failures: Array<{ model: string; message: string }> = [];
    for (const [i, model] of models.entries()) {
        if (options.signal?.aborted) throw new MambaEvalError(`table3: interrupted before ${model}; run the same command to resume`);
        options.log(`table3: [${i + 1}/${models.length}] ${model} on ${tasks.join(",")}`);
        try {
            const file = await evaluate({
                model,
                tasks,
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
    const table = buildReportTable(resultFiles.map((file) => readResultsFile(file)), { reference: options.reference, paper: options.paper, layout });
    const { written, markdown } = writeTable3Outputs(table, options.outputPath, title);
    return { table, written, markdown, failures };
}

/**
 * Writes table3.md, table3.csv and table3.svg into the output folder; returns their paths and the markdown. `title`
 * (a published table's name) replaces the default first line "Table 3 (zero-shot, lm-eval)".
 */
export function writeTable3Outputs(table: Table3, outputPath: string, title?: string): { written: Table3Outcome["written"]; markdown: string } {
    const written = { markdown: join(outputPath, "table3.md"), csv: join(outputPath, "table3.csv"), svg: join(outputPath, "table3.svg") };
    const sources = [...new Set(table.rows.flatMap((r) => r.references.flatMap((ref) => (ref ? [REFERENCE_SOURCES[ref.source]] : []))))];
    const markdown = `# ${title ?? "Table 3 (zero-shot, lm-eval)"} — compared with ${sources.join("; ") || "no published rows"}\n\n${renderTable3Markdown(table)}`;
    writeFileAtomic(written.markdown, markdown);
    writeFileAtomic(written.csv, renderTable3Csv(table));
    writeFileAtomic(written.svg, renderTable3Svg(table));
    return { written, markdown };
}

/**
 * What every model of a table3 run is evaluated with, besides the model, tasks, device, batch size and files;
 * `stateBudgetGb` becomes each model's `state_budget_gb=` model argument.
 */
export type Table3EvaluationSettings = Omit<SimpleEvaluateOptions, "model" | "modelArgs" | "tasks" | "device" | "batchSize" | "outputPath" | "useCache" | "memo" | "opened" | "onOpened"> & {
    stateBudgetGb?: number | undefined;
};

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
    const { stateBudgetGb, ...common } = settings;
    const budgetArg = stateBudgetGb === undefined ? "" : `,state_budget_gb=${stateBudgetGb}`;
    const optionsFor = (request: Table3EvalRequest, model: string): SimpleEvaluateOptions => ({
        ...common,
        model: "mamba_ssm",
        modelArgs: `pretrained=${model}${budgetArg}`,
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
