import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docHash } from "../../src/evaluator/samples.js";
import { loadTaskDocs } from "../../src/tasks/datasets.js";
import { loadHubRows, resolveSplitFiles } from "../../src/tasks/hubParquet.js";
import { getTask } from "../../src/tasks/registry.js";
import { fixtures, sharedData } from "./helpers.js";
import { taskDataDir } from "../testData.js";

describe("--data_dir documents in the HF schema", () => {
    // Expected hashes: python3 json.dumps(doc, indent=2, ensure_ascii=False) → sha256, over the HF-schema doc.
    it.skipIf(taskDataDir === undefined)("doc_hash of known documents (needs MAMBA_EVAL_DATA)", async () => {
        const arc = await loadTaskDocs(getTask("arc_easy"), { dataDir: sharedData });
        expect(docHash(arc[0]!)).toBe("b91fe1a8fdc40a80b9364f6256ac729d010ba076b02e75a362c2cf7ad3303bdf");
        const piqa = await loadTaskDocs(getTask("piqa"), { dataDir: sharedData });
        expect(docHash(piqa[0]!)).toBe("ab177c9b9ad0fd48149e873e3d4804752991338a90c2072f52b975f86a7ca78e");
    });

    it("doc_hash of a bundled document", async () => {
        const hellaswag = await loadTaskDocs(getTask("hellaswag"), { dataDir: fixtures });
        expect(docHash(hellaswag[0]!)).toBe("af07fa849dbdfe34089a822dc3b576aeac412fb3009d75a712b11f53ef08fb33");
    });

    it.skipIf(taskDataDir === undefined)("HellaSwag's derived full text has 10042 items with the published label counts (needs MAMBA_EVAL_DATA)", () => {
        const text = execFileSync("bzip2", ["-dc", path.join(sharedData, "hellaswag/hellaswag_val_full.txt.bz2")], { maxBuffer: 64 << 20 }).toString("utf8");
        const lines = text.split("\n");
        if (lines.at(-1) === "") lines.pop();
        expect(lines.length).toBe(60252);
        const counts = [0, 0, 0, 0];
        for (let i = 1; i < lines.length; i += 6) counts[Number(lines[i])]!++;
        expect(counts).toEqual([2515, 2485, 2584, 2458]);
        expect(counts.reduce((a, b) => a + b)).toBe(10042);
    });

    it("a missing file or a corrupt line fails with one line naming the file (and line)", async () => {
        const dir = await mkdtemp(path.join(os.tmpdir(), "mamba-eval-data-"));
        try {
            await expect(loadTaskDocs(getTask("winogrande"), { dataDir: dir })).rejects.toThrow(/winogrande\/dev\.jsonl: cannot read the data file \(ENOENT\)/);
            await mkdir(path.join(dir, "winogrande"));
            await writeFile(path.join(dir, "winogrande/dev.jsonl"), '{"sentence": "a _ b", "option1": "x", "option2": "y", "answer": "1"}\n{"sentence": \n');
            await expect(loadTaskDocs(getTask("winogrande"), { dataDir: dir })).rejects.toThrow(/dev\.jsonl:2: not valid JSON/);
            await mkdir(path.join(dir, "piqa"));
            await writeFile(path.join(dir, "piqa/valid.jsonl"), '{"goal": "g", "sol1": "a", "sol2": "b"}\n');
            await writeFile(path.join(dir, "piqa/valid-labels.lst"), "0\n1\n");
            await expect(loadTaskDocs(getTask("piqa"), { dataDir: dir })).rejects.toThrow(/valid-labels\.lst: has 2 labels but .* has 1 documents/);
        } finally {
            await rm(dir, { recursive: true, force: true });
        }
    });
});

