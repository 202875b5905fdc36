import { copyFile, cp, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseMambaConfig } from "../../src/model/config.js";
import { loadCheckpoint } from "../../src/model/loadModel.js";
import { readTensorF32 } from "../../src/model/tensorData.js";
import { modelTensorSpecs, tempDir, writeSafetensors, type TensorSpec } from "./helpers.js";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures");

// d_model 4, 2 layers, vocab 10 padded to 16, d_state 2, d_conv 2, E 8, dt_rank 1.
const MAMBA1 = { d_model: 4, n_layer: 2, vocab_size: 10, ssm_cfg: { d_state: 2, d_conv: 2 }, rms_norm: true, pad_vocab_size_multiple: 8 };
// Mamba-2: d_model 8, E 16, headdim 4 → 4 heads, 2 groups of d_state 3: in_proj rows 2·16 + 2·6 + 4 = 48.
const MAMBA2 = {
    d_model: 8, n_layer: 1, vocab_size: 10, ssm_cfg: { layer: "Mamba2", d_state: 3, d_conv: 4, headdim: 4, ngroups: 2 },
    rms_norm: true, pad_vocab_size_multiple: 16,
};
const MAMBA1_HF = { model_type: "mamba", hidden_size: 4, num_hidden_layers: 2, vocab_size: 16, state_size: 2, conv_kernel: 2, expand: 2 };

let root = "";
let cleanup: () => Promise<void> = async () => {};
beforeAll(async () => ({ dir: root, cleanup } = await tempDir()));
afterAll(() => cleanup());

let counter = 0;
async function makeCheckpoint(config: object, specs: (c: ReturnType<typeof parseMambaConfig>) => TensorSpec[]): Promise<string> {
    const dir = path.join(root, `ckpt-${counter++}`);
    await mkdir(dir);
    await writeFile(path.join(dir, "config.json"), JSON.stringify(config));
    await writeSafetensors(path.join(dir, "model.safetensors"), specs(parseMambaConfig(config)));
    return dir;
}

