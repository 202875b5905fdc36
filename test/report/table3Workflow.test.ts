/**
 * The table3 workflow: model lists, per-model cache files, and a real end-to-end run through the run
 * command (native addon) on the bundled tiny GPT-NeoX-vocabulary checkpoints and sample documents.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_MODEL_DIR } from "../../src/cli/runCommand.js";
import { UsageError } from "../../src/errors.js";
import { runCompare } from "../../src/report/runCompare.js";
import { readResultsFile } from "../../src/report/resultsFile.js";
import { table3Evaluator, table3Main } from "../../src/cli/table3Command.js";
import { runTable3, sanitiseModelName, table3CacheFile, table3ModelList, table3Plan, TABLE3_TASKS, type Table3EvalRequest } from "../../src/report/table3Workflow.js";
import { checkWellFormedXml } from "./wellFormedXml.js";
import { BUNDLED_TOKENIZER } from "../testData.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const tokenizer = BUNDLED_TOKENIZER;

describe("table3 model list and cache files", () => {
    it("defaults to the published sizes of the family, smallest first", () => {
        expect(table3ModelList(undefined, "mamba1")).toEqual([
            "state-spaces/mamba-130m", "state-spaces/mamba-370m", "state-spaces/mamba-790m", "state-spaces/mamba-1.4b", "state-spaces/mamba-2.8b",
        ]);
        expect(table3ModelList(undefined, "mamba2")).toEqual([
            "state-spaces/mamba2-130m", "state-spaces/mamba2-370m", "state-spaces/mamba2-780m", "state-spaces/mamba2-1.3b", "state-spaces/mamba2-2.7b",
        ]);
    });

    it("--models: short published names get their org; ids and folders are kept", () => {
        expect(table3ModelList(["mamba-130m", " mamba2-2.7b", "EleutherAI/pythia-160m", "./ckpt/mine"], "mamba1"))
            .toEqual(["state-spaces/mamba-130m", "state-spaces/mamba2-2.7b", "EleutherAI/pythia-160m", "./ckpt/mine"]);
        expect(() => table3ModelList([" ", ""], "mamba1")).toThrow(new UsageError("--models: expected a comma-separated list of model ids"));
    });

    it("tasks and columns follow the family: Mamba-1 the Mamba paper's six, Mamba-2 the Mamba-2 paper's seven (with openbookqa)", () => {
        expect(table3Plan({ models: undefined, family: "mamba1" })).toMatchObject({ tasks: [...TABLE3_TASKS], layout: "mamba", title: undefined });
        expect(table3Plan({ models: undefined, family: "mamba2" })).toMatchObject({ tasks: [...TABLE3_TASKS, "openbookqa"], layout: "mamba2", title: undefined });
    });

    it("--paper mamba2-table3: the three public 2.7B checkpoints on seven tasks; --models replaces the checkpoints only", () => {
        const plan = table3Plan({ models: undefined, family: "mamba1", paper: "mamba2-table3" });
        expect(plan).toMatchObject({
            models: ["state-spaces/transformerpp-2.7b", "state-spaces/mamba2-2.7b", "state-spaces/mamba2attn-2.7b"],
            tasks: [...TABLE3_TASKS, "openbookqa"],
            layout: "mamba2",
        });
        expect(plan.title).toMatch(/^Mamba-2 paper \(arXiv 2405\.21060\), Table 3/);
        expect(table3Plan({ models: ["mamba2attn-2.7b"], family: "mamba1", paper: "mamba2-table3" }))
            .toMatchObject({ models: ["state-spaces/mamba2attn-2.7b"], tasks: [...TABLE3_TASKS, "openbookqa"] });
    });

    it("one cache file per model, named like lm-eval's sanitised model name", () => {
        expect(sanitiseModelName("state-spaces/mamba-130m")).toBe("state-spaces__mamba-130m");
        expect(table3CacheFile("cache", "state-spaces/mamba-1.4b")).toBe(join("cache", "state-spaces__mamba-1.4b.db"));
        expect(table3CacheFile(undefined, "state-spaces/mamba-1.4b")).toBeUndefined();
    });
});

describe("table3 end to end on the tiny fixture checkpoints", () => {
    const work = mkdtempSync(join(tmpdir(), "mamba-eval-table3-"));
    afterAll(() => rmSync(work, { recursive: true, force: true }));
    const out: string[] = [];
    const io = { out: (t: string) => void out.push(t), err: () => {}, errIsTTY: false };
    const args = (outputPath: string, models: string) => ({
        models, family: "mamba1", output_path: outputPath, use_cache: join(work, "cache"), log_samples: true,
        data_dir: join(dirname(fileURLToPath(import.meta.url)), "fixtures", "tasks"), threads: 1, tokenizer, reference: "paper",
    });

    it("runs each model with its own cache, writes md/csv/svg, and a rerun from the caches is bit-identical", async () => {
        // The bundled default checkpoint (Mamba-1) and its Mamba-2 sibling next to it.
        const modelList = [DEFAULT_MODEL_DIR, join(dirname(DEFAULT_MODEL_DIR), "neox-mamba2")];
        const models = modelList.join(",");
        await table3Main(args(join(work, "first"), models), io);
        for (const m of modelList) expect(existsSync(join(work, "cache", `${sanitiseModelName(m)}.db`))).toBe(true);
        const md = readFileSync(join(work, "first", "table3.md"), "utf8");
        expect(out.join("")).toContain(md);
        const csv = readFileSync(join(work, "first", "table3.csv"), "utf8").trimEnd().split("\n");
        expect(csv.map((line) => line.split(",")[0])).toEqual(["model", "neox-mamba1", "neox-mamba2"]);
        const svg = readFileSync(join(work, "first", "table3.svg"), "utf8");
        checkWellFormedXml(svg);
        expect(svg.match(/<rect class="bar ours"/g)).toHaveLength(12);
        expect(svg.match(/<rect class="bar reference"/g)).toBeNull();

        // The table's cells are the results files' numbers ×100.
        const results = readResultsFile(csv[1]!.split(",")[2]!);
        const winogrande = results.tasks.get("winogrande")!.get("acc,none")!.value * 100;
        expect(Number(csv[1]!.split(",")[23])).toBe(Number(winogrande.toFixed(1)));

        await table3Main(args(join(work, "second"), models.split(",")[0]!), io);
        const report = runCompare(join(work, "first", sanitiseModelName(models.split(",")[0]!)),
            join(work, "second", sanitiseModelName(models.split(",")[0]!)), { k: 2, floor: 0.001, exact: true });
        expect(report.samples?.tasks).toHaveLength(6);
        expect(report.failed).toBe(false);
    });

    it("--family mamba2 runs seven tasks and writes the seven-column table (OpenBookQA acc_norm, average of seven)", async () => {
        const err: string[] = [];
        const quiet = { out: () => {}, err: (t: string) => void err.push(t), errIsTTY: false };
        const modelList = [join(dirname(DEFAULT_MODEL_DIR), "neox-mamba2")];
        await table3Main({ ...args(join(work, "mamba2"), modelList.join(",")), family: "mamba2", use_cache: undefined, reference: undefined }, quiet);
        expect(err.join("")).toContain(`table3: [1/1] ${modelList[0]} on lambada_openai,hellaswag,piqa,arc_easy,arc_challenge,winogrande,openbookqa\n`);
        const csv = readFileSync(join(work, "mamba2", "table3.csv"), "utf8").trimEnd().split("\n");
        const header = csv[0]!.split(",");
        expect(header).toContain("openbookqa");
        expect(header).toContain("average_repro_diff");
        const results = readResultsFile(csv[1]!.split(",")[2]!);
        const obqa = results.tasks.get("openbookqa")!.get("acc_norm,none")!.value * 100;
        expect(Number(csv[1]!.split(",")[header.indexOf("openbookqa")])).toBe(Number(obqa.toFixed(1)));
        // The average is over the seven accuracy columns.
        const keys = ["lambadaAcc", "hellaswag", "piqa", "arcEasy", "arcChallenge", "winogrande", "openbookqa"];
        const fields = csv[1]!.split(",");
        const seven = [["lambada_openai", "acc,none"], ["hellaswag", "acc_norm,none"], ["piqa", "acc,none"], ["arc_easy", "acc,none"],
            ["arc_challenge", "acc_norm,none"], ["winogrande", "acc,none"], ["openbookqa", "acc_norm,none"]]
            .map(([task, metric]) => results.tasks.get(task!)!.get(metric!)!.value * 100);
        expect(keys.every((k) => header.includes(k))).toBe(true);
        expect(Number(fields[header.indexOf("average")])).toBe(Number((seven.reduce((a, b) => a + b, 0) / 7).toFixed(1)));
        const md = readFileSync(join(work, "mamba2", "table3.md"), "utf8");
        expect(md.split("\n")[0]).toBe("# Table 3 (zero-shot, lm-eval) — compared with no published rows");
        expect(md).toContain("OpenBookQA ↑");
    });

    it("--paper mamba2-table3 asks for the three checkpoints on seven tasks and prints Table 3 beside both references", async () => {
        // The 2.7B checkpoints cannot run here: this evaluator answers with lm-eval-format results files of those models.
        const fixtures = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "mamba2-table3");
        const asked: Table3EvalRequest[] = [];
        const outcome = await runTable3(
            { models: undefined, family: "mamba1", paper: "mamba2-table3", device: "cuda", batchSize: "auto", outputPath: join(work, "preset"), useCache: undefined, reference: undefined, log: () => {} },
            async (request) => {
                asked.push(request);
                return join(fixtures, sanitiseModelName(request.model), "results_2026-03-10T12-00-00.000000.json");
            },
        );
        expect(asked.map((r) => [r.model, r.tasks.join(","), r.next])).toEqual([
            ["state-spaces/transformerpp-2.7b", [...TABLE3_TASKS, "openbookqa"].join(","), "state-spaces/mamba2-2.7b"],
            ["state-spaces/mamba2-2.7b", [...TABLE3_TASKS, "openbookqa"].join(","), "state-spaces/mamba2attn-2.7b"],
            ["state-spaces/mamba2attn-2.7b", [...TABLE3_TASKS, "openbookqa"].join(","), undefined],
        ]);
        expect(outcome.table.referenceKinds).toEqual(["paper", "repro"]);
        expect(outcome.table.rows.map((r) => r.reference?.model)).toEqual(["Transformer++", "Mamba-2", "Mamba-2-Attention"]);
        const lines = outcome.markdown.split("\n");
        expect(lines[0]).toBe("# Mamba-2 paper (arXiv 2405.21060), Table 3: 2.7B models, 300B tokens of the Pile (zero-shot, lm-eval) — " +
            "compared with Mamba-2 paper (arXiv 2405.21060), Table 3; lm-eval 0.4.9.1 reproduction (paper_tables.md §C.1)");
        expect(outcome.markdown).toContain("| Mamba-2-MLP (not run)");
        expect(readFileSync(outcome.written.markdown, "utf8")).toBe(outcome.markdown);
        checkWellFormedXml(readFileSync(outcome.written.svg, "utf8"));
    });

    it("--state_budget_gb reaches every model's LM: a budget of two saved states (replays forced) gives the same results", async () => {
        const model = DEFAULT_MODEL_DIR;
        const run = async (outputPath: string, budget: number | undefined) => {
            const err: string[] = [];
            const a = { ...args(outputPath, model), use_cache: undefined, ...(budget !== undefined ? { state_budget_gb: budget } : {}) };
            await table3Main(a, { out: () => {}, err: (t: string) => void err.push(t), errIsTTY: false });
            return Number(/token steps: (\d+)/.exec(err.join(""))![1]);
        };
        const plentySteps = await run(join(work, "budget-default"), undefined);
        const tinySteps = await run(join(work, "budget-tiny"), 1e-6);  // ≈ 1 KiB: the LM keeps its minimum of two slots
        expect(tinySteps).toBeGreaterThan(plentySteps);  // the small budget really bound the scheduler: it replayed prefixes
        const results = readResultsFile(readFileSync(join(work, "budget-tiny", "table3.csv"), "utf8").trimEnd().split("\n")[1]!.split(",")[2]!);
        expect(results.modelArgs).toEqual({ pretrained: model, state_budget_gb: 1e-6 });
        expect(results.modelId).toBe(model);
        const report = runCompare(join(work, "budget-default", sanitiseModelName(model)), join(work, "budget-tiny", sanitiseModelName(model)),
            { k: 2, floor: 0.001, exact: true });
        expect(report.samples?.tasks).toHaveLength(6);
        expect(report.failed).toBe(false);
    });

    it("opening the next model while one runs (as on a GPU) gives the same results files", async () => {
        const modelList = [DEFAULT_MODEL_DIR, join(dirname(DEFAULT_MODEL_DIR), "neox-mamba2")];
        const run = async (outputPath: string, ahead: boolean) => {
            const a = { ...args(outputPath, modelList.join(",")), use_cache: undefined, log_samples: true };
            return runTable3(
                { models: modelList, family: "mamba1", device: undefined, batchSize: undefined, outputPath, useCache: undefined, reference: "paper", log: () => {} },
                table3Evaluator(io, a, undefined, () => ahead),
            );
        };
        await run(join(work, "alone"), false);
        const outcome = await run(join(work, "ahead"), true);
        expect(outcome.failures).toEqual([]);
        for (const m of modelList) {
            const report = runCompare(join(work, "alone", sanitiseModelName(m)), join(work, "ahead", sanitiseModelName(m)), { k: 2, floor: 0.001, exact: true });
            expect(report.samples?.tasks).toHaveLength(6);
            expect(report.failed).toBe(false);
        }
    });
});
