/**
 * Checkpoint tensor names of either layout → canonical (mamba_ssm) names, with shape checks against the config.
 *
 * The only naming difference between the layouts is transformers' `backbone.embeddings.weight`. The expected
 * shape of every canonical tensor follows docs/architecture.md. The embedding may hold either the padded vocabulary
 * (mamba_ssm checkpoints: 50277 → 50280 rows) or exactly `vocab_size` rows (transformers, which does not pad); the
 * returned config's `paddedVocabSize` is the row count actually found, so logits cover exactly those rows.
 * A missing `lm_head.weight` means tied embeddings; with tied embeddings the lm_head entry (if any) is dropped and the
 * embedding is used, as both libraries do after tying.
 */
import { CheckpointFormatError } from "../errors.js";
import type { AttentionConfig, MambaConfig, TensorSource } from "./types.js";

const EMBEDDING = "backbone.embedding.weight";
const LM_HEAD = "lm_head.weight";
const NORM_F = "backbone.norm_f.weight";

/** transformers name → canonical name, for the names that differ. */
const TRANSFORMERS_RENAMES: Readonly<Record<string, string>> = { "backbone.embeddings.weight": EMBEDDING };

/** Canonical name of a checkpoint tensor name. */
export function canonicalTensorName(name: string): string {
    return TRANSFORMERS_RENAMES[name] ?? name;
}

/** Sizes of an attention layer's tensors (mamba_ssm's MHA, modules/mha.py 89-108). */
export function attentionShapes(a: AttentionConfig): { qkvDim: number; inRows: number; outCols: number; kvFloatsPerToken: number } {
    const qkvDim = a.headDim * (a.nHeads + 2 * a.nHeadsKv);
    return {
        qkvDim,
        inRows: qkvDim + a.mlpDim,
        outCols: a.headDim * a.nHeads + a.mlpDim / 2,
        kvFloatsPerToken: 2 * a.nHeadsKv * a.headDim,
    };
}

/** Expected shapes of an attention layer's mixer tensors (without the `backbone.layers.{i}.` prefix). */
function attentionLayerShapes(D: number, a: AttentionConfig): Array<[string, number[]]> {
    const { qkvDim, inRows, outCols } = attentionShapes(a);
    const shapes: Array<[string, number[]]> = [["mixer.in_proj.weight", [inRows, D]], ["mixer.out_proj.weight", [D, outCols]]];
    if (a.qkvBias) shapes.push(["mixer.in_proj.bias", [inRows]]);
    if (a.outBias) shapes.push(["mixer.out_proj.bias", [D]]);
    if (a.dConv > 0) shapes.push(["mixer.conv1d.weight", [qkvDim, 1, a.dConv]], ["mixer.conv1d.bias", [qkvDim]]);
    return shapes;
}

/** Whether layer `i` is an attention layer. */
export function isAttentionLayer(c: MambaConfig, i: number): boolean {
    return c.attention?.layers.includes(i) ?? false;
}

/** Expected shapes of layer i's tensors (without the `backbone.layers.{i}.` prefix). */
function layerShapes(c: MambaConfig, i: number): Array<[string, number[]]> {
    const D = c.dModel;
    const mlp: Array<[string, number[]]> = c.dIntermediate
        ? [["norm2.weight", [D]], ["mlp.fc1.weight", [2 * c.dIntermediate, D]], ["mlp.fc2.weight", [D, c.dIntermediate]]]
        : [];
    if (c.attention && isAttentionLayer(c, i)) return [["norm.weight", [D]], ...attentionLayerShapes(D, c.attention), ...mlp];
    return [...mambaLayerShapes(c), ...mlp];
}

