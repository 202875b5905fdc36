import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTaskRequests } from "../../src/evaluator/requests.js";
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

    it.skipIf(taskDataDir === undefined)("doc_hash of the first OpenBookQA test document (needs MAMBA_EVAL_DATA)", async () => {
        const openbookqa = await loadTaskDocs(getTask("openbookqa"), { dataDir: sharedData });
        expect(docHash(openbookqa[0]!)).toBe("9ee44f8f667a19d3e70dec151f0325a3880cc0671b6985e773bfdfefa123a88a");
    });

    it("openbookqa/test.jsonl in the original release's nested form gives the same documents as the hub's schema", async () => {
        const dir = await mkdtemp(path.join(os.tmpdir(), "mamba-eval-obqa-"));
        try {
            const flat = await loadTaskDocs(getTask("openbookqa"), { dataDir: fixtures });
            const nested = flat.map((d) => {
                const choices = d["choices"] as { text: string[]; label: string[] };
                return { id: d["id"], question: { stem: d["question_stem"], choices: choices.text.map((text, i) => ({ text, label: choices.label[i] })) }, answerKey: d["answerKey"] };
            });
            await mkdir(path.join(dir, "openbookqa"));
            await writeFile(path.join(dir, "openbookqa/test.jsonl"), nested.map((d) => JSON.stringify(d)).join("\n") + "\n");
            const loaded = await loadTaskDocs(getTask("openbookqa"), { dataDir: dir });
            expect(loaded).toEqual(flat);
            expect(loaded.map((d) => Object.keys(d))).toEqual(flat.map(() => ["id", "question_stem", "choices", "answerKey"]));

            await writeFile(path.join(dir, "openbookqa/test.jsonl"), '{"id": "a", "question_stem": "q", "choices": {"text": ["x", "y"], "label": ["A"]}, "answerKey": "A"}\n');
            await expect(loadTaskDocs(getTask("openbookqa"), { dataDir: dir })).rejects.toThrow(/test\.jsonl:1: field "choices" must hold as many labels as texts \(at least one\), got 2 texts and 1 labels/);
            await writeFile(path.join(dir, "openbookqa/test.jsonl"), '{"id": "a", "question_stem": 7, "choices": {"text": ["x"], "label": ["A"]}, "answerKey": "A"}\n');
            await expect(loadTaskDocs(getTask("openbookqa"), { dataDir: dir })).rejects.toThrow(/test\.jsonl:1: field "question_stem" must be a string/);
        } finally {
            await rm(dir, { recursive: true, force: true });
        }
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

    it("refuses an unpaired surrogate escape (read as U+FFFD it would score another text) and an absurd line count; reads a BOM", async () => {
        const dir = await mkdtemp(path.join(os.tmpdir(), "mamba-eval-data-"));
        try {
            await mkdir(path.join(dir, "piqa"));
            const piqa = path.join(dir, "piqa/valid.jsonl");
            await writeFile(path.join(dir, "piqa/valid-labels.lst"), "0\n");
            await writeFile(piqa, '{"goal": "g", "sol1": "\\ud800a", "sol2": "b"}\n');
            await expect(loadTaskDocs(getTask("piqa"), { dataDir: dir })).rejects.toThrow(
                /valid\.jsonl:1: field "sol1" holds an unpaired surrogate \(\\ud800\), not valid Unicode text$/,
            );
            await writeFile(piqa, '{"goal": "g", "sol1": "\\ud83d\\ude00 a", "sol2": "b"}\n');  // a pair is one character: fine
            expect((await loadTaskDocs(getTask("piqa"), { dataDir: dir }))[0]).toMatchObject({ sol1: "\u{1F600} a" });
            await writeFile(piqa, '\uFEFF{"goal": "g", "sol1": "a", "sol2": "b"}\n');
            expect((await loadTaskDocs(getTask("piqa"), { dataDir: dir }))[0]).toMatchObject({ goal: "g" });
            await mkdir(path.join(dir, "arc"));
            const arc = path.join(dir, "arc/ARC-Easy-Test.jsonl");
            const nested = { id: "x", question: { stem: "q?", choices: [{ text: "a", label: "A" }, { text: "b", label: "B" }] }, answerKey: "B" };
            await writeFile(arc, JSON.stringify(nested) + "\n");
            const fromNested = await loadTaskDocs(getTask("arc_easy"), { dataDir: dir });
            // the HF dataset's flat rows give the same document
            await writeFile(arc, JSON.stringify({ id: "x", question: "q?", choices: { text: ["a", "b"], label: ["A", "B"] }, answerKey: "B" }) + "\n");
            expect(await loadTaskDocs(getTask("arc_easy"), { dataDir: dir })).toEqual(fromNested);
            await writeFile(arc, JSON.stringify({ ...nested, question: 7 }) + "\n");
            await expect(loadTaskDocs(getTask("arc_easy"), { dataDir: dir })).rejects.toThrow(/ARC-Easy-Test\.jsonl:1: field "question" must be an object \{stem, choices\}/);
            await writeFile(piqa, "\n".repeat(2_000_001));
            await expect(loadTaskDocs(getTask("piqa"), { dataDir: dir })).rejects.toThrow(/valid\.jsonl: more than 2000000 lines/);
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
        // allenai/openbookqa at main: two configs, each a folder (README: config main → main/test-*).
        "allenai/openbookqa@main": [".gitattributes", "README.md", "additional/test-00000-of-00001.parquet", "additional/train-00000-of-00001.parquet",
            "additional/validation-00000-of-00001.parquet", "main/test-00000-of-00001.parquet", "main/train-00000-of-00001.parquet", "main/validation-00000-of-00001.parquet"],
    };
    const list = async (repo: string, revision: string) => listing[`${repo}@${revision}`] ?? [];

    it("picks config/split files at main, else the parquet conversion branch", async () => {
        expect(await resolveSplitFiles(getTask("arc_easy").dataset, list)).toEqual({ revision: "main", files: ["ARC-Easy/test-00000-of-00001.parquet"] });
        expect(await resolveSplitFiles(getTask("piqa").dataset, list)).toEqual({ revision: "main", files: ["piqa_validation.parquet"] });
        expect(await resolveSplitFiles(getTask("lambada_openai").dataset, list)).toEqual({ revision: "refs/convert/parquet", files: ["default/test/0000.parquet"] });
        expect(await resolveSplitFiles(getTask("openbookqa").dataset, list)).toEqual({ revision: "main", files: ["main/test-00000-of-00001.parquet"] });
        await expect(resolveSplitFiles(getTask("winogrande").dataset, list)).rejects.toThrow(/no parquet files for split "validation"/);
    });
});

describe("HF parquet through the hub cache (local HTTP server)", () => {
    const commit = "0123456789abcdef0123456789abcdef01234567";
    let server: Server;
    let endpoint = "";
    let cacheDir = "";
    let parquet: Buffer;
    let openbookqaParquet: Buffer;

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
        // The hub's allenai/openbookqa main schema: choices is a struct of two string lists (a datasets Sequence of a dict).
        const utf8 = (name: string) => ({ name, type: "BYTE_ARRAY" as const, converted_type: "UTF8" as const, repetition_type: "OPTIONAL" as const });
        const stringList = (name: string) => [
            { name, repetition_type: "OPTIONAL" as const, converted_type: "LIST" as const, num_children: 1 },
            { name: "list", repetition_type: "REPEATED" as const, num_children: 1 },
            utf8("element"),
        ];
        openbookqaParquet = Buffer.from(
            parquetWriteBuffer({
                schema: [
                    { name: "root", num_children: 4 },
                    utf8("id"),
                    utf8("question_stem"),
                    { name: "choices", repetition_type: "OPTIONAL", num_children: 2 },
                    ...stringList("text"),
                    ...stringList("label"),
                    utf8("answerKey"),
                ],
                columnData: [
                    { name: "id", data: ["7-1", "7-2"] },
                    { name: "question_stem", data: ["Rain falls from", "Ice is"] },
                    { name: "choices", data: [{ text: ["clouds", "rocks", "trees", "roads"], label: ["A", "B", "C", "D"] }, { text: ["hot", "cold ", "loud", "sweet"], label: ["A", "B", "C", "D"] }] },
                    { name: "answerKey", data: ["A", "B"] },
                ],
            }),
        );
        const card = (name: string) => Buffer.from(`---\nlicense: afl-3.0\n---\n# ${name}\n`);
        const repoFiles: Record<string, Buffer> = {
            "baber/piqa/README.md": card("piqa"),
            "baber/piqa/data/validation-00000-of-00001.parquet": parquet,
            "allenai/openbookqa/README.md": card("openbookqa"),
            "allenai/openbookqa/main/test-00000-of-00001.parquet": openbookqaParquet,
        };
        const files: Record<string, Buffer> = {};
        for (const [name, body] of Object.entries(repoFiles)) {
            const [org, repo, ...rest] = name.split("/");
            for (const rev of ["main", commit]) files[`/datasets/${org}/${repo}/resolve/${rev}/${rest.join("/")}`] = body;
        }
        const listings: Record<string, string[]> = {
            "/api/datasets/baber/piqa/revision/main": ["README.md", "data/validation-00000-of-00001.parquet"],
            "/api/datasets/allenai/openbookqa/revision/main": ["README.md", "additional/test-00000-of-00001.parquet", "main/test-00000-of-00001.parquet", "main/train-00000-of-00001.parquet"],
        };
        server = createServer((req, res) => {
            const url = decodeURIComponent(req.url ?? "");
            const listing = listings[url];
            const file = files[url];
            if (listing !== undefined) {
                res.setHeader("content-type", "application/json");
                res.end(JSON.stringify({ sha: commit, siblings: listing.map((rfilename) => ({ rfilename })) }));
            } else if (file !== undefined) {
                // The hub answers a branch or a commit; the cards have no configs, so the layout names the split.
                res.setHeader("x-repo-commit", commit);
                res.setHeader("etag", `"${createHash("sha256").update(file).digest("hex")}"`);
                res.setHeader("content-length", String(file.length));
                res.end(req.method === "HEAD" ? undefined : file);
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

    it("openbookqa: main/test-*.parquet, choices as {text, label} lists, the same requests as the --data_dir form", async () => {
        const task = getTask("openbookqa");
        const docs = await loadTaskDocs(task, { hub: { endpoint, cacheDir, offline: false, progress: { write: () => true } as never } });
        expect(docs).toEqual([
            { id: "7-1", question_stem: "Rain falls from", choices: { text: ["clouds", "rocks", "trees", "roads"], label: ["A", "B", "C", "D"] }, answerKey: "A" },
            { id: "7-2", question_stem: "Ice is", choices: { text: ["hot", "cold ", "loud", "sweet"], label: ["A", "B", "C", "D"] }, answerKey: "B" },
        ]);
        expect(Object.keys(docs[0]!)).toEqual(["id", "question_stem", "choices", "answerKey"]);
        const cached = path.join(cacheDir, "datasets--allenai--openbookqa", "snapshots", commit, "main/test-00000-of-00001.parquet");
        expect((await readFile(cached)).equals(openbookqaParquet)).toBe(true);

        const dir = await mkdtemp(path.join(os.tmpdir(), "mamba-eval-obqa-hub-"));
        try {
            await mkdir(path.join(dir, "openbookqa"));
            await writeFile(path.join(dir, "openbookqa/test.jsonl"), docs.map((d) => JSON.stringify(d)).join("\n") + "\n");
            const local = await loadTaskDocs(task, { dataDir: dir });
            expect(buildTaskRequests(task, local)).toEqual(buildTaskRequests(task, docs));
            expect(local.map(docHash)).toEqual(docs.map(docHash));
        } finally {
            await rm(dir, { recursive: true, force: true });
        }
    });
});
