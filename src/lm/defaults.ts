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
 * still fit a 24 GB card. 12 GiB is the GPU's floor: a larger card gets more (defaultStateBudgetBytes).
 */
export const DEFAULT_STATE_BUDGET_BYTES: Readonly<Record<Device, number>> = { cpu: 2 ** 30, cuda: 12 * 2 ** 30 };

/** What defaultStateBudgetBytes needs to know of the loaded model (NativeModelInfo has it). */
export interface StateBudgetInputs {
    device: Device;
    /** Bytes the weights take on the device. */
    weightBytes: number;
    /** Bytes of memory of the GPU (0 or absent when unknown). */
    deviceMemoryBytes?: number | undefined;
}

/**
 * The state budget when none is given. The CPU: 1 GiB. A GPU: half of what its memory holds beyond twice the
 * weights, in whole GiB, and never less than 12 GiB (DEFAULT_STATE_BUDGET_BYTES). Twice the weights, because table3
 * opens the next model while one runs; the other half is left to a call's activations (≈ 5 GB at 32 768 rows for
 * the 2.7B models), K/V blocks beyond the states and the allocator. Cards up to 40 GB keep 12 GiB; an 80 GB card
 * gives the 2.7B models about 34 GiB. It matters for Mamba-2, whose 172 MB states make the budget, not the token
 * cap, end a call: at 12 GiB the prefix tree of mamba2-2.7b's six tasks runs 383 calls of about 5 800 tokens,
 * at 34 GiB 133 calls (the same token steps).
 */
export function defaultStateBudgetBytes(model: StateBudgetInputs): number {
    if (model.device === "cpu") return DEFAULT_STATE_BUDGET_BYTES.cpu;
    const GiB = 2 ** 30;
    const memory = model.deviceMemoryBytes ?? 0;
    const spareGiB = Math.floor((memory - 2 * model.weightBytes) / 2 / GiB);
    return Math.max(DEFAULT_STATE_BUDGET_BYTES.cuda, spareGiB * GiB);
}

/** Sequences stepped together in generate_until. */
export const DEFAULT_GENERATE_BATCH = 32;
