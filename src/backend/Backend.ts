/**
 * The one interface the LM (src/lm) runs on: a model on some device that scores packed token segments from saved
 * recurrent states, steps sequences one token at a time, and keeps those states in numbered slots. NativeBackend
 * implements it over the native addon (CPU or CUDA); the scheduler and MambaLM use nothing else.
 *
 * The data types of the calls are the addon's (src/addon/addonTypes.ts), passed through unchanged.
 */
import type { NativeModelInfo, ScoreBatch, ScoreOutput, StateSnapshot } from "../addon/addonTypes.js";

export type { ScoreBatch, ScoreOutput, StateSnapshot } from "../addon/addonTypes.js";
export type BackendInfo = NativeModelInfo;

/** Where and how a model runs. */
export interface BackendOptions {
    /** Default "cpu". */
    device?: "cpu" | "cuda";
    /** CPU worker threads; default os.availableParallelism(). */
    threads?: number;
    /** Compute form of the weights: "f32" (exact, the default) or "bf16" (half the bytes; activations stay f32). */
    weightType?: "f32" | "bf16";
}

export interface Backend {
    info(): BackendInfo;
    /** Scores packed segments (see ScoreBatch). Calls run one after another, in the order they were made. */
    score(batch: ScoreBatch): Promise<ScoreOutput>;
    /** One token for each of n slots (a slot never written starts from the zero state); returns n × vocab logits. */
    step(slots: Int32Array, tokens: Int32Array): Promise<Float32Array>;
    copyState(src: number, dst: number): Promise<void>;
    /** Frees a slot once the calls made before have run (freeing an empty slot does nothing). */
    freeState(slot: number): void;
    exportState(slot: number): Promise<StateSnapshot>;
    importState(slot: number, state: StateSnapshot): Promise<void>;
    /** Frees weights and states after the calls already made; later calls reject. */
    dispose(): void;
    [Symbol.asyncDispose](): Promise<void>;
}
