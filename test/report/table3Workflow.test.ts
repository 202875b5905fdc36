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
import { runTable3, sanitiseModelName, table3CacheFile, table3ModelList } from "../../src/report/table3Workflow.js";
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