/** Expected shapes of a Mamba layer's tensors (without the `backbone.layers.{i}.` prefix). */
function mambaLayerShapes(c: MambaConfig): Array<[string, number[]]> {
    const D = c.dModel;
    const E = c.dInner;
    const N = c.dState;
    const K = c.dConv;
    const shapes: Array<[string, number[]]> = [["norm.weight", [D]]];
    if (c.family === "mamba1") {
        const R = c.dtRank;
        shapes.push(
            ["mixer.in_proj.weight", [2 * E, D]],
            ["mixer.conv1d.weight", [E, 1, K]],
            ["mixer.x_proj.weight", [R + 2 * N, E]],
            ["mixer.dt_proj.weight", [E, R]],
            ["mixer.dt_proj.bias", [E]],
            ["mixer.A_log", [E, N]],
            ["mixer.D", [E]],
            ["mixer.out_proj.weight", [D, E]],
        );
        if (c.convBias) shapes.push(["mixer.conv1d.bias", [E]]);
        if (c.projBias) shapes.push(["mixer.in_proj.bias", [2 * E]], ["mixer.out_proj.bias", [D]]);
        return shapes;
    }
    const H = c.nHeads;
    const GN = c.nGroups * N;
    const inRows = 2 * E + 2 * GN + H;
    shapes.push(
        ["mixer.in_proj.weight", [inRows, D]],
        ["mixer.conv1d.weight", [E + 2 * GN, 1, K]],
        ["mixer.dt_bias", [H]],
        ["mixer.A_log", [H]],
        ["mixer.D", [H]],
        ["mixer.norm.weight", [E]],
        ["mixer.out_proj.weight", [D, E]],
    );
    if (c.convBias) shapes.push(["mixer.conv1d.bias", [E + 2 * GN]]);
    if (c.projBias) shapes.push(["mixer.in_proj.bias", [inRows]], ["mixer.out_proj.bias", [D]]);
    return shapes;
}

/**
 * Every canonical tensor the model needs, in a fixed order (globals, then layer by layer), with expected shapes.
 * `vocabRows` is the embedding/lm_head row count; lm_head is included only when embeddings are not tied.
 */
export function expectedTensorShapes(config: MambaConfig, vocabRows = config.paddedVocabSize): Map<string, number[]> {
    const expected = new Map<string, number[]>([[EMBEDDING, [vocabRows, config.dModel]]]);
    for (let i = 0; i < config.nLayer; i++) {
        for (const [suffix, shape] of layerShapes(config, i)) expected.set(`backbone.layers.${i}.${suffix}`, shape);
    }
    expected.set(NORM_F, [config.dModel]);
    if (!config.tieEmbeddings) expected.set(LM_HEAD, [vocabRows, config.dModel]);
    return expected;
}

const showShape = (shape: readonly number[]): string => `[${shape.join(", ")}]`;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
    return a.length === b.length && a.every((dim, i) => dim === b[i]);
}

/** Renames to canonical names, refusing two checkpoint names that land on the same canonical one. */
function canonicalise(raw: readonly TensorSource[]): Map<string, TensorSource> {
    const byName = new Map<string, TensorSource>();
    for (const tensor of raw) {
        const name = canonicalTensorName(tensor.name);
        const previous = byName.get(name);
        if (previous) {
            throw new CheckpointFormatError(
                `${tensor.file}: tensor ${tensor.name} duplicates ${previous.name} (${previous.file}); both mean ${name}`,
            );
        }
        byName.set(name, { ...tensor, name });
    }
    return byName;
}

/** The embedding's row count, which must be the padded vocabulary or exactly vocab_size. */
function vocabRowsOf(config: MambaConfig, embedding: TensorSource | undefined, where: string): number {
    if (!embedding) throw new CheckpointFormatError(`${where}: tensor ${EMBEDDING} (or backbone.embeddings.weight) is missing`);
    const rows = embedding.shape[0];
    const allowed = [...new Set([config.paddedVocabSize, config.vocabSize])];
    if (embedding.shape.length !== 2 || rows === undefined || !allowed.includes(rows)) {
        throw new CheckpointFormatError(
            `${embedding.file}: tensor ${EMBEDDING} has shape ${showShape(embedding.shape)}; expected ` +
            `[${allowed.join(" or ")}, ${config.dModel}] (vocab_size ${config.vocabSize}, padded ${config.paddedVocabSize})`,
        );
    }
    return rows;
}

/**
 * Refuses a config whose n_layer exceeds the layers the checkpoint holds, before anything is built per layer (an
 * absurd n_layer would otherwise cost time and memory before failing). Extra layers are reported as unexpected tensors.
 */
