import { describe, expect, it } from "vitest";
import { pyFloat } from "../../src/io/pyjson.js";
import { makeTable, tableHeaderLine } from "../../src/evaluator/table.js";

// Golden texts: lm-eval main tests/testdata/ai2_arc_10_hf_pretrained-EleutherAI-pythia-14m-deduped-dtype-float32-device-cpu.txt
// and lambada_openai_10_…txt (pythia-14m, limit 10, bootstrap_iters 0), rebuilt from their result values.
describe("makeTable (lm-eval main layout, pytablewriter formatting)", () => {
    it("reproduces the ai2_arc golden table", () => {
        const results = {
            results: {
                arc_easy: { name: "arc_easy", alias: "arc_easy", sample_len: 10, "acc,none": pyFloat(0.3), "acc_stderr,none": "N/A", "acc_norm,none": pyFloat(0.1), "acc_norm_stderr,none": "N/A" },
                arc_challenge: { name: "arc_challenge", alias: "arc_challenge", sample_len: 10, "acc,none": pyFloat(0), "acc_stderr,none": "N/A", "acc_norm,none": pyFloat(0), "acc_norm_stderr,none": "N/A" },
            },
            versions: { arc_challenge: pyFloat(1), arc_easy: pyFloat(1) },
            "n-shot": { arc_challenge: 0, arc_easy: 0 },
            higher_is_better: { arc_challenge: { acc: true, acc_norm: true }, arc_easy: { acc: true, acc_norm: true } },
        };
        expect(makeTable(results)).toBe(
            [
                "|    Tasks    |Version|Filter|n-shot| Metric |   |Value|   |Stderr|",
                "|-------------|------:|------|-----:|--------|---|----:|---|------|",
                "|arc_challenge|      1|none  |     0|acc     |↑  |  0.0|±  |   N/A|",
                "|             |       |none  |     0|acc_norm|↑  |  0.0|±  |   N/A|",
                "|arc_easy     |      1|none  |     0|acc     |↑  |  0.3|±  |   N/A|",
                "|             |       |none  |     0|acc_norm|↑  |  0.1|±  |   N/A|",
            ].join("\n"),
        );
    });

    it("reproduces the lambada_openai golden table (metrics sorted, mixed decimals)", () => {
        const results = {
            results: {
                lambada_openai: { name: "lambada_openai", alias: "lambada_openai", sample_len: 10, "perplexity,none": pyFloat(605.38661), "perplexity_stderr,none": "N/A", "acc,none": pyFloat(0.1), "acc_stderr,none": "N/A" },
            },
            versions: { lambada_openai: pyFloat(1) },
            "n-shot": { lambada_openai: 0 },
            higher_is_better: { lambada_openai: { perplexity: false, acc: true } },
        };
        expect(makeTable(results)).toBe(
            [
                "|    Tasks     |Version|Filter|n-shot|  Metric  |   | Value  |   |Stderr|",
                "|--------------|------:|------|-----:|----------|---|-------:|---|------|",
                "|lambada_openai|      1|none  |     0|acc       |↑  |  0.1000|±  |   N/A|",
                "|              |       |none  |     0|perplexity|↓  |605.3866|±  |   N/A|",
            ].join("\n"),
        );
    });

    it("right-aligns numeric stderr with the column's decimals", () => {
        const results = {
            results: { piqa: { alias: "piqa", "acc,none": pyFloat(0.6), "acc_stderr,none": pyFloat(0.16329931618554522) } },
            versions: { piqa: pyFloat(1) },
            "n-shot": { piqa: 0 },
            higher_is_better: { piqa: { acc: true } },
        };
        expect(makeTable(results).split("\n")[2]).toBe("|piqa |      1|none  |     0|acc   |↑  |  0.6|±  |0.1633|");
    });

    it("prints the header line like lm-eval main", () => {
        expect(
            tableHeaderLine({ model: "mamba_ssm", modelArgs: "{'pretrained': 'state-spaces/mamba-130m'}", genKwargs: "{}", limit: 10, numFewshot: null, batchSize: "auto", batchSizes: [64] }),
        ).toBe("mamba_ssm ({'pretrained': 'state-spaces/mamba-130m'}), gen_kwargs: ({}), limit: 10.0, num_fewshot: None, batch_size: auto ([64])");
    });
});
