/**
 * The Table-3 view against hand-computed values from the fixture results:
 *   mamba-130m (runs/base): LAMBADA ppl 16.045037 → 16.05; acc 2276/5153 = 44.168 → 44.2; HellaSwag acc_norm
 *   3540/10042 = 35.252 → 35.3; PIQA 1186/1838 = 64.527 → 64.5; ARC-E 1140/2376 = 47.980 → 48.0; ARC-C acc_norm
 *   282/1172 = 24.061 → 24.1; WinoGrande 665/1267 = 52.486 → 52.5; average (44.168+35.252+64.527+47.980+24.061+52.486)/6
 *   = 44.746 → 44.7. Paper (Mamba Table 3): 16.07 44.3 35.3 64.5 48.0 24.3 51.9; average recomputed 268.3/6 = 44.72 → 44.7.
 *   mamba-790m (table/state-spaces__mamba-790m-hf): acc 3167/5153 = 61.459 → 61.5 vs 62.7 → −1.2; average
 *   (61.459+55.009+71.926+61.069+29.352+56.275)/6 = 55.848 → 55.8; paper recomputed 336.7/6 = 56.12 → 56.1 (it prints 57.1).
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
import { tableMain } from "../../src/cli/tableCommand.js";
import { checkWellFormedXml } from "./wellFormedXml.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const BASE = join(FIXTURES, "runs", "base");
const TABLE = join(FIXTURES, "table");
const table = loadTable3([BASE, TABLE], "paper");
const rowOf = (model: string) => table.rows.find((r) => r.model === model)!;

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
});
