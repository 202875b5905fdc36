/** --model / --model_args resolution: state_budget_gb (our extension) and the errors that name the argument. */
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { resolveModelSpec } from "../../src/evaluator/modelArgs.js";

describe("resolveModelSpec state_budget_gb", () => {
    it("turns GiB into bytes, and leaves the default to the backend when absent", () => {
        expect(resolveModelSpec({ model: "mamba_ssm", modelArgs: "pretrained=x,state_budget_gb=2" }).stateBudgetBytes).toBe(2 * 2 ** 30);
        expect(resolveModelSpec({ model: "mamba_ssm", modelArgs: "pretrained=x,state_budget_gb=0.5" }).stateBudgetBytes).toBe(2 ** 29);
        expect(resolveModelSpec({ model: "some/folder" }).stateBudgetBytes).toBeUndefined();
    });

    it("refuses a key given twice", () => {
        expect(() => resolveModelSpec({ model: "mamba_ssm", modelArgs: "pretrained=a,pretrained=b" })).toThrow(new UsageError("--model_args: pretrained given more than once"));
    });

    it.each(["0", "-1", "lots", "none", "true", "1e30"])("refuses state_budget_gb=%s with a line naming it", (value) => {
        const resolve = () => resolveModelSpec({ model: "mamba_ssm", modelArgs: `pretrained=x,state_budget_gb=${value}` });
        expect(resolve).toThrow(UsageError);
        expect(resolve).toThrow(/state_budget_gb=.*expected a positive number of GiB/);
    });

    it("suggests the key when it is misspelt", () => {
        expect(() => resolveModelSpec({ model: "mamba_ssm", modelArgs: "pretrained=x,state_budget=2" })).toThrow(/state_budget_gb/);
    });
});
