/**
 * --use_cache: lm-eval's keys; a file bound to one configuration (weights' checksum, fingerprint, dtype, device,
 * tokenizer, max_length, version), refused with one line by any other, including other weights of the same config
 * and layout (same fingerprint); older and foreign files refused; and a run killed mid-way that resumes to
 * bit-identical results. Everything runs from fixtures/ and temp folders.
 */
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { gunzipSync } from "node:zlib";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheMismatchError, cacheKey, CachingLM, pythonJsonString, ResultCache, type CacheIdentity } from "../../src/evaluator/cache.js";
import { openModel } from "../../src/lm/openModel.js";
import { loadCheckpoint } from "../../src/model/loadModel.js";
import { writeRandomCheckpoint } from "../lm/randomCheckpoint.js";
import { cli, expectOneLineError, startCli, TOKENIZER, waitFor } from "../reliability/cliProcess.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-cache-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const IDENTITY: CacheIdentity = {
    fingerprint: "f".repeat(64), dtype: "float32", device: "cpu", tokenizerSha256: "a".repeat(64), eosTokenId: 0, maxLength: 2048, toolVersion: "0.1.0",
};

describe("cache keys", () => {
    it("hashes Python's json.dumps of [method, context, continuation]", () => {
        // json.dumps(["loglikelihood", "Caf\u00e9\n", " \"x\""]) in CPython writes exactly this text:
        expect(`[${pythonJsonString("loglikelihood")}, ${pythonJsonString("Café\n")}, ${pythonJsonString(' "x"')}]`).toBe(
            '["loglikelihood", "Caf\\u00e9\\n", " \\"x\\""]',
        );
        expect(pythonJsonString("😀\u007f")).toBe('"\\ud83d\\ude00\\u007f"');
        const expected = createHash("sha256").update('["loglikelihood", "a", " b"]').digest("hex");
        expect(cacheKey({ context: "a", continuation: " b" })).toBe(expected);
    });
});

