/**
 * The Table-3 view against hand-computed values from the fixture results:
 *   mamba-130m (runs/base): LAMBADA ppl 16.045037 → 16.05; acc 2276/5153 = 44.168 → 44.2; HellaSwag acc_norm
 *   3540/10042 = 35.252 → 35.3; PIQA 1186/1838 = 64.527 → 64.5; ARC-E 1140/2376 = 47.980 → 48.0; ARC-C acc_norm
 *   282/1172 = 24.061 → 24.1; WinoGrande 665/1267 = 52.486 → 52.5; average (44.168+35.252+64.527+47.980+24.061+52.486)/6
 *   = 44.746 → 44.7. Paper (Mamba Table 3): 16.07 44.3 35.3 64.5 48.0 24.3 51.9; average recomputed 268.3/6 = 44.72 → 44.7.
 *   mamba-790m (table/state-spaces__mamba-790m-hf): acc 3167/5153 = 61.459 → 61.5 vs 62.7 → −1.2; average
 *   (61.459+55.009+71.926+61.069+29.352+56.275)/6 = 55.848 → 55.8; paper recomputed 336.7/6 = 56.12 → 56.1 (it prints 57.1).
 *
 * The Mamba-2 view (fixtures/mamba2-table3, seven tasks): mamba2attn-2.7b: LAMBADA ppl 3.848913 → 3.85; acc 3661/5153
 *   = 71.046 → 71.0; HellaSwag acc_norm 6807/10042 = 67.785 → 67.8; PIQA 1392/1838 = 75.734 → 75.7; ARC-E 1660/2376
 *   = 69.865 → 69.9; ARC-C acc_norm 444/1172 = 37.884 → 37.9; WinoGrande 825/1267 = 65.114 → 65.1; OpenBookQA acc_norm
 *   195/500 = 39.0; average of seven 426.43/7 = 60.918 → 60.9. Mamba-2 paper Table 3 (Mamba-2-Attention): 3.85 71.1 67.8
 *   75.8 69.9 37.8 65.3 39.0, average 426.7/7 = 60.957 → 61.0 (printed 61.0); Δ 0.00 −0.1 0.0 −0.1 0.0 +0.1 −0.2 0.0 −0.1.
 *   Reproduction: 3.8489 → 3.85, 71.05 (the double just below) → 71.0, 67.79 → 67.8, 75.73 → 75.7, 69.87 → 69.9,
 *   37.88 → 37.9, 65.11 → 65.1, 39.00; average 426.43/7 = 60.919 → 60.9; Δ all 0.
 *   transformerpp-2.7b: OpenBookQA 203/500 = 40.6 vs Table 3's 40.4 → +0.2; average (70.270+66.371+75.190+67.761+37.799
 *   +63.773+40.600)/7 = 60.252 → 60.3 vs 421.7/7 = 60.243 → 60.2 → +0.1.
 *   mamba-130m (runs/base) in a seven-column table: Mamba-2 Table 10's Mamba-130M row (HellaSwag 35.2, ARC-C 24.2,
 *   OpenBookQA 28.8; average 296.9/7 = 42.41 → 42.4); it has no openbookqa results, so no average of ours.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { normaliseModelName } from "../../src/report/modelName.js";
import { renderTable3Csv, renderTable3Markdown } from "../../src/report/renderTable3.js";
import { renderTable3Svg } from "../../src/report/renderSvg.js";
import { loadTable3 } from "../../src/report/runTable.js";
import type { Table3Row } from "../../src/report/table3.js";
import { tableMain } from "../../src/cli/tableCommand.js";
import { checkWellFormedXml } from "./wellFormedXml.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const BASE = join(FIXTURES, "runs", "base");
const TABLE = join(FIXTURES, "table");
const MAMBA2 = join(FIXTURES, "mamba2-table3");
const table = loadTable3([BASE, TABLE], "paper");
const rowOf = (model: string) => table.rows.find((r) => r.model === model)!;
const table3Of = (paths: string[]) => loadTable3(paths);

describe("model names → published rows", () => {
    it.each([
        ["state-spaces/mamba-130m", "mamba-130m"],
        ["state-spaces/mamba-2.8b-hf", "mamba-2.8b"],
        ["/root/.cache/huggingface/hub/models--state-spaces--mamba2-370m/snapshots/0123abcd", "mamba2-370m"],
        ["./checkpoints/Mamba-790M/", "mamba-790m"],
        ["EleutherAI/gpt-neo-1.3B", "gpt-neo-1.3b"],
        ["mamba-1.4b", "mamba-1.4b"],
    ])("%s → %s", (id, name) => {
        expect(normaliseModelName(id)).toBe(name);
    });

    it("matches each fixture to its paper row (Mamba-1 → Mamba Table 3, Mamba-2 → Mamba-2 Table 10, unknown → none)", () => {
        expect(table.rows.map((r) => [r.model, r.reference?.model ?? null, r.reference?.source ?? null])).toEqual([
            ["mamba-130m", "Mamba-130M", "mamba-t3"],
            ["mamba2-130m", "Mamba-2-130M", "mamba2-t10"],
            ["my-mamba-finetune", null, null],
            ["mamba-790m", "Mamba-790M", "mamba-t3"],
        ]);
    });
});

describe("rows, average and differences", () => {
    it("mamba-130m", () => {
        const row = rowOf("mamba-130m");
        const ours = Object.fromEntries(Object.entries(row.cells).map(([k, c]) => [k, c.ours]));
        expect(ours).toEqual({ lambadaPpl: 16.05, lambadaAcc: 44.2, hellaswag: 35.3, piqa: 64.5, arcEasy: 48.0, arcChallenge: 24.1, winogrande: 52.5 });
        const diffs = Object.fromEntries(Object.entries(row.cells).map(([k, c]) => [k, c.diff]));
        expect(diffs).toEqual({ lambadaPpl: -0.02, lambadaAcc: -0.1, hellaswag: 0, piqa: 0, arcEasy: 0, arcChallenge: -0.2, winogrande: 0.6 });
        expect(row.average.oursExact).toBeCloseTo(44.7457, 3);
        expect(row.average).toMatchObject({ ours: 44.7, reference: 44.7, diff: 0 });
    });

    it("mamba-790m: the paper's printed 57.1 is replaced by the recomputed 56.1", () => {
        const row = rowOf("mamba-790m");
        expect(row.cells.lambadaAcc).toMatchObject({ ours: 61.5, reference: 62.7, diff: -1.2 });
        expect(row.cells.lambadaPpl).toMatchObject({ ours: 6.01, reference: 6.02, diff: -0.01 });
        expect(row.reference!.average).toBe(57.1);
        expect(row.average.oursExact).toBeCloseTo(55.848, 2);
        expect(row.average).toMatchObject({ ours: 55.8, reference: 56.1, diff: -0.3 });
    });

    it("a run without WinoGrande has no average, and no published row means no differences", () => {
        const row = rowOf("my-mamba-finetune");
        expect(row.cells.winogrande.ours).toBeNull();
        expect(row.average.ours).toBeNull();
        expect(row.cells.lambadaAcc).toMatchObject({ ours: 44.2, reference: null, diff: null });
    });

    it("--reference repro compares with the lm-eval 0.4.9.1 reproduction instead", () => {
        const repro = loadTable3([BASE], "repro").rows[0]!;
        expect(repro.reference?.source).toBe("repro");
        expect(repro.cells.arcChallenge).toMatchObject({ ours: 24.1, reference: 24.1, diff: 0 });
        expect(repro.cells.winogrande).toMatchObject({ ours: 52.5, reference: 52.5, diff: 0 });
    });
});

describe("output formats", () => {
    it("markdown: ours / paper / Δ lines with the shown decimals", () => {
        const md = renderTable3Markdown(table);
        const lines = md.split("\n");
        expect(lines[0]).toMatch(/^\| Model +\| +\| LAMBADA ppl ↓ \| LAMBADA acc ↑ \| HellaSwag ↑ \| PIQA ↑ \| ARC-E ↑ \| ARC-C ↑ \| WinoGrande ↑ \| Average ↑ \|$/);
        const cells = (line: string) => line.split("|").slice(1, -1).map((c) => c.trim());
        expect(cells(lines[2]!)).toEqual(["mamba-130m", "ours", "16.05", "44.2", "35.3", "64.5", "48.0", "24.1", "52.5", "44.7"]);
        expect(cells(lines[3]!)).toEqual(["", "paper", "16.07", "44.3", "35.3", "64.5", "48.0", "24.3", "51.9", "44.7"]);
        expect(cells(lines[4]!)).toEqual(["", "Δ", "−0.02", "−0.1", "0.0", "0.0", "0.0", "−0.2", "+0.6", "0.0"]);
        expect(cells(lines[8]!)).toEqual(["my-mamba-finetune", "ours", "16.05", "44.2", "35.3", "64.5", "48.0", "24.1", "—", "—"]);
        expect(md).toContain("HellaSwag = hellaswag acc_norm");
    });

    it("CSV: one line per model with ours, reference and diff per column", () => {
        const csv = renderTable3Csv(table).trimEnd().split("\n");
        expect(csv).toHaveLength(5);
        expect(csv[0]).toBe("model,model_id,results_file,reference_model,reference_source," +
            "lambadaPpl,lambadaPpl_reference,lambadaPpl_diff,lambadaAcc,lambadaAcc_reference,lambadaAcc_diff," +
            "hellaswag,hellaswag_reference,hellaswag_diff,piqa,piqa_reference,piqa_diff,arcEasy,arcEasy_reference,arcEasy_diff," +
            "arcChallenge,arcChallenge_reference,arcChallenge_diff,winogrande,winogrande_reference,winogrande_diff,average,average_reference,average_diff");
        const fields = csv[4]!.split(",");
        expect(fields.slice(0, 2)).toEqual(["mamba-790m", "state-spaces/mamba-790m-hf"]);
        // The source name contains commas, so csv-stringify quotes it.
        expect(csv[4]).toContain(',Mamba-790M,"Mamba paper (arXiv 2312.00752), Table 3",6.01,6.02,-0.01,61.5,62.7,-1.2,');
        expect(csv[4]!.endsWith(",55.8,56.1,-0.3")).toBe(true);
        expect(csv[3]!.endsWith(",24.1,,,,,,,,")).toBe(true);
    });

    it("SVG: well-formed XML with 2 bars per task for models with a published row, 1 otherwise", () => {
        const svg = renderTable3Svg(table);
        const elements = checkWellFormedXml(svg);
        expect(elements[0]).toBe("svg");
        expect(elements.filter((e) => e === "g")).toHaveLength(4);
        const ours = svg.match(/<rect class="bar ours"/g) ?? [];
        const reference = svg.match(/<rect class="bar reference"/g) ?? [];
        expect(ours).toHaveLength(6 + 6 + 5 + 6); // my-mamba-finetune has no WinoGrande
        expect(reference).toHaveLength(6 + 6 + 6);
        expect(svg).toContain(">mamba-790m — LAMBADA ppl 6.01 (paper 6.02) · average 55.8 (paper 56.1)</text>");
        expect(svg).toContain(">Δ −1.2</text>");
        expect(svg).toContain("<title>mamba-130m WinoGrande ours: 52.5</title>");
    });
});

describe("the Mamba-2 view: seven tasks with OpenBookQA, the paper and the lm-eval reproduction", () => {
    const preset = loadTable3([MAMBA2], { paper: "mamba2-table3" });
    const row = (model: string) => preset.rows.find((r) => r.model === model)!;
    const shown = (r: Table3Row) => Object.fromEntries(Object.entries(r.cells).map(([k, c]) => [k, [c.ours, ...c.comparisons.flatMap((x) => [x.reference, x.diff])]]));

    it("--paper mamba2-table3: seven columns, Table 3's rows, both references, the paper's rows without a checkpoint", () => {
        expect(preset.layout).toBe("mamba2");
        expect(preset.referenceKinds).toEqual(["paper", "repro"]);
        expect(preset.columns.map((c) => c.label)).toEqual(["LAMBADA ppl", "LAMBADA acc", "HellaSwag", "PIQA", "ARC-E", "ARC-C", "WinoGrande", "OpenBookQA"]);
        expect(preset.columns.at(-1)).toMatchObject({ task: "openbookqa", metric: "acc_norm,none" });
        expect(preset.rows.map((r) => [r.model, r.references.map((x) => x && `${x.source}: ${x.model}`)])).toEqual([
            ["mamba2-2.7b", ["mamba2-t3: Mamba-2", "repro: mamba2-2.7b"]],
            ["mamba2attn-2.7b", ["mamba2-t3: Mamba-2-Attention", "repro: mamba2attn-2.7b"]],
            ["transformerpp-2.7b", ["mamba2-t3: Transformer++", "repro: transformerpp-2.7b"]],
        ]);
        expect(preset.publishedOnly.map((r) => r.model)).toEqual(["Mamba-2-MLP", "Mamba-2-MLP-Attention"]);
    });

    it("mamba2attn-2.7b: ours, paper and Δ, reproduction and Δ per column; the average of seven", () => {
        const r = row("mamba2attn-2.7b");
        expect(shown(r)).toEqual({
            lambadaPpl: [3.85, 3.85, 0, 3.85, 0],
            lambadaAcc: [71.0, 71.1, -0.1, 71.0, 0],
            hellaswag: [67.8, 67.8, 0, 67.8, 0],
            piqa: [75.7, 75.8, -0.1, 75.7, 0],
            arcEasy: [69.9, 69.9, 0, 69.9, 0],
            arcChallenge: [37.9, 37.8, 0.1, 37.9, 0],
            winogrande: [65.1, 65.3, -0.2, 65.1, 0],
            openbookqa: [39.0, 39.0, 0, 39.0, 0],
        });
        expect(r.average.oursExact).toBeCloseTo(60.9185, 3);
        expect(r.average.comparisons).toEqual([{ reference: 61.0, diff: -0.1 }, { reference: 60.9, diff: 0 }]);
        expect(row("transformerpp-2.7b").cells.openbookqa).toMatchObject({ ours: 40.6, comparisons: [{ reference: 40.4, diff: 0.2 }, { reference: 40.6, diff: 0 }] });
        expect(row("transformerpp-2.7b").average).toMatchObject({ ours: 60.3, comparisons: [{ reference: 60.2, diff: 0.1 }, { reference: 60.3, diff: 0 }] });
    });

    it("without --paper, OpenBookQA results choose the seven columns; Table 10 comes first, also for a Mamba-1 size", () => {
        const table = loadTable3([BASE, MAMBA2]);
        expect(table.layout).toBe("mamba2");
        expect(table.referenceKinds).toEqual(["paper", "repro"]);
        expect(table.publishedOnly).toEqual([]);
        expect(table.rows.map((r) => r.reference && `${r.reference.source}: ${r.reference.model}`)).toEqual([
            "mamba2-t10: Mamba-130M", "mamba2-t10: Mamba-2-2.7B", "mamba2-t3: Mamba-2-Attention", "mamba2-t3: Transformer++",
        ]);
        const mamba130m = table.rows[0]!;
        expect(mamba130m.cells.hellaswag.comparisons[0]).toEqual({ reference: 35.2, diff: 0.1 });
        expect(mamba130m.cells.openbookqa).toMatchObject({ ours: null, comparisons: [{ reference: 28.8, diff: null }, { reference: 28.4, diff: null }] });
        expect(mamba130m.average).toMatchObject({ ours: null, comparisons: [{ reference: 42.4, diff: null }, { reference: 42.4, diff: null }] });
        // One reference when asked for one; six-task results keep the Mamba paper's view (the fixtures above).
        expect(loadTable3([MAMBA2], "repro").referenceKinds).toEqual(["repro"]);
        expect(table3Of([BASE]).layout).toBe("mamba");
    });

    it("markdown: an OpenBookQA column, paper / Δ paper / reproduction / Δ reproduction lines, the paper-only rows", () => {
        const md = renderTable3Markdown(preset);
        const lines = md.split("\n");
        const cells = (line: string) => line.split("|").slice(1, -1).map((c) => c.trim());
        expect(cells(lines[0]!)).toEqual(["Model", "", "LAMBADA ppl ↓", "LAMBADA acc ↑", "HellaSwag ↑", "PIQA ↑", "ARC-E ↑", "ARC-C ↑", "WinoGrande ↑", "OpenBookQA ↑", "Average ↑"]);
        expect(lines.slice(7, 12).map(cells)).toEqual([
            ["mamba2attn-2.7b", "ours", "3.85", "71.0", "67.8", "75.7", "69.9", "37.9", "65.1", "39.0", "60.9"],
            ["", "paper", "3.85", "71.1", "67.8", "75.8", "69.9", "37.8", "65.3", "39.0", "61.0"],
            ["", "Δ paper", "0.00", "−0.1", "0.0", "−0.1", "0.0", "+0.1", "−0.2", "0.0", "−0.1"],
            ["", "reproduction", "3.85", "71.0", "67.8", "75.7", "69.9", "37.9", "65.1", "39.0", "60.9"],
            ["", "Δ reproduction", "0.00", "0.0", "0.0", "0.0", "0.0", "0.0", "0.0", "0.0", "0.0"],
        ]);
        // Mamba-2-MLP: 69.3+65.0+76.4+68.1+37.0+63.1+38.2 = 417.1 / 7 = 59.59 → 59.6.
        expect(cells(lines[17]!)).toEqual(["Mamba-2-MLP (not run)", "paper", "4.18", "69.3", "65.0", "76.4", "68.1", "37.0", "63.1", "38.2", "59.6"]);
        expect(cells(lines[18]!)).toEqual(["Mamba-2-MLP-Attention (not run)", "paper", "3.95", "70.0", "66.6", "75.4", "70.6", "38.6", "64.6", "39.2", "60.7"]);
        expect(md).toContain("OpenBookQA = openbookqa acc_norm");
        expect(md).toContain("Average = mean of the seven");
        expect(md).toContain("- Mamba-2-MLP (not run): Mamba-2-MLP, Mamba-2 paper (arXiv 2405.21060), Table 3");
    });

    it("CSV: per column ours, then reference and diff for the paper and the reproduction", () => {
        const csv = renderTable3Csv(preset).trimEnd().split("\n");
        expect(csv).toHaveLength(4);
        const header = csv[0]!.split(",");
        expect(header.slice(0, 7)).toEqual(["model", "model_id", "results_file", "paper_model", "paper_source", "repro_model", "repro_source"]);
        expect(header.slice(-10)).toEqual(["openbookqa", "openbookqa_paper", "openbookqa_paper_diff", "openbookqa_repro", "openbookqa_repro_diff",
            "average", "average_paper", "average_paper_diff", "average_repro", "average_repro_diff"]);
        expect(csv[2]!.endsWith(",39.0,39.0,0.0,39.0,0.0,60.9,61.0,-0.1,60.9,0.0")).toBe(true);
    });

    it("SVG: three bars per task (ours, paper, reproduction) over seven tasks", () => {
        const svg = renderTable3Svg(preset);
        checkWellFormedXml(svg);
        expect(svg.match(/<rect class="bar ours"/g)).toHaveLength(3 * 7);
        expect(svg.match(/<rect class="bar reference paper"/g)).toHaveLength(3 * 7);
        expect(svg.match(/<rect class="bar reference repro"/g)).toHaveLength(3 * 7);
        expect(svg).toContain(">mamba2attn-2.7b — LAMBADA ppl 3.85 (paper 3.85, lm-eval reproduction 3.85) · average 60.9 (paper 61.0, lm-eval reproduction 60.9)</text>");
        expect(svg).toContain(">Δ paper −0.2</text>");
        expect(svg).toContain("<title>transformerpp-2.7b OpenBookQA lm-eval reproduction: 40.6</title>");
    });
});

describe("table command", () => {
    const dir = mkdtempSync(join(tmpdir(), "mamba-eval-table-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("writes the format --out implies and refuses a contradicting --format", () => {
        let said = "";
        tableMain({ results: [BASE], format: undefined, out: join(dir, "t.csv"), reference: "paper" }, (t) => { said += t; });
        expect(said).toBe(`wrote ${join(dir, "t.csv")}\n`);
        expect(readFileSync(join(dir, "t.csv"), "utf8").split("\n")[1]).toMatch(/^mamba-130m,/);
        expect(() => tableMain({ results: [BASE], format: "svg", out: join(dir, "t.md"), reference: "paper" }, () => {}))
            .toThrow(`--format svg does not match --out ${join(dir, "t.md")} (a .md file)`);
    });

    it("--reference both and --paper mamba2-table3 reach the view", () => {
        let md = "";
        tableMain({ results: [BASE], format: undefined, out: undefined, reference: "both" }, (t) => { md += t; });
        expect(md.split("\n").slice(2, 7).map((l) => l.split("|")[2]!.trim())).toEqual(["ours", "paper", "Δ paper", "reproduction", "Δ reproduction"]);
        let preset = "";
        tableMain({ results: [MAMBA2], format: "csv", out: undefined, paper: "mamba2-table3" }, (t) => { preset += t; });
        expect(preset.split("\n")[1]).toMatch(/^mamba2-2\.7b,state-spaces\/mamba2-2\.7b,.*,Mamba-2,"Mamba-2 paper \(arXiv 2405\.21060\), Table 3",mamba2-2\.7b,/);
    });
});
