/**
 * The checkpoints in fixtures/ were written by real torch.save / safetensors / transformers save_pretrained
 * (scripts/fixtures/make_fixtures.py, on a machine with PyTorch). Their reference.json states the config as the
 * Python side understood it; the loader must agree field for field and find every tensor.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadCheckpoint } from "../../src/model/loadModel.js";
import { readTorchBin } from "../../src/model/torchBin.js";
import { loadTokenizerFile } from "../../src/model/tokenizer.js";
import { BUNDLED_TOKENIZER } from "../testData.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const fixture = (name: string): string => path.join(repoRoot, "fixtures", name);
const NAMES = ["mamba1-hf", "mamba1-ssm-bf16", "mamba1-ssm-f16", "mamba2-hf", "mamba2-hf-sharded", "mamba2-ssm", "neox-mamba1", "neox-mamba2"];
const TORCH_DTYPES: Record<string, string> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

interface Reference {
    checkpoint_files: string[];
    checkpoint_dtypes: string[];
    config: Record<string, unknown>;
    greedy?: { prompt: number[]; continuation: number[]; prompt_text?: string; continuation_text?: string };
}

const readReference = async (name: string): Promise<Reference> => JSON.parse(await readFile(path.join(fixture(name), "reference.json"), "utf8"));

describe.each(NAMES)("fixtures/%s", (name) => {
    it("loads with the config reference.json states", async () => {
        const ref = await readReference(name);
        const ckpt = await loadCheckpoint(fixture(name));
        const c = ckpt.config;
        expect({
            family: c.family, layout: c.layout, d_model: c.dModel, n_layer: c.nLayer, vocab_size: c.vocabSize,
            padded_vocab_size: c.paddedVocabSize, pad_vocab_size_multiple: c.padVocabSizeMultiple, d_state: c.dState,
            d_conv: c.dConv, expand: c.expand, d_inner: c.dInner, dt_rank: c.dtRank, head_dim: c.headDim, n_heads: c.nHeads,
            n_groups: c.nGroups, chunk_size: c.chunkSize, norm_eps: c.normEps, tie_embeddings: c.tieEmbeddings,
            proj_bias: c.projBias, conv_bias: c.convBias,
        }).toEqual(Object.fromEntries(Object.entries(ref.config).filter(([k]) => k !== "gated_norm_eps")));
        expect(new Set(ckpt.tensors.map((t) => TORCH_DTYPES[t.dtype]))).toEqual(new Set(ref.checkpoint_dtypes));
        for (const t of ckpt.tensors) expect(ref.checkpoint_files).toContain(path.basename(t.file));
        expect(ckpt.tensors.some((t) => t.name === "lm_head.weight")).toBe(!c.tieEmbeddings);
    });
});

describe("real torch.save files", () => {
    it("a tied lm_head shares the embedding's storage bytes", async () => {
        const tensors = await readTorchBin(path.join(fixture("mamba1-ssm-f16"), "pytorch_model.bin"));
        const embedding = tensors.find((t) => t.name === "backbone.embedding.weight")!;
        const lmHead = tensors.find((t) => t.name === "lm_head.weight")!;
        expect([lmHead.offset, lmHead.byteLength, lmHead.dtype]).toEqual([embedding.offset, embedding.byteLength, embedding.dtype]);
    });
});

describe("GPT-NeoX-20B tokenizer against the fixture's transformers-side encoding", () => {
    it("encodes the prompt and decodes the continuation as HF tokenizers did", async () => {
        const ref = await readReference("neox-mamba1");
        const tok = await loadTokenizerFile(BUNDLED_TOKENIZER);
        expect(await tok.encode(ref.greedy!.prompt_text!)).toEqual(ref.greedy!.prompt);
        expect(await tok.decode(ref.greedy!.continuation)).toBe(ref.greedy!.continuation_text);
    });
});