describe("a cache file is bound to one configuration", () => {
    it("stores results exactly and reopens for the same configuration", () => {
        const file = path.join(tmp, "same.db");
        const c = ResultCache.open(file, IDENTITY);
        c.bind("weightsSha256", "1".repeat(64));
        c.put({ context: "x", continuation: " y" }, { logprob: -1.2345678901234567, isGreedy: true });
        c.close();
        const again = ResultCache.open(file, { ...IDENTITY });
        again.bind("weightsSha256", "1".repeat(64));
        expect(again.get({ context: "x", continuation: " y" })).toEqual({ logprob: -1.2345678901234567, isGreedy: true });
        again.close();
    });

    it.each([
        ["a text log-probability", "'abc'", "1"],
        ["+Infinity", "1e308 * 10", "0"],
        ["a positive log-probability", "5.0", "1"],
        ["a greedy flag of 2", "-1.5", "2"],
    ])("refuses a row altered to hold %s, naming the file and the row", (_what, logprob, greedy) => {
        const file = path.join(tmp, `altered-${_what.replaceAll(" ", "-")}.db`);
        const request = { context: "x", continuation: " y" };
        const c = ResultCache.open(file, IDENTITY);
        c.put(request, { logprob: -1.25, isGreedy: true });
        c.close();
        const db = new Database(file);
        db.exec(`UPDATE loglikelihood SET logprob = ${logprob}, greedy = ${greedy}`);
        db.close();
        const again = ResultCache.open(file, IDENTITY);
        expect(() => again.get(request)).toThrow(
            new RegExp(`^--use_cache ${file.replaceAll(/[.*+?^${}()|[\]\\]/g, "\\$&")}: row "${cacheKey(request)}" holds .*the file was altered; use another cache file$`),
        );
        again.close();
    });

    it.each([
        ["fingerprint", { fingerprint: "e".repeat(64) }, /another checkpoint fingerprint \(ffffffffffff…; this run: eeeeeeeeeeee…\)/],
        ["dtype", { dtype: "bfloat16" }, /another dtype \(float32; this run: bfloat16\)/],
        ["device", { device: "cuda" }, /another device \(cpu; this run: cuda\)/],
        ["tokenizer", { tokenizerSha256: "b".repeat(64) }, /another tokenizer/],
        ["end-of-text id", { eosTokenId: 2 }, /another end-of-text token id \(0; this run: 2\)/],
        ["max_length", { maxLength: 1024 }, /another max_length \(2048; this run: 1024\)/],
        ["version", { toolVersion: "0.2.0" }, /another mamba-eval version/],
    ])("refuses a run with another %s, naming it", (_what, change, message) => {
        const file = path.join(tmp, `other-${_what}.db`);
        ResultCache.open(file, IDENTITY).close();
        let error: unknown;
        try {
            ResultCache.open(file, { ...IDENTITY, ...change });
        } catch (e) {
            error = e;
        }
        expect(error).toBeInstanceOf(CacheMismatchError);
        expect((error as Error).message).toMatch(message);
        expect((error as Error).message).toMatch(/use another cache file$/);
    });

    it("refuses other weights when their checksum is bound, and never returns their answers", async () => {
        const model = await openModel({ pretrained: modelA, tokenizer: TOKENIZER, threads: 1 });
        try {
            const file = path.join(tmp, "weights.db");
            const first = ResultCache.open(file, IDENTITY);
            first.bind("weightsSha256", "1".repeat(64));
            const cached = { context: "The lamp", continuation: " light" };
            first.put(cached, { logprob: -1, isGreedy: true });  // an answer of those other weights
            first.close();
            // A run of other weights (same identity otherwise): the cached answer is read, the other request scored,
            // and the call fails once the checksum is known; nothing this run computed is written.
            const cache = ResultCache.open(file, IDENTITY);
            const caching = new CachingLM(model.lm, cache, { weightsSha256: Promise.resolve("2".repeat(64)) });
            await expect(caching.loglikelihood([cached, { context: "The lamp", continuation: " dark" }])).rejects.toThrow(
                /another weights \(sha256 of the weight files\) \(111111111111…; this run: 222222222222…\)/,
            );
            expect(cache.size()).toBe(1);
            cache.close();
        } finally {
            await model.dispose();
        }
    });

    it("Mamba-2 bf16 on CUDA: the file is bound to the run's set of requests and its state budget as well", async () => {
        // CachingLM is the same on every device; simpleEvaluate asks for this binding only where answers depend on it.
        const model = await openModel({ pretrained: modelA, tokenizer: TOKENIZER, threads: 1 });
        try {
            const file = path.join(tmp, "request-set.db");
            const requests = [{ context: "The lamp", continuation: " light" }, { context: "The ships", continuation: " came" }];
            const run = async (set: typeof requests, stateBudgetBytes: number) => {
                const cache = ResultCache.open(file, IDENTITY);
                const caching = new CachingLM(model.lm, cache, { weightsSha256: Promise.resolve("4".repeat(64)), bindRequestSet: { stateBudgetBytes } });
                try {
                    const answers = await caching.loglikelihood(set);
                    return { answers, hits: caching.lastHits };
                } finally {
                    cache.close();
                }
            };
            const first = await run(requests, 2 ** 30);
            expect(first.hits).toBe(0);
            const again = await run([...requests].reverse(), 2 ** 30);  // the same set, in another order: answered from the file
            expect(again.hits).toBe(2);
            expect(again.answers).toEqual([...first.answers].reverse());
            const refusal = /another set of requests and state budget \(Mamba-2 bfloat16 on CUDA answers depend on them\) \([0-9a-f]{12}…; this run: [0-9a-f]{12}…\)/;
            await expect(run(requests.slice(0, 1), 2 ** 30)).rejects.toThrow(refusal);
            await expect(run(requests, 2 ** 31)).rejects.toThrow(refusal);
        } finally {
            await model.dispose();
        }
    });

    it("holds new answers until the weights' checksum is known, then writes them", async () => {
        const model = await openModel({ pretrained: modelA, tokenizer: TOKENIZER, threads: 1 });
        try {
            const cache = ResultCache.open(path.join(tmp, "late.db"), IDENTITY);
            let release!: (sha: string) => void;
            const sha = new Promise<string>((r) => (release = r));
            const sizesSeen: number[] = [];
            const requests = [{ context: "The lamp", continuation: " light" }, { context: "The ships", continuation: " came" }];
            const answers = new CachingLM(model.lm, cache, { weightsSha256: sha }).loglikelihood(requests, {
                onResult: () => {
                    sizesSeen.push(cache.size());
                    if (sizesSeen.length === requests.length) setTimeout(() => release("3".repeat(64)), 20);
                },
            });
            const expected = await model.lm.loglikelihood(requests);
            expect(await answers).toEqual(expected);
            expect(sizesSeen).toEqual([0, 0]);  // nothing written while the checksum was unknown
            expect(cache.size()).toBe(2);
            cache.close();
        } finally {
            await model.dispose();
        }
    });
});

