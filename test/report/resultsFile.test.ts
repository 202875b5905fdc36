/** Reading results files: layouts, stderr "N/A", Python's NaN tokens, and one-line errors for bad files. */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DataFormatError, UsageError } from "../../src/errors.js";
import { resolveResultsFile, resolveResultsFiles } from "../../src/report/locateResults.js";
import { parsePythonJson, quoteNonFiniteTokens } from "../../src/io/pythonJson.js";
import { parseResultsJson, pretrainedFromModelArgs, readResultsFile } from "../../src/report/resultsFile.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");

describe("results files", () => {
    it("reads our/main layout: values, stderr, higher_is_better, model id, datetime", () => {
        const run = readResultsFile(resolveResultsFile(join(FIXTURES, "runs", "base"), "BASELINE"));
        expect(run.datetime).toBe("2026-03-02T10-15-42.118204");
        expect(run.modelId).toBe("state-spaces/mamba-130m");
        expect([...run.tasks.keys()]).toEqual(["arc_challenge", "arc_easy", "hellaswag", "lambada_openai", "piqa", "winogrande"]);
        const piqa = run.tasks.get("piqa")!.get("acc,none")!;
        const p = 1186 / 1838;
        expect(piqa.value).toBe(p);
        expect(piqa.stderr).toBeCloseTo(Math.sqrt((p * (1 - p)) / 1837), 14); // mean_stderr of 0/1 items
        expect([...run.tasks.get("lambada_openai")!.keys()]).toEqual(["perplexity,none", "acc,none"]);
        expect(run.higherIsBetter.get("lambada_openai")!.get("perplexity")).toBe(false);
        expect(run.provenance?.["backend"]).toBe("cpu");
    });

    it("reads a v0.4.2 results.json with stderr \"N/A\" as null", () => {
        const run = readResultsFile(join(FIXTURES, "runs", "na-base", "results.json"));
        expect(run.datetime).toBeUndefined();
        expect(run.tasks.get("lambada_openai")!.get("perplexity,none")).toEqual({ value: Math.exp(2.203125), stderr: null });
        expect(run.tasks.get("hellaswag")!.has("alias")).toBe(false);
    });

    it("accepts Python's NaN/Infinity tokens and keeps strings that contain those words", () => {
        const text = '{"results": {"t": {"alias": "NaN task", "perplexity,none": Infinity, "perplexity_stderr,none": NaN, "x,none": -Infinity}}}';
        expect(quoteNonFiniteTokens(text)).toBe('{"results": {"t": {"alias": "NaN task", "perplexity,none": "Infinity", "perplexity_stderr,none": "NaN", "x,none": "-Infinity"}}}');
        const run = parseResultsJson(parsePythonJson(text), "r.json");
        expect(run.tasks.get("t")!.get("perplexity,none")!.value).toBe(Number.POSITIVE_INFINITY);
        expect(run.tasks.get("t")!.get("perplexity,none")!.stderr).toBeNaN();
        expect(run.tasks.get("t")!.get("x,none")!.value).toBe(Number.NEGATIVE_INFINITY);
    });

    it("reads a file that an editor saved with a UTF-8 byte-order mark", () => {
        const run = parseResultsJson(parsePythonJson('\ufeff{"results": {"piqa": {"acc,none": 0.5, "acc_stderr,none": 0.01}}}'), "r.json");
        expect(run.tasks.get("piqa")!.get("acc,none")!.value).toBe(0.5);
    });

    it("refuses a negative standard error, which would make any difference look like noise", () => {
        const text = '{"results": {"piqa": {"acc,none": 0.5, "acc_stderr,none": -0.5}}}';
        expect(() => parseResultsJson(parsePythonJson(text), "r.json")).toThrow(
            new DataFormatError('r.json: field results.piqa["acc_stderr,none"]: expected a standard error >= 0, got number -0.5'),
        );
    });

    it("takes pretrained= from a model_args string or object", () => {
        expect(pretrainedFromModelArgs("pretrained=state-spaces/mamba-1.4b,dtype=float16")).toBe("state-spaces/mamba-1.4b");
        expect(pretrainedFromModelArgs("dtype=float16, pretrained=state-spaces/mamba-1.4b")).toBe("state-spaces/mamba-1.4b");
        expect(pretrainedFromModelArgs({ pretrained: "state-spaces/mamba2-2.7b" })).toBe("state-spaces/mamba2-2.7b");
        expect(pretrainedFromModelArgs("dtype=float16")).toBeUndefined();
    });
});

describe("malformed results files → one DataFormatError line naming file and field", () => {
    const bad = (name: string) => resolveResultsFile(join(FIXTURES, "malformed", name), "CURRENT");
    it.each([
        ["acc-is-text", /acc-is-text\/results_2026-03-01T00-00-00\.000000\.json: field results\.piqa\["acc,none"\]: expected a number, got the string "0\.6453"$/],
        ["no-results", /no-results\/results_2026-03-01T00-00-00\.000000\.json: field results: Invalid input: expected record, received undefined$/],
        ["truncated", /truncated\/results_2026-03-01T00-00-00\.000000\.json: not valid JSON \(/],
        ["stderr-list", /stderr-list\/results\.json: field results\.winogrande\["acc_stderr,none"\]: expected a number or "N\/A", got an array$/],
    ])("%s", (name, message) => {
        let error: unknown;
        try {
            readResultsFile(bad(name));
        } catch (e) {
            error = e;
        }
        expect(error).toBeInstanceOf(DataFormatError);
        expect((error as Error).message).toMatch(message);
        expect((error as Error).message).not.toContain("\n");
    });

    it("a missing path or a folder of several models is a usage error", () => {
        expect(() => resolveResultsFile(join(FIXTURES, "nope"), "BASELINE")).toThrow(new UsageError(`BASELINE ${join(FIXTURES, "nope")}: no such file or folder`));
        expect(() => resolveResultsFile(join(FIXTURES, "table"), "CURRENT")).toThrow(/CURRENT .*table: results for several models/);
        expect(resolveResultsFiles(join(FIXTURES, "table"), "RESULTS")).toHaveLength(3);
    });
});
