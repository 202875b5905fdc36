/**
 * NativeBackend: the Backend (Backend.ts) over the native addon: owns one addon model (CPU or CUDA).
 *
 * Calls are queued one after another (the addon runs one call at a time per model), so callers may fire
 * several without awaiting; native failures become NativeError with the addon's one-line message.
 */
import os from "node:os";
import { NativeError, NumericError, UsageError } from "../errors.js";
import type { Checkpoint } from "../model/types.js";
import type { NativeAddon, NativeModel, NativeModelSpec } from "../addon/addonTypes.js";
import { loadAddon } from "../addon/loadAddon.js";
import type { Backend, BackendInfo, BackendOptions, ScoreBatch, ScoreOutput, StateSnapshot } from "./Backend.js";

/** The addon's spec for a checkpoint (see addonTypes.ts NativeModelSpec). */
export function nativeSpecFromCheckpoint(checkpoint: Checkpoint, options: BackendOptions = {}): NativeModelSpec {
    const c = checkpoint.config;
    const threads = options.threads ?? os.availableParallelism();
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
        throw new UsageError(`threads: expected an integer in [1, 256], got ${threads}`);
    }
    const mamba1 = c.family === "mamba1";
    return {
        device: options.device ?? "cpu",
        family: mamba1 ? 1 : 2,
        dModel: c.dModel,
        nLayer: c.nLayer,
        vocab: c.paddedVocabSize,
        dState: c.dState,
        dConv: c.dConv,
        dInner: c.dInner,
        dtRank: mamba1 ? c.dtRank : 0,
        nHeads: mamba1 ? 0 : c.nHeads,
        headDim: mamba1 ? 0 : c.headDim,
        nGroups: mamba1 ? 0 : c.nGroups,
        normEps: c.normEps,
        convBias: c.convBias,
        projBias: c.projBias,
        tieEmbeddings: c.tieEmbeddings,
        ...hybridSpec(c),
        threads,
        weightType: options.weightType ?? "f32",
        tensors: checkpoint.tensors,
    };
}

/** The spec's hybrid fields (attention layers, GatedMLP); none for a pure Mamba model. */
function hybridSpec(c: Checkpoint["config"]): Partial<NativeModelSpec> {
    const a = c.attention;
    if (!a && !c.dIntermediate) return {};
    const attention = new Set(a?.layers ?? []);
    return {
        layerKinds: Array.from({ length: c.nLayer }, (_, i) => (attention.has(i) ? 1 : 0)),
        attnHeads: a?.nHeads ?? 0,
        attnHeadsKv: a?.nHeadsKv ?? 0,
        attnHeadDim: a?.headDim ?? 0,
        attnConv: a?.dConv ?? 0,
        attnRotaryDim: a?.rotaryDim ?? 0,
        attnRotaryBase: a?.rotaryBase ?? 10000,
        attnQkvBias: a?.qkvBias ?? false,
        attnOutBias: a?.outBias ?? false,
        attnMlpDim: a?.mlpDim ?? 0,
        attnSoftmaxScale: a?.softmaxScale ?? 1,
        dIntermediate: c.dIntermediate ?? 0,
    };
}

function messageOf(e: unknown): string {
    return e instanceof Error ? e.message : String(e);
}

function checkSlot(slot: number, what: string): void {
    if (!Number.isInteger(slot) || slot < 0) throw new UsageError(`${what}: expected a non-negative integer slot id, got ${slot}`);
}

/** One model on the native addon, with its calls serialised. */
export class NativeBackend implements Backend {
    /** @internal */
    private readonly model: NativeModel;
    private tail: Promise<unknown> = Promise.resolve();
    private disposed = false;

    private constructor(model: NativeModel) {
        this.model = model;
    }

    /** Loads a model from a checkpoint (weights are memory-mapped and validated natively). */
    static async create(checkpoint: Checkpoint, options: BackendOptions = {}): Promise<NativeBackend> {
        if (options.device === "cuda" && !loadAddon().capabilities().cuda) {
            throw new UsageError("--device cuda: this build of the native addon has no CUDA backend; rebuild it on a machine with the CUDA toolkit: MAMBA_EVAL_CUDA=ON npm run build:native");
        }
        return NativeBackend.fromSpec(nativeSpecFromCheckpoint(checkpoint, options));
    }

    /** Loads a model from an explicit addon spec. */
    static async fromSpec(spec: NativeModelSpec): Promise<NativeBackend> {
        const addon = loadAddon();
        try {
            return new NativeBackend(await addon.createModel(spec));
        } catch (e) {
            const message = `createModel: ${messageOf(e)}`;
            // NaN/Inf in the weights is a numeric problem of the checkpoint, reported as such (never averaged).
            throw /non-finite value/.test(message) ? new NumericError(message) : new NativeError(message);
        }
    }

    /** What this build and machine support, or the NativeError explaining why the addon cannot load. */
    static capabilities(): ReturnType<NativeAddon["capabilities"]> {
        return loadAddon().capabilities();
    }

    /** Runs `call` after every earlier call has settled; native errors become NativeError. */
    private enqueue<T>(call: () => Promise<T> | T): Promise<T> {
        if (this.disposed) return Promise.reject(new NativeError("the native model was disposed"));
        const run = async (): Promise<T> => {
            try {
                return await call();
            } catch (e) {
                throw e instanceof NativeError || e instanceof UsageError ? e : new NativeError(messageOf(e));
            }
        };
        const result = this.tail.then(run, run);
        this.tail = result.catch(() => undefined);
        return result;
    }

    info(): BackendInfo {
        if (this.disposed) throw new NativeError("the native model was disposed");
        return this.model.info();
    }

    /** Scores packed segments (see ScoreBatch in addonTypes.ts). */
    score(batch: ScoreBatch): Promise<ScoreOutput> {
        return this.enqueue(() => this.model.score(batch));
    }

    /** One token for each of n slots; returns n × vocab logits. */
    step(slots: Int32Array, tokens: Int32Array): Promise<Float32Array> {
        return this.enqueue(() => this.model.step(slots, tokens));
    }

    copyState(src: number, dst: number): Promise<void> {
        checkSlot(src, "copyState src");
        checkSlot(dst, "copyState dst");
        return this.enqueue(() => this.model.copyState(src, dst));
    }

    /** Frees a slot's state once earlier calls are done (freeing an empty slot does nothing). */
    freeState(slot: number): void {
        checkSlot(slot, "freeState");
        void this.enqueue(() => this.model.freeState(slot)).catch(() => undefined);
    }

    exportState(slot: number): Promise<StateSnapshot> {
        checkSlot(slot, "exportState");
        return this.enqueue(() => this.model.exportState(slot));
    }

    importState(slot: number, state: StateSnapshot): Promise<void> {
        checkSlot(slot, "importState");
        return this.enqueue(() => this.model.importState(slot, state));
    }

    /** Frees weights and states after the calls already queued; later calls reject. */
    dispose(): void {
        if (this.disposed) return;
        void this.enqueue(() => this.model.dispose()).catch(() => undefined);
        this.disposed = true;
    }

    async [Symbol.asyncDispose](): Promise<void> {
        this.dispose();
        await this.tail;
    }
}
