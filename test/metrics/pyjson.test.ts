import { describe, expect, it } from "vitest";
import { pyFloat, pyFloatRepr, pyJsonDumps } from "../../src/io/pyjson.js";
import { fileDateId, modelNameFromArgs, outputLocation, sanitizeModelName } from "../../src/evaluator/results.js";
import { pyFormatFixed } from "../../src/evaluator/table.js";

describe("Python float repr", () => {
    it.each([
        [-21.84375, "-21.84375"],
        [1e-5, "1e-05"],
        [0.1, "0.1"],
        [1, "1.0"],
        [0.0001, "0.0001"],
        [1e16, "1e+16"],
        [1234567890123456, "1234567890123456.0"],
        [123456789012345680, "1.2345678901234568e+17"],
        [-0, "-0.0"],
        [0.30000000000000004, "0.30000000000000004"],
        [2.5e-7, "2.5e-07"],
        [1.5e300, "1.5e+300"],
        [-Infinity, "-inf"],
    ])("repr(%s) = %s", (x, expected) => {
        expect(pyFloatRepr(x)).toBe(expected);
    });

    it("formats %.4f with Python's half-even rounding of exact ties", () => {
        expect(pyFormatFixed(0.03125, 4)).toBe("0.0312"); // Python: '%.4f' % 0.03125
        expect(pyFormatFixed(0.09375, 4)).toBe("0.0938");
        expect(pyFormatFixed(605.38661, 4)).toBe("605.3866");
    });
});

describe("Python json.dumps", () => {
    it("matches json.dumps(indent=2, ensure_ascii=False) and the default separators", () => {
        const value = { a: [1, pyFloat(2), 0.5, "é\n\u0001"], b: {}, c: [], d: null, e: true, f: 1e-5 };
        // python3: json.dumps(v, indent=2, ensure_ascii=False) / json.dumps(v, ensure_ascii=False)
        expect(pyJsonDumps(value, 2)).toBe(
            '{\n  "a": [\n    1,\n    2.0,\n    0.5,\n    "é\\n\\u0001"\n  ],\n  "b": {},\n  "c": [],\n  "d": null,\n  "e": true,\n  "f": 1e-05\n}',
        );
        expect(pyJsonDumps(value)).toBe('{"a": [1, 2.0, 0.5, "é\\n\\u0001"], "b": {}, "c": [], "d": null, "e": true, "f": 1e-05}');
    });
});

describe("lm-eval file naming", () => {
    it("extracts and sanitises the model name", () => {
        expect(modelNameFromArgs("pretrained=state-spaces/mamba-130m,dtype=float32")).toBe("state-spaces/mamba-130m");
        expect(modelNameFromArgs({ pretrained: "state-spaces/mamba-370m" })).toBe("state-spaces/mamba-370m");
        expect(sanitizeModelName("state-spaces/mamba-130m")).toBe("state-spaces__mamba-130m");
        expect(sanitizeModelName('a:/b<>"c')).toBe("a__b__c");
    });

    it("builds the datetime id and output locations as lm-eval main does", () => {
        expect(fileDateId(new Date(2026, 0, 2, 3, 4, 5, 678))).toBe("2026-01-02T03-04-05.678000");
        expect(fileDateId(new Date(2026, 0, 2, 3, 4, 5, 0))).toBe("2026-01-02T03-04-05");
        expect(outputLocation("out", "m", "D").resultsFile).toBe("out/m/results_D.json");
        expect(outputLocation("out/run.json", "m", "D")).toEqual({ dir: "out", resultsFile: "out/run_D.json" });
    });
});
