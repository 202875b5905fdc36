/**
 * --use_cache: lm-eval's keys, the model check, and a run killed mid-way that resumes to identical results.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { cacheKey, pythonJsonString, ResultCache } from "../../src/evaluator/cache.js";
import { neoxTokenizer, runCli, startCli, tinyNeoxModel } from "../cli/cliHelpers.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-cache-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("cache keys and identity", () => {
    it("hashes Python's json.dumps of [method, context, continuation]", () => {
        // json.dumps(["loglikelihood", "Caf\u00e9\n", " \"x\""]) in CPython writes exactly this text:
        expect(`[${pythonJsonString("loglikelihood")}, ${pythonJsonString("Café\n")}, ${pythonJsonString(' "x"')}]`).toBe(
            '["loglikelihood", "Caf\\u00e9\\n", " \\"x\\""]',
        );
        expect(pythonJsonString("😀\u007f")).toBe('"\\ud83d\\ude00\\u007f"');
        const expected = createHash("sha256").update('["loglikelihood", "a", " b"]').digest("hex");
        expect(cacheKey({ context: "a", continuation: " b" })).toBe(expected);
    });
    it("stores results exactly and refuses another model's file", () => {
        const file = path.join(tmp, "ident.db");
        const c = ResultCache.open(file, { fingerprint: "aaaa", dtype: "float32" });
        c.put({ context: "x", continuation: " y" }, { logprob: -1.2345678901234567, isGreedy: true });
        c.close();
        const again = ResultCache.open(file, { fingerprint: "aaaa", dtype: "float32" });
        expect(again.get({ context: "x", continuation: " y" })).toEqual({ logprob: -1.2345678901234567, isGreedy: true });
        again.close();
        expect(() => ResultCache.open(file, { fingerprint: "bbbb", dtype: "float32" })).toThrow(/holds results of model aaaa.*not of model bbbb/);
    });
});

/** A --data_dir folder with `n` invented LAMBADA-shaped documents (enough requests for a run to be killed midway). */
async function lambadaLikeData(n: number): Promise<string> {
    const dir = path.join(tmp, "lambada-like");
    await mkdir(path.join(dir, "lambada_openai"), { recursive: true });
    const words = ["the", "river", "carried", "old", "letters", "past", "quiet", "houses", "where", "nobody", "waited", "anymore"];
    const lines = Array.from({ length: n }, (_, i) => {
        const text = Array.from({ length: 100 + (i % 37) }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(" ");
        return JSON.stringify({ text: `${text} ${words[i % words.length]}` });
    });
    await writeFile(path.join(dir, "lambada_openai", "lambada_test.jsonl"), `${lines.join("\n")}\n`);
    return dir;
}

describe("a killed run resumes from the cache", () => {
    it("keeps finished requests, recomputes nothing twice and ends with identical results", async () => {
        const db = path.join(tmp, "run.db");
        const base = ["run", "--model", tinyNeoxModel, "--tokenizer", neoxTokenizer, "--tasks", "lambada_openai", "--data_dir", await lambadaLikeData(300),
            "--limit", "300", "--batch_size", "1", "--threads", "1"];
        const child = startCli([...base, "--use_cache", db]);
        let stderr = "";
        child.stderr.on("data", (d) => (stderr += String(d)));
        // Kill it once some (not all) results are in the cache.
        const rows = () => {
            try {
                const d = new Database(db, { readonly: true, fileMustExist: true });
                try {
                    return (d.prepare("SELECT COUNT(*) AS n FROM loglikelihood").get() as { n: number }).n;
                } finally {
                    d.close();
                }
            } catch {
                return 0;
            }
        };
        const code = await new Promise<number | null>((resolve) => {
            const timer = setInterval(() => {
                if (rows() >= 20) {
                    clearInterval(timer);
                    child.kill("SIGTERM");
                }
            }, 20);
            child.on("exit", (c) => {
                clearInterval(timer);
                resolve(c);
            });
        });
        expect(code).toBe(1);
        expect(stderr).toMatch(/mamba-eval: interrupted by SIGTERM; \d+ finished requests are saved in .*run\.db/);
        const saved = rows();
        expect(saved).toBeGreaterThanOrEqual(20);
        expect(saved).toBeLessThan(300);

        const outA = path.join(tmp, "a");
        const resumed = runCli([...base, "--use_cache", db, "--output_path", outA]);
        expect(resumed.code).toBe(0);
        expect(rows()).toBe(300);
        const outB = path.join(tmp, "b");
        const fresh = runCli([...base, "--output_path", outB]);
        expect(fresh.code).toBe(0);
        const read = (dir: string) => {
            const sub = path.join(dir, readdirSync(dir)[0]!);
            return JSON.parse(readFileSync(path.join(sub, readdirSync(sub)[0]!), "utf8")).results;
        };
        expect(read(outA)).toEqual(read(outB));
    });
});
