/**
 * The LM's defaults, in one place: tokens per native call and the memory kept in saved prefix states, per device.
 * Results never depend on either (packing and sharing are exact); they trade speed against memory.
 */

/** lm-eval's max_length for mamba_ssm models. */
export { DEFAULT_MAX_LENGTH } from "./encodePair.js";

export type Device = "cpu" | "cuda";

/**
 * Tokens per score() call when --batch_size is auto. On the CPU 8 192 rows keep a call's activations in a few
 * hundred MB. On a GPU 4× that, so a call's GEMMs are large enough for the small models (mamba-130m runs
 * ≈ 1.0M tok/s at 32 768 rows against ≈ 0.7M at 8 192) and the per-call host work is paid a quarter as often;
 * activations at 32 768 rows take ≈ 5 GB for mamba-2.8b.
 */
export const DEFAULT_TOKENS_PER_CALL: Readonly<Record<Device, number>> = { cpu: 8192, cuda: 32768 };

/**
 * Bytes of saved prefix states kept at once (`state_budget_gb` in --model_args). The CPU keeps 1 GiB of host
 * memory. On a GPU the states live in device memory: 1 GiB would leave mamba-2.8b 43 slots and mamba2-2.7b
 * (172 MB per state) 6, forcing replays; 8 GiB still cut mamba-2.8b's six-task run to 94 calls of ≈ 23 600
 * tokens (344 slots; its prefix tree wants 465 at once). 12 GiB holds them all (517), and with a 2.8b model's
 * bf16 weights (5.5 GB) and a call's activations (≈ 5 GB at 32 768 rows) the states it really uses (≈ 11.6 GB)
 * still fit a 24 GB card.
 */
export const DEFAULT_STATE_BUDGET_BYTES: Readonly<Record<Device, number>> = { cpu: 2 ** 30, cuda: 12 * 2 ** 30 };

/** Sequences stepped together in generate_until. */
export const DEFAULT_GENERATE_BATCH = 32;