function checkLayerCount(byName: ReadonlyMap<string, TensorSource>, config: MambaConfig, where: string): void {
    const present = new Set<number>();
    for (const name of byName.keys()) {
        const match = /^backbone\.layers\.(\d+)\./.exec(name);
        if (match) present.add(Number(match[1]));
    }
    // Checked before anything is built per layer, so a huge n_layer costs nothing.
    let missing = 0;
    while (missing < config.nLayer && present.has(missing)) missing++;
    if (missing < config.nLayer) {
        const has = present.size === 0 ? "no layer tensors" : `tensors for ${present.size} layer${present.size === 1 ? "" : "s"}`;
        throw new CheckpointFormatError(
            `${where}: config.json says n_layer ${config.nLayer}, but the checkpoint has ${has} (none for layer ${missing})`,
        );
    }
}

/**
 * Drops the attention layers' `mixer.rotary_emb.inv_freq` (flash_attn's RotaryEmbedding registers it as a
 * non-persistent buffer, so state dicts normally lack it; a checkpoint saved with it holds nothing the config does
 * not already fix). Its shape is checked all the same.
 */
function dropRotaryBuffers(byName: Map<string, TensorSource>, config: MambaConfig): void {
    const a = config.attention;
    if (!a || a.rotaryDim === 0) return;
    for (const i of a.layers) {
        const name = `backbone.layers.${i}.mixer.rotary_emb.inv_freq`;
        const t = byName.get(name);
        if (!t) continue;
        if (!sameShape(t.shape, [a.rotaryDim / 2])) {
            throw new CheckpointFormatError(`${t.file}: tensor ${name} has shape ${showShape(t.shape)}; expected [${a.rotaryDim / 2}]`);
        }
        byName.delete(name);
    }
}

/**
 * Maps a checkpoint's tensors to canonical names and checks them against `config`.
 * `where` (the checkpoint file or folder) names the checkpoint when a tensor is missing.
 * Returns the tensors in canonical order and the config with `paddedVocabSize` set to the embedding's row count.
 */
export function mapCheckpointTensors(
    raw: readonly TensorSource[],
    config: MambaConfig,
    where: string,
): { config: MambaConfig; tensors: TensorSource[] } {
    const byName = canonicalise(raw);
    const vocabRows = vocabRowsOf(config, byName.get(EMBEDDING), where);
    const lmHead = byName.get(LM_HEAD);
    if (config.tieEmbeddings && lmHead) {
        if (!sameShape(lmHead.shape, [vocabRows, config.dModel])) {
            throw new CheckpointFormatError(
                `${lmHead.file}: tensor ${LM_HEAD} has shape ${showShape(lmHead.shape)}; expected ${showShape([vocabRows, config.dModel])}`,
            );
        }
        byName.delete(LM_HEAD);
    }
    dropRotaryBuffers(byName, config);
    checkLayerCount(byName, config, where);
    const expected = expectedTensorShapes(config, vocabRows);
    const tensors: TensorSource[] = [];
    for (const [name, shape] of expected) {
        const tensor = byName.get(name);
        if (!tensor) {
            const hint = name === LM_HEAD ? " (the config says embeddings are not tied)" : "";
            throw new CheckpointFormatError(`${where}: tensor ${name} is missing${hint}`);
        }
        if (!sameShape(tensor.shape, shape)) {
            throw new CheckpointFormatError(
                `${tensor.file}: tensor ${name} has shape ${showShape(tensor.shape)}; the config expects ${showShape(shape)}`,
            );
        }
        tensors.push(tensor);
        byName.delete(name);
    }
    const unexpected = byName.values().next();
    if (!unexpected.done) {
        const extra = unexpected.value;
        throw new CheckpointFormatError(
            `${extra.file}: unexpected tensor ${extra.name} (${byName.size} unexpected in all) for a ${config.family} model ` +
            `with ${config.nLayer} layers (convBias ${config.convBias}, projBias ${config.projBias}` +
            `${config.attention ? `, attention layers ${config.attention.layers.join(",")}` : ""}` +
            `${config.dIntermediate ? `, d_intermediate ${config.dIntermediate}` : ""})`,
        );
    }
    return { config: { ...config, paddedVocabSize: vocabRows }, tensors };
}
