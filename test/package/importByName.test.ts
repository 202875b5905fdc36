/**
 * The library as a user meets it: a program outside the repository imports "mamba-eval" by name (the package in
 * its node_modules, resolved through package.json `exports` to the built dist/) and runs the README's kind of
 * program. Its scores must be the CLI's: the committed baselines (results/baselines, made by `mamba-eval run`).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDist, repoRoot } from "../e2e/helpers.js";
import { BUNDLED_TOKENIZER } from "../testData.js";

const work = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-user-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const program = `
import { evaluate, getTask, listTasks } from "mamba-eval";

const run = await evaluate({
    model: ${JSON.stringify(path.join(repoRoot, "fixtures", "neox-mamba1"))},
    tokenizer: ${JSON.stringify(BUNDLED_TOKENIZER)},
    dataDir: ${JSON.stringify(path.join(repoRoot, "fixtures", "tasks"))},
    tasks: ["piqa", "arc_easy"],
    threads: 1,
});
console.log(JSON.stringify({ results: run.results.results, table: run.table, piqa: getTask("piqa").name, tasks: listTasks().length }));
`;

describe("import { evaluate } from mamba-eval, in a user's program", () => {
    beforeAll(() => {
        ensureDist();
        mkdirSync(path.join(work, "node_modules"));
        symlinkSync(repoRoot, path.join(work, "node_modules", "mamba-eval"), "dir");
        writeFileSync(path.join(work, "package.json"), JSON.stringify({ name: "user-program", type: "module", private: true }));
        writeFileSync(path.join(work, "program.mjs"), program);
    });

    it("runs and gives the CLI's scores", () => {
        const r = spawnSync(process.execPath, ["program.mjs"], { cwd: work, encoding: "utf8", timeout: 120_000 });
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        const out = JSON.parse(r.stdout) as { results: Record<string, Record<string, unknown>>; table: string; piqa: string; tasks: number };
        expect(out.piqa).toBe("piqa");
        expect(out.tasks).toBeGreaterThanOrEqual(6);
        const baselineDir = path.join(repoRoot, "results", "baselines", "fixtures__neox-mamba1");
        const baselineFile = readdirSync(baselineDir).find((f) => f.startsWith("results_"))!;
        const baseline = JSON.parse(readFileSync(path.join(baselineDir, baselineFile), "utf8")) as { results: Record<string, Record<string, unknown>> };
        for (const task of ["piqa", "arc_easy"]) expect(out.results[task]).toEqual(baseline.results[task]);
        expect(out.table).toMatch(/^\|\s*Tasks\s*\|/);
    });

    it("resolves to the built output, with type declarations", () => {
        const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { exports: Record<string, { types: string; import: string }> };
        const entry = pkg.exports["."]!;
        expect(entry.import).toBe("./dist/index.js");
        expect(readFileSync(path.join(repoRoot, entry.types), "utf8")).toMatch(/export \{ simpleEvaluate as evaluate/);
    });
});
