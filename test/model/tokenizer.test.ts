import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DownloadError, UsageError } from "../../src/errors.js";
import { loadTokenizer, loadTokenizerFile, type TextTokenizer } from "../../src/model/tokenizer.js";
import { tempDir } from "./helpers.js";
import { BUNDLED_TOKENIZER } from "../testData.js";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const NEOX = BUNDLED_TOKENIZER;

let neox: TextTokenizer;
let root = "";
let cleanup: () => Promise<void> = async () => {};
beforeAll(async () => {
    neox = await loadTokenizerFile(NEOX);
    ({ dir: root, cleanup } = await tempDir());
});
afterAll(() => cleanup());

describe("GPT-NeoX-20B tokenizer (values from Hugging Face tokenizers)", () => {
    it("encodes without adding special tokens", async () => {
        expect(await neox.encode("Hello world, the capital of France is Paris.")).toEqual([12092, 1533, 13, 253, 5347, 273, 6181, 310, 7785, 15]);
        expect(await neox.encode("Hello")).toEqual([12092]);
        expect(await neox.encode(" Paris.")).toEqual([7785, 15]);
        expect(await neox.encode("")).toEqual([]);
    });

    it("matches the end-of-text special token inside text, as HF does", async () => {
        expect(await neox.encode("<|endoftext|>")).toEqual([0]);
        expect(neox.eosTokenId).toBe(0);
        expect(neox.vocabSize).toBe(50277);
    });

    it("encodeBatch equals encode one by one; decode round-trips", async () => {
        const texts = ["Hello world,", " the capital of France", " is Paris."];
        expect(await neox.encodeBatch(texts)).toEqual([[12092, 1533, 13], [253, 5347, 273, 6181], [310, 7785, 15]]);
        expect(await neox.encodeBatch([])).toEqual([]);
        expect(await neox.decode([12092, 1533, 13, 253, 5347, 273, 6181, 310, 7785, 15])).toBe("Hello world, the capital of France is Paris.");
        expect(await neox.decode([0, 12092])).toBe("<|endoftext|>Hello");
    });
});

describe("loadTokenizer resolution", () => {
    it("--tokenizer when given (as lm-eval uses an explicit tokenizer), else the model folder's tokenizer.json", async () => {
        const model = path.join(root, "model");
        await mkdir(model);
        await writeFile(path.join(model, "tokenizer.json"), gunzipSync(readFileSync(NEOX)));
        expect((await loadTokenizer(undefined, model, { offline: true })).source).toBe(path.join(model, "tokenizer.json"));
        const other = path.join(root, "other.json");
        await writeFile(other, gunzipSync(readFileSync(NEOX)));
        expect((await loadTokenizer(other, model, { offline: true })).source).toBe(other);
        await expect(loadTokenizer("does-not/exist", model, { offline: true })).rejects.toThrow(/does-not\/exist/);
    });

    it("--tokenizer as a file or a folder holding tokenizer.json", async () => {
        expect((await loadTokenizer(NEOX, root)).source).toBe(NEOX);
        const folder = path.join(root, "tok");
        await mkdir(folder);
        await writeFile(path.join(folder, "tokenizer.json"), gunzipSync(readFileSync(NEOX)));
        await writeFile(path.join(folder, "tokenizer_config.json"), JSON.stringify({ eos_token: { content: "<|padding|>" } }));
        const tok = await loadTokenizer(folder, undefined);
        expect([tok.source, tok.eosTokenId]).toEqual([path.join(folder, "tokenizer.json"), 1]);
    });

    it("clear errors: folder without tokenizer.json, a bad name, a hub id not cached while offline", async () => {
        await expect(loadTokenizer(root, undefined)).rejects.toThrow(UsageError);
        await expect(loadTokenizer(root, undefined)).rejects.toThrow(/--tokenizer .*: the folder has no tokenizer\.json/);
        await expect(loadTokenizer("no such thing", undefined)).rejects.toThrow(/not a hub id/);
        const offline = loadTokenizer(undefined, root, { offline: true, cacheDir: path.join(root, "empty-cache") });
        await expect(offline).rejects.toThrow(DownloadError);
        await expect(loadTokenizer(undefined, root, { offline: true, cacheDir: path.join(root, "empty-cache") }))
            .rejects.toThrow(/EleutherAI\/gpt-neox-20b\/tokenizer\.json@main: offline/);
    });
});