describe("split file resolution", () => {
    const listing: Record<string, string[]> = {
        "allenai/ai2_arc@main": ["ARC-Challenge/test-00000-of-00001.parquet", "ARC-Easy/test-00000-of-00001.parquet", "ARC-Easy/train-00000-of-00001.parquet", "README.md"],
        "EleutherAI/lambada_openai@main": ["data/lambada_test.jsonl", "lambada_openai.py"],
        "EleutherAI/lambada_openai@refs/convert/parquet": ["default/test/0000.parquet", "de/test/0000.parquet"],
        "baber/piqa@main": ["piqa_train.parquet", "piqa_validation.parquet", "piqa_test.parquet"],
    };
    const list = async (repo: string, revision: string) => listing[`${repo}@${revision}`] ?? [];

    it("picks config/split files at main, else the parquet conversion branch", async () => {
        expect(await resolveSplitFiles(getTask("arc_easy").dataset, list)).toEqual({ revision: "main", files: ["ARC-Easy/test-00000-of-00001.parquet"] });
        expect(await resolveSplitFiles(getTask("piqa").dataset, list)).toEqual({ revision: "main", files: ["piqa_validation.parquet"] });
        expect(await resolveSplitFiles(getTask("lambada_openai").dataset, list)).toEqual({ revision: "refs/convert/parquet", files: ["default/test/0000.parquet"] });
        await expect(resolveSplitFiles(getTask("winogrande").dataset, list)).rejects.toThrow(/no parquet files for split "validation"/);
    });
});

describe("HF parquet through the hub cache (local HTTP server)", () => {
    const commit = "0123456789abcdef0123456789abcdef01234567";
    let server: Server;
    let endpoint = "";
    let cacheDir = "";
    let parquet: Buffer;

    beforeAll(async () => {
        parquet = Buffer.from(
            parquetWriteBuffer({
                columnData: [
                    { name: "goal", data: ["Open a jar", "Cool tea"], type: "STRING" },
                    { name: "sol1", data: ["twist the lid", "add ice "], type: "STRING" },
                    { name: "sol2", data: ["twist the jar", "add fire"], type: "STRING" },
                    { name: "label", data: [0n, 1n], type: "INT64" },
                ],
            }),
        );
        const etag = createHash("sha256").update(parquet).digest("hex");
        server = createServer((req, res) => {
            const url = decodeURIComponent(req.url ?? "");
            if (url === "/api/datasets/baber/piqa/revision/main") {
                res.setHeader("content-type", "application/json");
                res.end(JSON.stringify({ sha: commit, siblings: [{ rfilename: "README.md" }, { rfilename: "data/validation-00000-of-00001.parquet" }] }));
            } else if (url === "/datasets/baber/piqa/resolve/main/data/validation-00000-of-00001.parquet") {
                res.setHeader("x-repo-commit", commit);
                res.setHeader("etag", `"${etag}"`);
                res.setHeader("content-length", String(parquet.length));
                res.end(req.method === "HEAD" ? undefined : parquet);
            } else {
                res.statusCode = 404;
                res.end();
            }
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        cacheDir = await mkdtemp(path.join(os.tmpdir(), "mamba-eval-hub-"));
    });

    afterAll(async () => {
        await new Promise((resolve) => server.close(resolve));
        await rm(cacheDir, { recursive: true, force: true });
    });

    it("downloads the split into the HF cache and reads rows in column order with int64 as numbers", async () => {
        const rows = await loadHubRows(getTask("piqa").dataset, { endpoint, cacheDir, offline: false, progress: { write: () => true } as never });
        expect(rows).toEqual([
            { goal: "Open a jar", sol1: "twist the lid", sol2: "twist the jar", label: 0 },
            { goal: "Cool tea", sol1: "add ice ", sol2: "add fire", label: 1 },
        ]);
        expect(Object.keys(rows[0]!)).toEqual(["goal", "sol1", "sol2", "label"]);
        const cached = path.join(cacheDir, "datasets--baber--piqa", "snapshots", commit, "data/validation-00000-of-00001.parquet");
        expect((await readFile(cached)).equals(parquet)).toBe(true);
        // Offline, the same rows come from the cache.
        const offline = await loadHubRows(getTask("piqa").dataset, { endpoint, cacheDir, offline: true });
        expect(offline).toEqual(rows);
    });
});