describe("files that are not caches of this version", () => {
    it("refuses a cache of the older schema (fingerprint and dtype only)", () => {
        const file = path.join(tmp, "schema1.db");
        const d = new Database(file);
        d.exec("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); CREATE TABLE loglikelihood (key TEXT PRIMARY KEY, logprob REAL NOT NULL, greedy INTEGER NOT NULL);");
        d.prepare("INSERT INTO meta VALUES ('model', ?)").run(JSON.stringify({ fingerprint: "f".repeat(64), dtype: "float32" }));
        d.close();
        expect(() => ResultCache.open(file, IDENTITY)).toThrow(/made by an older mamba-eval \(cache schema 1.*delete it and run again/);
    });

    it("refuses lm-eval's own SqliteDict cache, and a file that is not SQLite", () => {
        const lmEval = path.join(tmp, "lm_eval_rank0.db");
        const d = new Database(lmEval);
        d.exec('CREATE TABLE "unnamed" (key TEXT PRIMARY KEY, value BLOB)');
        d.close();
        expect(() => ResultCache.open(path.join(tmp, "lm_eval"), IDENTITY)).toThrow(/not a mamba-eval cache \(it holds the tables unnamed; lm-eval's own cache files are not read\)/);
        const text = path.join(tmp, "notes.db");
        writeFileSync(text, "these are notes, not a database\n".repeat(100));
        expect(() => ResultCache.open(text, IDENTITY)).toThrow(/notes\.db: not a usable SQLite cache/);
    });

    it("refuses a FIFO as the cache file, and a link planted at its journal name, without opening them", () => {
        const fifo = path.join(tmp, "fifo.db");
        execFileSync("mkfifo", [fifo]);
        expect(() => ResultCache.open(fifo, IDENTITY)).toThrow(/fifo\.db is a FIFO \(named pipe\), not a regular file/);
        const victim = path.join(tmp, "victim.txt");
        writeFileSync(victim, "keep me");
        const db = path.join(tmp, "planted.db");
        symlinkSync(victim, `${db}-wal`);
        expect(() => ResultCache.open(db, IDENTITY)).toThrow(/planted\.db-wal is a symbolic link, not a regular file/);
        expect(readFileSync(victim, "utf8")).toBe("keep me");
    });
});

// ---- through the CLI -----------------------------------------------------------------------------------------

/** Two checkpoints of one config and layout, other weights: the same fingerprint, another checksum. */
let modelA: string;
let modelB: string;
let dataDir: string;
const SHAPE = { family: "mamba1" as const, dModel: 16, nLayer: 1, vocab: 50277, dState: 4 };

beforeAll(async () => {
    modelA = writeRandomCheckpoint(path.join(tmp, "model-a"), SHAPE, 1);
    modelB = writeRandomCheckpoint(path.join(tmp, "model-b"), SHAPE, 2);
    // lambada documents for a run long enough to be killed in the middle (invented text, one document a line).
    dataDir = path.join(tmp, "data");
    mkdirSync(path.join(dataDir, "lambada_openai"), { recursive: true });
    const words = "the lighthouse keeper climbed stairs every evening to light lamp when storm came ships looked for beam of".split(" ");
    const docs = Array.from({ length: 400 }, (_, d) => JSON.stringify({ text: `Night ${d}: ` + Array.from({ length: 40 + (d % 17) }, (_, w) => words[(d * 7 + w * 3) % words.length]).join(" ") }));
    writeFileSync(path.join(dataDir, "lambada_openai/lambada_test.jsonl"), docs.join("\n") + "\n");
});

const run = (model: string, extra: string[]) =>
    ["run", "--model", model, "--tokenizer", TOKENIZER, "--tasks", "lambada_openai", "--data_dir", dataDir, "--limit", "20", "--threads", "1", ...extra];

describe("the CLI never answers from another configuration's cache", () => {
    it("has two checkpoints with one fingerprint and other weights", async () => {
        const [a, b] = [await loadCheckpoint(modelA), await loadCheckpoint(modelB)];
        expect(a.fingerprint).toBe(b.fingerprint);
        expect(readFileSync(path.join(modelA, "model.safetensors")).equals(readFileSync(path.join(modelB, "model.safetensors")))).toBe(false);
    });

    it("refuses other weights of the same config and layout (exit 2, no table)", () => {
        const db = path.join(tmp, "cli-weights.db");
        expect(cli(run(modelA, ["--use_cache", db])).status).toBe(0);
        const r = cli(run(modelB, ["--use_cache", db]));
        expectOneLineError(r, /--use_cache .*cli-weights\.db: holds answers made with another weights \(sha256 of the weight files\)/);
        expect(r.stdout).not.toContain("lambada_openai");
    });

    it("refuses another tokenizer (same vocabulary, other content)", () => {
        const db = path.join(tmp, "cli-tokenizer.db");
        expect(cli(run(modelA, ["--use_cache", db])).status).toBe(0);
        const json = JSON.parse(gunzipSync(readFileSync(TOKENIZER)).toString("utf8")) as Record<string, unknown>;
        json["truncation"] = { direction: "Right", max_length: 4096, strategy: "LongestFirst", stride: 0 };
        const other = path.join(tmp, "other-tokenizer.json");
        writeFileSync(other, JSON.stringify(json));
        const args = run(modelA, ["--use_cache", db]);
        args[args.indexOf(TOKENIZER)] = other;
        expectOneLineError(cli(args), /holds answers made with another tokenizer \(sha256 of tokenizer\.json\)/);
    });

    it("refuses another max_length and another dtype", () => {
        const db = path.join(tmp, "cli-maxlen.db");
        expect(cli(run(modelA, ["--use_cache", db])).status).toBe(0);
        const maxLength = ["run", "--model", "mamba_ssm", "--model_args", `pretrained=${modelA},max_length=64`, ...run(modelA, ["--use_cache", db]).slice(3)];
        expectOneLineError(cli(maxLength), /another max_length \(2048; this run: 64\)/);
        expectOneLineError(cli(run(modelA, ["--use_cache", db, "--dtype", "bfloat16"])), /another dtype \(float32; this run: bfloat16\)/);
    });

    it("refuses an older cache file with one line, not an internal error", () => {
        const file = path.join(tmp, "cli-schema1.db");
        const d = new Database(file);
        d.exec("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); CREATE TABLE loglikelihood (key TEXT PRIMARY KEY, logprob REAL NOT NULL, greedy INTEGER NOT NULL);");
        d.prepare("INSERT INTO meta VALUES ('model', '{}')").run();
        d.close();
        expectOneLineError(cli(run(modelA, ["--use_cache", file])), /made by an older mamba-eval/);
    });
});

describe("a killed run resumes from the cache", () => {
    it("keeps the finished requests, and the rerun ends with answers bit-identical to a fresh run", async () => {
        const db = path.join(tmp, "resume.db");
        const base = ["run", "--model", modelA, "--tokenizer", TOKENIZER, "--tasks", "lambada_openai", "--data_dir", dataDir, "--batch_size", "1", "--threads", "1", "--log_samples"];
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
        const killed = startCli([...base, "--use_cache", db, "--output_path", path.join(tmp, "killed")]);
        await waitFor(() => rows() >= 20, 60_000, "20 cached rows");
        killed.child.kill("SIGTERM");
        const r = await killed.exited;
        expectOneLineError(r, /^mamba-eval: interrupted by SIGTERM; \d+ finished requests are saved in .*resume\.db, run the same command to resume$/);
        const saved = rows();
        expect(saved).toBeGreaterThanOrEqual(20);
        expect(saved).toBeLessThan(400);
        expect(readdirSync(path.join(tmp, "killed")).flatMap((d) => readdirSync(path.join(tmp, "killed", d)))).toEqual([]);  // no partial results

        const resumed = cli([...base, "--use_cache", db, "--output_path", path.join(tmp, "resumed")], { timeout: 120_000 });
        expect(resumed.status, resumed.stderr).toBe(0);
        expect(rows()).toBe(400);
        const fresh = cli([...base, "--output_path", path.join(tmp, "fresh")], { timeout: 120_000 });
        expect(fresh.status, fresh.stderr).toBe(0);
        const samples = (dir: string) => {
            const sub = path.join(dir, readdirSync(dir)[0]!);
            const file = readdirSync(sub).find((f) => f.startsWith("samples_lambada_openai_"))!;
            return readFileSync(path.join(sub, file), "utf8").split("\n").filter((l) => l !== "").map((l) => (JSON.parse(l) as { resps: unknown }).resps);
        };
        const results = (dir: string) => {
            const sub = path.join(dir, readdirSync(dir)[0]!);
            return JSON.parse(readFileSync(path.join(sub, readdirSync(sub).find((f) => f.startsWith("results_"))!), "utf8")).results;
        };
        // The per-request log-likelihoods as lm-eval logs them (Python float repr: every bit) and the metrics.
        expect(samples(path.join(tmp, "resumed"))).toEqual(samples(path.join(tmp, "fresh")));
        expect(results(path.join(tmp, "resumed"))).toEqual(results(path.join(tmp, "fresh")));
    });
});
