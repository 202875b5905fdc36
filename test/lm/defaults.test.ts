import { describe, expect, it } from "vitest";
import { DEFAULT_STATE_BUDGET_BYTES, defaultStateBudgetBytes } from "../../src/lm/defaults.js";
import { openModel } from "../../src/lm/openModel.js";

const GiB = 2 ** 30;

describe("defaultStateBudgetBytes", () => {
    it("keeps 1 GiB on the CPU, whatever the model", () => {
        expect(defaultStateBudgetBytes({ device: "cpu", weightBytes: 5.5e9, deviceMemoryBytes: 0 })).toBe(GiB);
        expect(defaultStateBudgetBytes({ device: "cpu", weightBytes: 1e6 })).toBe(DEFAULT_STATE_BUDGET_BYTES.cpu);
    });

    it("keeps the 12 GiB floor on a GPU of unknown size and on cards up to 40 GB", () => {
        expect(defaultStateBudgetBytes({ device: "cuda", weightBytes: 5.4e9 })).toBe(12 * GiB);
        expect(defaultStateBudgetBytes({ device: "cuda", weightBytes: 5.4e9, deviceMemoryBytes: 0 })).toBe(12 * GiB);
        // 24 GB card with a 2.7B model in bf16: (24 − 10.8) / 2 GB is below the floor
        expect(defaultStateBudgetBytes({ device: "cuda", weightBytes: 5.4e9, deviceMemoryBytes: 24e9 })).toBe(12 * GiB);
        // 40 GB card: (40 − 10.8) / 2 = 14.6 GB = 13.6 GiB → 13 GiB
        expect(defaultStateBudgetBytes({ device: "cuda", weightBytes: 5.4e9, deviceMemoryBytes: 40e9 })).toBe(13 * GiB);
        // weights larger than half the card (an fp32 2.8b model on a 24 GB card)
        expect(defaultStateBudgetBytes({ device: "cuda", weightBytes: 11.1e9, deviceMemoryBytes: 24e9 })).toBe(12 * GiB);
    });

    it("gives a large card half of its memory beyond twice the weights, in whole GiB", () => {
        // H100 80GB HBM3 as cudaDeviceProp reports it (79.2 GiB) with mamba2-2.7b's bf16 weights (≈ 5.4 GB):
        // (85 031 108 608 − 2 × 5 400 000 000) / 2 = 37 115 554 304 bytes = 34.57 GiB → 34 GiB
        expect(defaultStateBudgetBytes({ device: "cuda", weightBytes: 5_400_000_000, deviceMemoryBytes: 85_031_108_608 })).toBe(34 * GiB);
        // the same card with mamba-130m's weights (≈ 0.26 GB): 39.5 GiB → 39 GiB
        expect(defaultStateBudgetBytes({ device: "cuda", weightBytes: 260_000_000, deviceMemoryBytes: 85_031_108_608 })).toBe(39 * GiB);
    });
});

describe("the default budget of a loaded model", () => {
    it("is 1 GiB on the CPU, whose addon reports no device memory", async () => {
        const model = await openModel({ pretrained: "fixtures/neox-mamba1", needTokenizer: false, threads: 1 });
        try {
            expect(model.backend.info().deviceMemoryBytes).toBe(0);
            expect(model.lm.stateBudgetBytes()).toBe(GiB);
        } finally {
            await model.dispose();
        }
    });
});