describe("loadCheckpoint (safetensors)", () => {
    it("mamba_ssm Mamba-1, tied, padded vocab: canonical tensors in order, values reachable", async () => {
        const dir = await makeCheckpoint(MAMBA1, (c) => modelTensorSpecs(c, "mamba_ssm", 16, false));
        const ckpt = await loadCheckpoint(dir);
        expect(ckpt.config.paddedVocabSize).toBe(16);
        expect(ckpt.tensors).toHaveLength(1 + 2 * 10 + 1);
        expect(ckpt.tensors[0]!.name).toBe("backbone.embedding.weight");
        expect(ckpt.tensors.at(-1)!.name).toBe("backbone.norm_f.weight");
        expect(ckpt.tensors.find((t) => t.name === "backbone.layers.1.mixer.x_proj.weight")!.shape).toEqual([5, 8]);
        expect(ckpt.tensors.some((t) => t.name === "lm_head.weight")).toBe(false);
        const embedding = await readTensorF32(ckpt.tensors[0]!);
        expect([embedding[0], embedding[63]]).toEqual([0.25, 16]);
        expect(ckpt.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    });

    it("fingerprint: same for a copy elsewhere, different when config.json changes", async () => {
        const a = await makeCheckpoint(MAMBA1, (c) => modelTensorSpecs(c, "mamba_ssm", 16, false));
        const b = await makeCheckpoint(MAMBA1, (c) => modelTensorSpecs(c, "mamba_ssm", 16, false));
        const c = await makeCheckpoint({ ...MAMBA1, residual_in_fp32: true }, (cfg) => modelTensorSpecs(cfg, "mamba_ssm", 16, false));
        const [fa, fb, fc] = await Promise.all([a, b, c].map(async (d) => (await loadCheckpoint(d)).fingerprint));
        expect(fa).toBe(fb);
        expect(fc).not.toBe(fa);
    });

    it("an embedding of exactly vocab_size rows is accepted and becomes the logits width", async () => {
        const dir = await makeCheckpoint(MAMBA1, (c) => modelTensorSpecs(c, "mamba_ssm", 10, false));
        expect((await loadCheckpoint(dir)).config.paddedVocabSize).toBe(10);
    });

    it("transformers layout: backbone.embeddings.weight → backbone.embedding.weight; a tied lm_head copy is dropped", async () => {
        const dir = await makeCheckpoint(MAMBA1_HF, (c) => modelTensorSpecs(c, "transformers", 16, true));
        const ckpt = await loadCheckpoint(dir);
        expect(ckpt.config.layout).toBe("transformers");
        expect(ckpt.tensors.map((t) => t.name)).toContain("backbone.embedding.weight");
        expect(ckpt.tensors.map((t) => t.name)).not.toContain("lm_head.weight");
    });

    it("untied embeddings keep lm_head; Mamba-2 shapes", async () => {
        const dir = await makeCheckpoint({ ...MAMBA2, tie_embeddings: false }, (c) => modelTensorSpecs(c, "mamba_ssm", 16, true));
        const ckpt = await loadCheckpoint(dir);
        expect(ckpt.config.family).toBe("mamba2");
        expect(ckpt.tensors.at(-1)!.name).toBe("lm_head.weight");
        expect(ckpt.tensors.find((t) => t.name === "backbone.layers.0.mixer.in_proj.weight")!.shape).toEqual([48, 8]);
        expect(ckpt.tensors.find((t) => t.name === "backbone.layers.0.mixer.conv1d.weight")!.shape).toEqual([28, 1, 4]);
    });

    it("refuses an n_layer larger than the layers the checkpoint holds at once, even an absurd one", async () => {
        const dir = await makeCheckpoint(MAMBA1, (c) => modelTensorSpecs(c, "mamba_ssm", 16, false));
        await writeFile(path.join(dir, "config.json"), JSON.stringify({ ...MAMBA1, n_layer: 2147483648 }));
        await expect(loadCheckpoint(dir)).rejects.toThrow(/config\.json says n_layer 2147483648, but the checkpoint has tensors for 2 layers \(none for layer 2\)/);
    });

    it("refuses an absurd n_layer at once even when one stray tensor names a layer that far out", async () => {
        const dir = await makeCheckpoint(MAMBA1, (c) => [...modelTensorSpecs(c, "mamba_ssm", 16, false), { name: "backbone.layers.999999999.norm.weight", shape: [4] }]);
        await writeFile(path.join(dir, "config.json"), JSON.stringify({ ...MAMBA1, n_layer: 1_000_000_000 }));
        await expect(loadCheckpoint(dir)).rejects.toThrow(/n_layer 1000000000, but the checkpoint has tensors for 3 layers \(none for layer 2\)$/);
    });

    it("refuses a wrong vocabulary, a missing, unexpected or misshapen tensor, naming it and the file", async () => {
        let dir = await makeCheckpoint(MAMBA1, (c) => modelTensorSpecs(c, "mamba_ssm", 12, false));
        await expect(loadCheckpoint(dir)).rejects.toThrow(/model\.safetensors: tensor backbone\.embedding\.weight has shape \[12, 4\]; expected \[16 or 10, 4\]/);
        dir = await makeCheckpoint(MAMBA1, (c) => modelTensorSpecs(c, "mamba_ssm", 16, false).filter((t) => !t.name.endsWith("1.mixer.D")));
        await expect(loadCheckpoint(dir)).rejects.toThrow(/model\.safetensors: tensor backbone\.layers\.1\.mixer\.D is missing/);
        dir = await makeCheckpoint(MAMBA1, (c) => [...modelTensorSpecs(c, "mamba_ssm", 16, false), { name: "backbone.layers.2.norm.weight", shape: [4] }]);
        await expect(loadCheckpoint(dir)).rejects.toThrow(/unexpected tensor backbone\.layers\.2\.norm\.weight/);
        dir = await makeCheckpoint(MAMBA1, (c) => modelTensorSpecs(c, "mamba_ssm", 16, false).map((t) => (t.name.endsWith("0.mixer.A_log") ? { ...t, shape: [2, 8] } : t)));
        await expect(loadCheckpoint(dir)).rejects.toThrow(/tensor backbone\.layers\.0\.mixer\.A_log has shape \[2, 8\]; the config expects \[8, 2\]/);
        dir = await makeCheckpoint({ ...MAMBA1, tie_embeddings: false }, (c) => modelTensorSpecs(c, "mamba_ssm", 16, false));
        await expect(loadCheckpoint(dir)).rejects.toThrow(/tensor lm_head\.weight is missing \(the config says embeddings are not tied\)/);
    });

    it("refuses a folder without weights or config", async () => {
        const dir = path.join(root, "empty");
        await mkdir(dir);
        await expect(loadCheckpoint(dir)).rejects.toThrow(/config\.json: cannot read/);
        await writeFile(path.join(dir, "config.json"), JSON.stringify(MAMBA1));
        await expect(loadCheckpoint(dir)).rejects.toThrow(/no weights found; expected one of pytorch_model\.bin, pytorch_model\.bin\.index\.json, model\.safetensors/);
    });
});

describe("loadCheckpoint (pytorch_model.bin written by the Python stdlib emulation of torch.save)", () => {
    it("loads the tiny Mamba-1, resolving the tied lm_head onto the embedding's storage", async () => {
        const ckpt = await loadCheckpoint(path.join(fixtures, "tiny-mamba1-bin"));
        expect(ckpt.config.paddedVocabSize).toBe(16);
        expect(ckpt.tensors.map((t) => t.name)).not.toContain("lm_head.weight");
        const byName = new Map(ckpt.tensors.map((t) => [t.name, t]));
        // make_torch_fixtures.py: k-th storage holds (i + 1) * 0.25 + k; D is storage 1, norm_f storage 11.
        expect(Array.from(await readTensorF32(byName.get("backbone.layers.0.mixer.D")!))).toEqual([1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3]);
        expect(Array.from(await readTensorF32(byName.get("backbone.norm_f.weight")!))).toEqual([11.25, 11.5, 11.75, 12]);
    });

    it("reads what the layout's Python loader reads when the folder has both formats, and says so", async () => {
        // mamba_ssm layout: MambaLMHeadModel.from_pretrained reads pytorch_model.bin only.
        const dir = await makeCheckpoint(
            { d_model: 4, n_layer: 1, vocab_size: 10, ssm_cfg: { d_state: 2, d_conv: 2 }, rms_norm: true, pad_vocab_size_multiple: 8 },
            (c) => modelTensorSpecs(c, "mamba_ssm", 16, false),
        );
        await copyFile(path.join(fixtures, "tiny-mamba1-bin", "pytorch_model.bin"), path.join(dir, "pytorch_model.bin"));
        const notes: string[] = [];
        const ckpt = await loadCheckpoint(dir, (line) => notes.push(line));
        expect(new Set(ckpt.tensors.map((t) => path.basename(t.file)))).toEqual(new Set(["pytorch_model.bin"]));
        expect(notes).toEqual([`${dir} holds pytorch_model.bin and model.safetensors: reading pytorch_model.bin, as mamba_ssm's MambaLMHeadModel.from_pretrained (lm-eval --model mamba_ssm) does`]);
        // transformers layout: from_pretrained prefers model.safetensors.
        const hf = path.join(dir, "..", "hf-both");
        await cp(path.join(fixtures, "../../../fixtures/mamba1-hf"), hf, { recursive: true });
        await writeFile(path.join(hf, "pytorch_model.bin"), "not read: transformers prefers model.safetensors");
        const hfNotes: string[] = [];
        const hfCkpt = await loadCheckpoint(hf, (line) => hfNotes.push(line));
        expect(new Set(hfCkpt.tensors.map((t) => path.basename(t.file)))).toEqual(new Set(["model.safetensors"]));
        expect(hfNotes[0]).toMatch(/reading model\.safetensors, as transformers' from_pretrained \(lm-eval --model hf\) does$/);
    });
});
