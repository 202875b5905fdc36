/**
 * The transcribed published numbers (src/report/paperTables.ts) against their source,
 * paper_tables.md in the task data folder (MAMBA_EVAL_DATA), parsed here independently of the transcription.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { LM_EVAL_REPRODUCTION, MAMBA2_TABLE10, MAMBA2_TABLE3, MAMBA_TABLE3, referenceRowFor, type ReferenceRow } from "../../src/report/paperTables.js";
import { describeWithData, taskDataDir } from "../testData.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const paperTablesPath = taskDataDir === undefined ? undefined : resolve(taskDataDir, "paper_tables.md");

/** The markdown table that follows `heading`, as header → cell text records. */
function tableAfter(markdown: string, heading: string): Array<Record<string, string>> {
    const start = markdown.indexOf(heading);
    if (start < 0) throw new Error(`heading not found: ${heading}`);
    const lines = markdown.slice(start).split("\n");
    const first = lines.findIndex((l) => l.startsWith("| Model"));
    const rows: string[][] = [];
    for (const line of lines.slice(first)) {
        if (!line.startsWith("|")) break;
        rows.push(line.split("|").slice(1, -1).map((c) => c.trim()));
    }
    const [header, , ...body] = rows;
    return body.map((cells) => Object.fromEntries(header!.map((h, i) => [h, cells[i] ?? ""])));
}

const num = (text: string | undefined): number | null => {
    const cleaned = (text ?? "").replace(/\*|\(†\)/g, "").trim();
    return cleaned === "—" || cleaned === "" ? null : Number(cleaned);
};

function expectRowsMatch(parsed: Array<Record<string, string>>, rows: readonly ReferenceRow[], averageHeader: string, withObqa: boolean) {
    expect(rows.map((r) => r.model)).toEqual(parsed.map((p) => p["Model"]!.replaceAll("**", "")));
    parsed.forEach((p, i) => {
        const r = rows[i]!;
        expect([r.model, r.values]).toEqual([r.model, {
            lambadaPpl: num(p["LAMBADA ppl"]),
            lambadaAcc: num(p["LAMBADA acc"]),
            hellaswag: num(p["HellaSwag"]),
            piqa: num(p["PIQA"]),
            arcEasy: num(p["ARC-E"]),
            arcChallenge: num(p["ARC-C"]),
            winogrande: num(p["WinoGrande"]),
        }]);
        expect([r.model, r.average]).toEqual([r.model, num(p[averageHeader])]);
        if (withObqa) expect([r.model, r.openbookqa]).toEqual([r.model, num(p["OpenBookQA"])]);
    });
}

describeWithData("published numbers match paper_tables.md", () => {
    const markdown = paperTablesPath !== undefined && existsSync(paperTablesPath) ? readFileSync(paperTablesPath, "utf8") : "";

    it("Mamba paper, Table 3 (every row)", () => {
        expectRowsMatch(tableAfter(markdown, "## A. Mamba paper"), MAMBA_TABLE3, "Average", false);
    });

    it("Mamba-2 paper, Table 10 (every row)", () => {
        expectRowsMatch(tableAfter(markdown, "## B. Mamba-2 paper"), MAMBA2_TABLE10, "Average (7)", true);
    });

    it("lm-eval 0.4.9.1 reproduction, §C.1 (the eight state-spaces rows, fractions → ×100)", () => {
        const start = markdown.indexOf("### C.1");
        const lines = markdown.slice(start).split("\n").filter((l) => l.startsWith("| mamba") || l.startsWith("| transformerpp"));
        const first = (cell: string) => Number(cell.trim().split(/[ /]+/)[0]);
        const second = (cell: string) => Number(cell.trim().split(" / ")[1]);
        const parsed = lines.map((line) => {
            const c = line.split("|").slice(1, -1);
            return {
                model: c[0]!.trim(),
                values: {
                    lambadaPpl: first(c[1]!), lambadaAcc: first(c[2]!) * 100, hellaswag: second(c[3]!) * 100, piqa: first(c[4]!) * 100,
                    arcEasy: first(c[5]!) * 100, arcChallenge: second(c[6]!) * 100, winogrande: first(c[7]!) * 100,
                },
                obqa: second(c[8]!) * 100,
            };
        });
        expect(parsed).toHaveLength(8);
        for (const p of parsed) {
            const row = LM_EVAL_REPRODUCTION.find((r) => r.model === p.model)!;
            for (const [key, value] of Object.entries(p.values)) {
                expect([p.model, key, row.values[key as keyof typeof row.values]]).toEqual([p.model, key, expect.closeTo(value, 9)]);
            }
            expect(row.openbookqa).toBeCloseTo(p.obqa, 9);
        }
    });

    it("Mamba-2 paper, Table 3 (every row)", () => {
        expectRowsMatch(tableAfter(markdown, "The Mamba-2 paper's Table 3"), MAMBA2_TABLE3, "Average", true);
    });
});

describe("which published row a model is compared with", () => {
    it("every published checkpoint id resolves", () => {
        const ids = ["mamba-130m", "mamba-370m", "mamba-790m", "mamba-1.4b", "mamba-2.8b",
            "mamba2-130m", "mamba2-370m", "mamba2-780m", "mamba2-1.3b", "mamba2-2.7b", "transformerpp-2.7b", "mamba2attn-2.7b",
            "pythia-160m", "pythia-410m", "pythia-1b", "pythia-1.4b", "pythia-2.8b", "pythia-6.9b"];
        expect(ids.filter((id) => referenceRowFor(id, "paper") === undefined)).toEqual([]);
        expect(referenceRowFor("mamba-1.4b", "paper")).toMatchObject({ source: "mamba-t3", values: { lambadaAcc: 64.9 } });
        expect(referenceRowFor("mamba2-2.7b", "paper")).toMatchObject({ source: "mamba2-t10", values: { piqa: 76.4 } });
        expect(referenceRowFor("mamba2attn-2.7b", "paper")).toMatchObject({ source: "mamba2-t3", model: "Mamba-2-Attention" });
        expect(referenceRowFor("mamba-2.8b-slimpj", "paper")).toBeUndefined();
        expect(referenceRowFor("mamba-2.8b-slimpj", "repro")).toMatchObject({ values: { lambadaAcc: null, hellaswag: 70.97 } });
        expect(referenceRowFor("mamba-790m", "repro")).toMatchObject({ values: { lambadaPpl: 6.0149, lambadaAcc: 61.46 } });
    });
});
