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
            openbookqa: withObqa ? num(p["OpenBookQA"]) : null,
        }]);
        expect([r.model, r.average, r.averageOver]).toEqual([r.model, num(p[averageHeader]), withObqa ? 7 : 6]);
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

    it("lm-eval 0.4.9.1 reproduction, §C.1: every printed number of the eight state-spaces rows, and the paper metric ×100", () => {
        const start = markdown.indexOf("### C.1");
        const lines = markdown.slice(start).split("\n").filter((l) => l.startsWith("| mamba") || l.startsWith("| transformerpp"));
        // "0.3077 / 0.3525" → [acc, acc_norm]; "16.0450 (0.5092)" → value without its stderr.
        const pair = (cell: string) => cell.trim().split(" / ").map(Number);
        const value = (cell: string) => Number(cell.trim().split(" ")[0]);
        const parsed = lines.map((line) => {
            const c = line.split("|").slice(1, -1);
            const [hellaswag, piqa, arcEasy, arcChallenge, openbookqa] = [c[3]!, c[4]!, c[5]!, c[6]!, c[8]!].map(pair);
            return {
                model: c[0]!.trim(),
                printed: {
                    "lambada_openai/perplexity": value(c[1]!), "lambada_openai/acc": value(c[2]!),
                    "hellaswag/acc": hellaswag![0], "hellaswag/acc_norm": hellaswag![1], "piqa/acc": piqa![0], "piqa/acc_norm": piqa![1],
                    "arc_easy/acc": arcEasy![0], "arc_easy/acc_norm": arcEasy![1], "arc_challenge/acc": arcChallenge![0], "arc_challenge/acc_norm": arcChallenge![1],
                    "winogrande/acc": value(c[7]!), "openbookqa/acc": openbookqa![0], "openbookqa/acc_norm": openbookqa![1],
                },
            };
        });
        expect(parsed.map((p) => p.model)).toEqual(["mamba-130m", "mamba-370m", "mamba-790m", "mamba-1.4b", "mamba-2.8b", "mamba2-2.7b", "transformerpp-2.7b", "mamba2attn-2.7b"]);
        for (const p of parsed) {
            const row = LM_EVAL_REPRODUCTION.find((r) => r.model === p.model)!;
            expect([p.model, row.printed]).toEqual([p.model, p.printed]);
            const pct = (key: keyof typeof p.printed) => p.printed[key]! * 100;
            const expected = {
                lambadaPpl: p.printed["lambada_openai/perplexity"], lambadaAcc: pct("lambada_openai/acc"), hellaswag: pct("hellaswag/acc_norm"),
                piqa: pct("piqa/acc"), arcEasy: pct("arc_easy/acc"), arcChallenge: pct("arc_challenge/acc_norm"), winogrande: pct("winogrande/acc"),
                openbookqa: pct("openbookqa/acc_norm"), // the reproduction's paper metric for OpenBookQA
            };
            for (const [key, v] of Object.entries(expected)) {
                expect([p.model, key, row.values[key as keyof typeof row.values]]).toEqual([p.model, key, expect.closeTo(v, 9)]);
            }
        }
    });

    it("lm-eval 0.4.9.1 reproduction, §C.1 prose: pythia-160m and mamba-2.8b-slimpj", () => {
        const section = markdown.slice(markdown.indexOf("### C.1"), markdown.indexOf("### C.2"));
        const pythia = /pythia-160m`[^:]*: lambada ppl ([\d.]+), acc ([\d.]+);\s+hellaswag acc_norm ([\d.]+); piqa acc ([\d.]+); arc_easy acc ([\d.]+); arc_challenge acc_norm ([\d.]+); winogrande ([\d.]+)\./.exec(section);
        expect(pythia).not.toBeNull();
        const [ppl, lambada, hellaswag, piqa, arcEasy, arcChallenge, winogrande] = pythia!.slice(1).map(Number);
        expect(LM_EVAL_REPRODUCTION.find((r) => r.model === "pythia-160m")!.printed).toEqual({
            "lambada_openai/perplexity": ppl, "lambada_openai/acc": lambada, "hellaswag/acc_norm": hellaswag, "piqa/acc": piqa,
            "arc_easy/acc": arcEasy, "arc_challenge/acc_norm": arcChallenge, "winogrande/acc": winogrande,
        });
        const slimpj = section.slice(section.indexOf("mamba-2.8b-slimpj"));
        const both = (name: string) => {
            const m = new RegExp(`${name} ([\\d.]+)/([\\d.]+)`).exec(slimpj);
            expect(m, name).not.toBeNull();
            return m!.slice(1).map(Number);
        };
        const [arcC, arcE, hs, obqa, pq] = ["arc_c", "arc_e", "hellaswag", "obqa", "piqa"].map(both);
        const wino = Number(/winogrande ([\d.]+)/.exec(slimpj)![1]);
        expect(LM_EVAL_REPRODUCTION.find((r) => r.model === "mamba-2.8b-slimpj")!.printed).toEqual({
            "hellaswag/acc": hs![0], "hellaswag/acc_norm": hs![1], "piqa/acc": pq![0], "piqa/acc_norm": pq![1],
            "arc_easy/acc": arcE![0], "arc_easy/acc_norm": arcE![1], "arc_challenge/acc": arcC![0], "arc_challenge/acc_norm": arcC![1],
            "winogrande/acc": wino, "openbookqa/acc": obqa![0], "openbookqa/acc_norm": obqa![1],
        });
    });

    it("Mamba-2 paper, Table 3 (every row)", () => {
        expectRowsMatch(tableAfter(markdown, "The Mamba-2 paper's Table 3"), MAMBA2_TABLE3, "Average", true);
    });
});

describe("the published averages are the means of their columns (a transcription check without the source)", () => {
    const mean = (xs: Array<number | null>) => xs.reduce<number>((a, b) => a + b!, 0) / xs.length;
    // Each printed column and the printed average are rounded to 0.1, so the two can differ by up to 0.05 + 0.05.
    it("Mamba-2 Table 10 and Table 3: the average of seven, OpenBookQA included, within rounding", () => {
        for (const r of [...MAMBA2_TABLE10, ...MAMBA2_TABLE3]) {
            const v = r.values;
            const seven = mean([v.lambadaAcc, v.hellaswag, v.piqa, v.arcEasy, v.arcChallenge, v.winogrande, v.openbookqa]);
            expect([r.model, Math.abs(seven - r.average!) <= 0.1 + 1e-9]).toEqual([r.model, true]);
        }
    });
    it("Mamba Table 3: the average of six within rounding, except the paper's own 50.0 and 57.1", () => {
        const off = MAMBA_TABLE3.filter((r) => {
            const v = r.values;
            return Math.abs(mean([v.lambadaAcc, v.hellaswag, v.piqa, v.arcEasy, v.arcChallenge, v.winogrande]) - r.average!) > 0.1 + 1e-9;
        });
        expect(off.map((r) => [r.model, r.average])).toEqual([["Mamba-370M", 50.0], ["Mamba-790M", 57.1]]);
        expect(MAMBA_TABLE3.every((r) => r.values.openbookqa === null)).toBe(true);
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
        expect(referenceRowFor("mamba2attn-2.7b", "repro")).toMatchObject({ values: { openbookqa: 39, arcChallenge: 37.88 }, printed: { "openbookqa/acc": 0.304 } });
    });

    it("a paper order picks which paper's row: Mamba-2 first for seven-task tables, its Table 3 for the 2.7B comparison", () => {
        expect(referenceRowFor("mamba-130m", "paper", ["mamba2-t10", "mamba2-t3", "mamba-t3"])).toMatchObject({ source: "mamba2-t10", values: { hellaswag: 35.2, openbookqa: 28.8 } });
        expect(referenceRowFor("mamba2-2.7b", "paper", ["mamba2-t3", "mamba2-t10", "mamba-t3"])).toMatchObject({ source: "mamba2-t3", model: "Mamba-2" });
        expect(referenceRowFor("transformerpp-2.7b", "paper", ["mamba2-t3"])).toMatchObject({ model: "Transformer++", values: { openbookqa: 40.4 } });
    });
});
