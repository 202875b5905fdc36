/**
 * Which files make a dataset split, by HF `datasets`' rules (dataFiles.ts, cardYaml.ts): the card's `configs:`
 * data_files, a `{split}/` folder, the split in a file name, the parquet conversion as a fallback; and end to end
 * through the local hub (test/model/fakeHub.ts) with EleutherAI/lambada_openai's current layout, online and with
 * the hub down.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cardConfigsYaml } from "../../src/tasks/cardYaml.js";
import { inferSplitPatterns, matchPattern } from "../../src/tasks/dataFiles.js";
import { loadHubRows, resolveSplitFiles } from "../../src/tasks/hubParquet.js";
import { getTask } from "../../src/tasks/registry.js";
import type { DatasetSpec } from "../../src/tasks/types.js";
import { FakeHub, files } from "../model/fakeHub.js";

/** The shape of EleutherAI/lambada_openai's card since its 2025 conversion to parquet (not its text). */
const LAMBADA_CARD = `---
pretty_name: LAMBADA OpenAI
language:
- de
- en
dataset_info:
- config_name: default
  features:
  - name: text
    dtype: string
  splits:
  - name: test
    num_examples: 5153
configs:
- config_name: default
  data_files:
  - split: test
    path: default/test/*
- config_name: de
  data_files:
  - split: test
    path: de/test/*
- config_name: en
  data_files:
  - split: test
    path: en/test/*
---
## Dataset Description
`;

/** EleutherAI/lambada_openai at main today: the parquet conversion beside the original jsonl files. */
const LAMBADA_MAIN = [
    ".gitattributes", "README.md", "data/lambada_test.jsonl", "data/lambada_test_de.jsonl", "data/lambada_test_en.jsonl",
    "de/test/0000.parquet", "default/test/0000.parquet", "en/test/0000.parquet", "lambada_openai.txt", "translation_script.txt",
];

const stub = (listing: Record<string, string[]>, texts: Record<string, string> = {}) => ({
    list: async (repo: string, revision: string) => listing[`${repo}@${revision}`] ?? [],
    read: async (repo: string, revision: string, file: string) => {
        const text = texts[`${repo}@${revision}/${file}`];
        if (text === undefined) throw new Error(`not served: ${file}`);
        return text;
    },
});
const spec = (path: string, name: string | null, evalSplit: string): DatasetSpec => ({ path, name, evalSplit });

describe("the dataset card's configs", () => {
    it("reads configs from the front matter, whatever else the card holds", () => {
        expect(cardConfigsYaml(LAMBADA_CARD, "x")).toEqual([
            { config_name: "default", data_files: [{ split: "test", path: "default/test/*" }] },
            { config_name: "de", data_files: [{ split: "test", path: "de/test/*" }] },
            { config_name: "en", data_files: [{ split: "test", path: "en/test/*" }] },
        ]);
        const card = [
            "---", "license: mit", "description: |", "  any: thing", "  - here", "configs:", "  - config_name: 'x y'  # quoted",
            "    default: true", "    data_files:", "      validation: [\"a/*.parquet\", b/*.parquet]", "      test:", "        - t/*", "  - config_name: z",
            "    data_dir: sub", "tags: [a, b]", "---",
        ].join("\n");
        expect(cardConfigsYaml(card, "x")).toEqual([
            { config_name: "x y", default: true, data_files: { validation: ["a/*.parquet", "b/*.parquet"], test: ["t/*"] } },
            { config_name: "z", data_dir: "sub" },
        ]);
        expect(cardConfigsYaml("# no front matter\n", "x")).toBeUndefined();
        expect(cardConfigsYaml("---\nlicense: mit\n---\n", "x")).toBeUndefined();
        expect(() => cardConfigsYaml("---\nconfigs:\n- config_name: &a x\n---\n", "org/d")).toThrow(/org\/d: README\.md configs, line 3: unsupported YAML "&a x"/);
    });
});

describe("split files", () => {
    it("EleutherAI/lambada_openai today: the card's default config names default/test/*, a parquet file at main", async () => {
        const s = stub({ "EleutherAI/lambada_openai@main": LAMBADA_MAIN }, { "EleutherAI/lambada_openai@main/README.md": LAMBADA_CARD });
        expect(await resolveSplitFiles(getTask("lambada_openai").dataset, s.list, s.read)).toEqual({ revision: "main", files: ["default/test/0000.parquet"] });
        await expect(resolveSplitFiles(spec("EleutherAI/lambada_openai", "fr", "test"), s.list, s.read)).rejects.toThrow(
            /EleutherAI\/lambada_openai \(config fr\): the dataset card has no config "fr" \(it has: default, de, en\)/,
        );
        await expect(resolveSplitFiles(spec("EleutherAI/lambada_openai", "default", "validation"), s.list, s.read)).rejects.toThrow(
            /config default has no split "validation" \(it has: test\)/,
        );
    });

    it("{split}/ folders and split words in file names, without a card", async () => {
        const s = stub({
            "o/folders@main": ["README.md", "data/train/0000.parquet", "data/test/0000.parquet", "data/test/0001.parquet", "data/validation/0000.parquet"],
            "o/names@main": ["data/dev_0.parquet", "data/dev_1.parquet", "data/train.parquet", "notes/testing_notes.txt"],
            "o/sharded@main": ["data/validation-00000-of-00002.parquet", "data/validation-00001-of-00002.parquet", "validation/extra.parquet"],
        }, { "o/folders@main/README.md": "---\nlicense: mit\n---\n" });
        expect(await resolveSplitFiles(spec("o/folders", null, "test"), s.list, s.read)).toEqual({ revision: "main", files: ["data/test/0000.parquet", "data/test/0001.parquet"] });
        expect(await resolveSplitFiles(spec("o/names", null, "validation"), s.list, s.read)).toEqual({ revision: "main", files: ["data/dev_0.parquet", "data/dev_1.parquet"] });
        // The sharded data/{split}-NNNNN-of-NNNNN layout wins over a folder named like the split.
        expect(await resolveSplitFiles(spec("o/sharded", null, "validation"), s.list, s.read)).toEqual({
            revision: "main", files: ["data/validation-00000-of-00002.parquet", "data/validation-00001-of-00002.parquet"],
        });
        expect(inferSplitPatterns(["README.md", "notes.txt"])).toBeUndefined();
        // In the sharded layout the split is the literal name ("dev" is not "validation" there, as in datasets).
        expect(Object.keys(inferSplitPatterns(["data/dev-00000-of-00001.parquet"])!)).toEqual(["dev"]);
    });

    it("card data_files in every form: patterns in order, data_dir, the default config, jsonl answered by the conversion", async () => {
        const card = [
            "---", "configs:", "- config_name: main", "  default: true", "  data_files:", "    validation: [b/*.parquet, a/*.parquet]",
            "- config_name: nested", "  data_dir: sub", "- config_name: raw", "  data_files: raw/*.jsonl", "---",
        ].join("\n");
        const s = stub({
            "o/d@main": ["README.md", "a/1.parquet", "b/2.parquet", "b/.hidden.parquet", "sub/test/x.parquet", "sub/train/y.parquet", "raw/x.jsonl"],
            "o/d@refs/convert/parquet": ["raw/train/0000.parquet"],
        }, { "o/d@main/README.md": card });
        expect(await resolveSplitFiles(spec("o/d", null, "validation"), s.list, s.read)).toEqual({ revision: "main", files: ["b/2.parquet", "a/1.parquet"] });
        expect(await resolveSplitFiles(spec("o/d", "nested", "test"), s.list, s.read)).toEqual({ revision: "main", files: ["sub/test/x.parquet"] });
        expect(await resolveSplitFiles(spec("o/d", "raw", "train"), s.list, s.read)).toEqual({ revision: "refs/convert/parquet", files: ["raw/train/0000.parquet"] });
    });

    it("globs as fsspec: * within a segment, ** across segments, classes; hidden files only when named", () => {
        const all = ["a/b/c.parquet", "a/c.parquet", "c.parquet", "a/.h/c.parquet", "a/__x__/c.parquet", "test-1.csv", "README.md"];
        expect(matchPattern("**/c.parquet", all)).toEqual(["a/b/c.parquet", "a/c.parquet", "c.parquet"]);
        expect(matchPattern("a/*", all)).toEqual(["a/c.parquet"]);
        expect(matchPattern("a/.h/*", all)).toEqual(["a/.h/c.parquet"]);
        expect(matchPattern("test[-._ 0-9]*", all)).toEqual(["test-1.csv"]);
        expect(matchPattern("*", all)).toEqual(["c.parquet", "test-1.csv"]);
    });
});

describe("lambada_openai through the local hub", () => {
    const COMMIT = "abcabcabcabcabcabcabcabcabcabcabcabcabca";
    const hub = new FakeHub();
    let cacheDir = "";
    const parquet = (texts: string[]): Buffer => Buffer.from(parquetWriteBuffer({ columnData: [{ name: "text", data: texts, type: "STRING" }] }));

    beforeAll(async () => {
        const main = files(LAMBADA_MAIN.filter((f) => !f.endsWith(".parquet") && f !== "README.md").map((f) => [f, `contents of ${f}`] as [string, string]));
        main.set("README.md", { body: Buffer.from(LAMBADA_CARD) });
        main.set("default/test/0000.parquet", { body: parquet(["the cat sat on the mat", "a b c"]), lfs: true });
        main.set("de/test/0000.parquet", { body: parquet(["die Katze"]), lfs: true });
        main.set("en/test/0000.parquet", { body: parquet(["the cat"]), lfs: true });
        hub.add({ type: "dataset", id: "EleutherAI/lambada_openai", revisions: new Map([["main", { commit: COMMIT, files: main }]]) });
        await hub.start();
        cacheDir = await mkdtemp(path.join(os.tmpdir(), "mamba-eval-splits-"));
    });
    afterAll(async () => {
        await hub.stop();
        await rm(cacheDir, { recursive: true, force: true });
    });

    it("reads the test split from main via the card, then from the cache with the hub down", async () => {
        const options = { endpoint: hub.endpoint, cacheDir, progress: false as const, retry: { tries: 2, baseDelayMs: 10 } };
        const rows = await loadHubRows(getTask("lambada_openai").dataset, options);
        expect(rows).toEqual([{ text: "the cat sat on the mat" }, { text: "a b c" }]);
        expect(hub.requests.some((r) => r.url.includes("convert"))).toBe(false);
        // The card and the parquet file were read at the listed commit.
        expect(hub.of("resolve", "HEAD").map((r) => r.url)).toEqual([
            `/datasets/EleutherAI/lambada_openai/resolve/${COMMIT}/README.md`,
            `/datasets/EleutherAI/lambada_openai/resolve/${COMMIT}/default/test/0000.parquet`,
        ]);
        hub.requests.length = 0;
        const down = { ...options, endpoint: "http://127.0.0.1:9" };
        expect(await loadHubRows(getTask("lambada_openai").dataset, down)).toEqual(rows);
        expect(hub.requests).toEqual([]);
    });
});
