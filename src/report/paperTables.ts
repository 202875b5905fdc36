/**
 * Published zero-shot numbers (lm-evaluation-harness) for Mamba, Mamba-2 and the baselines they were
 * compared with, transcribed from the papers and a public lm-eval reproduction:
 *   - "mamba-t3":   Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
 *                   arXiv 2312.00752, Table 3 "Zero-shot Evaluations" (p. 12, §4.2.2); average over 6 tasks.
 *   - "mamba2-t10": Dao & Gu, "Transformers are SSMs" (Mamba-2), arXiv 2405.21060, Table 10 (appendix D;
 *                   main-text Table 1 is a subset); average over 7 tasks (adds OpenBookQA acc_norm).
 *   - "mamba2-t3":  the same paper, Table 3 (§9.2.3, 2.7B hybrids trained to 300B tokens on the Pile).
 *   - "repro":      a third-party lm-eval 0.4.9.1 reproduction (`--model mamba_ssm`, batch 256) by GitHub
 *                   user AkagawaTsurunaki, paper_tables.md §C.1, with OpenBookQA; values there are fractions
 *                   (kept as printed in `printed`), in `values` ×100.
 * Accuracies are percentages; LAMBADA ppl is lambada_openai perplexity. null = not reported.
 * `average` is the average as printed; `averageOver` how many tasks it covers (6, or 7 with OpenBookQA).
 * Note: the Mamba paper prints 50.0 (Mamba-370M) and 57.1 (Mamba-790M) although their six columns
 * average 51.67 and 56.12; always recompute an average from the columns (see paper_tables.md).
 */

/** The published columns: the Mamba paper's seven (LAMBADA ppl + six accuracies) and the Mamba-2 paper's OpenBookQA. */
export interface Table3Values {
    lambadaPpl: number | null;
    lambadaAcc: number | null;
    hellaswag: number | null;
    piqa: number | null;
    arcEasy: number | null;
    arcChallenge: number | null;
    winogrande: number | null;
    /** Mamba-2 paper only (openbookqa acc_norm); null in the Mamba paper's rows. */
    openbookqa: number | null;
}

/**
 * The lm-eval task and metric behind each column, as both papers' appendices define them (Mamba §E.2, Mamba-2 §D.3;
 * paper_tables.md "Metric per column"): accuracy, except acc_norm for HellaSwag, ARC-C and OpenBookQA.
 */
export const PAPER_METRICS: Readonly<Record<keyof Table3Values, { task: string; metric: string }>> = {
    lambadaPpl: { task: "lambada_openai", metric: "perplexity" },
    lambadaAcc: { task: "lambada_openai", metric: "acc" },
    hellaswag: { task: "hellaswag", metric: "acc_norm" },
    piqa: { task: "piqa", metric: "acc" },
    arcEasy: { task: "arc_easy", metric: "acc" },
    arcChallenge: { task: "arc_challenge", metric: "acc_norm" },
    winogrande: { task: "winogrande", metric: "acc" },
    openbookqa: { task: "openbookqa", metric: "acc_norm" },
};

export type ReferenceSource = "mamba-t3" | "mamba2-t10" | "mamba2-t3" | "repro";

/** One published row. */
export interface ReferenceRow {
    /** The model as the source names it. */
    model: string;
    /** Normalised checkpoint names that denote this model (see normaliseModelName). */
    ids: readonly string[];
    source: ReferenceSource;
    /** The paper metric of each column (accuracies ×100). */
    values: Table3Values;
    /** The average as printed, or null when the source prints none. */
    average: number | null;
    /** How many accuracy columns the printed average covers (6, or 7 with OpenBookQA); null without one. */
    averageOver: 6 | 7 | null;
    /**
     * Reproduction rows only: every number lm-eval printed for the checkpoint's tasks, as fractions (perplexity
     * as is), keyed "<task>/<metric>" (e.g. "openbookqa/acc" and "openbookqa/acc_norm"); `values` are taken from it.
     */
    printed?: Readonly<Record<string, number>>;
}

/** Human-readable citation of each source. */
export const REFERENCE_SOURCES: Record<ReferenceSource, string> = {
    "mamba-t3": "Mamba paper (arXiv 2312.00752), Table 3",
    "mamba2-t10": "Mamba-2 paper (arXiv 2405.21060), Table 10",
    "mamba2-t3": "Mamba-2 paper (arXiv 2405.21060), Table 3",
    repro: "lm-eval 0.4.9.1 reproduction (paper_tables.md §C.1)",
};

type Cells = [lambadaPpl: number | null, lambadaAcc: number | null, hellaswag: number | null, piqa: number | null,
    arcEasy: number | null, arcChallenge: number | null, winogrande: number | null];

function row(source: ReferenceSource, model: string, ids: readonly string[], cells: Cells,
    openbookqa: number | null, average: number | null, averageOver: 6 | 7 | null): ReferenceRow {
    const [lambadaPpl, lambadaAcc, hellaswag, piqa, arcEasy, arcChallenge, winogrande] = cells;
    return {
        model, ids, source, average, averageOver,
        values: { lambadaPpl, lambadaAcc, hellaswag, piqa, arcEasy, arcChallenge, winogrande, openbookqa },
    };
}

const t3 = (model: string, ids: readonly string[], cells: Cells, average: number) =>
    row("mamba-t3", model, ids, cells, null, average, 6);
const t10 = (model: string, ids: readonly string[], cells: Cells, obqa: number, average: number) =>
    row("mamba2-t10", model, ids, cells, obqa, average, 7);
const m2t3 = (model: string, ids: readonly string[], cells: Cells, obqa: number, average: number) =>
    row("mamba2-t3", model, ids, cells, obqa, average, 7);

/**
 * A reproduction row from what lm-eval printed (fractions, 4 decimals; perplexity as is): each column takes its
 * paper metric from `printed`, ×100 for accuracies (rounded to 2 decimals, removing binary noise such as 44.169999…).
 */
function repro(model: string, ids: readonly string[], printed: Readonly<Record<string, number>>): ReferenceRow {
    const values = {} as Table3Values;
    for (const [key, { task, metric }] of Object.entries(PAPER_METRICS) as Array<[keyof Table3Values, { task: string; metric: string }]>) {
        const value = printed[`${task}/${metric}`];
        values[key] = value === undefined ? null : metric === "perplexity" ? value : Math.round(value * 1e6) / 1e4;
    }
    return { model, ids, source: "repro", values, average: null, averageOver: null, printed };
}

/** paper_tables.md §A: Mamba paper, Table 3. */
export const MAMBA_TABLE3: readonly ReferenceRow[] = [
    t3("Hybrid H3-130M", ["hybrid-h3-130m", "h3-130m"], [89.48, 25.77, 31.7, 64.2, 44.4, 24.2, 50.6], 40.1),
    t3("Pythia-160M", ["pythia-160m"], [38.10, 33.0, 30.2, 61.4, 43.2, 24.1, 51.9], 40.6),
    t3("Mamba-130M", ["mamba-130m"], [16.07, 44.3, 35.3, 64.5, 48.0, 24.3, 51.9], 44.7),
    t3("Hybrid H3-360M", ["hybrid-h3-360m", "h3-360m"], [12.58, 48.0, 41.5, 68.1, 51.4, 24.7, 54.1], 48.0),
    t3("Pythia-410M", ["pythia-410m"], [10.84, 51.4, 40.6, 66.9, 52.1, 24.6, 53.8], 48.2),
    t3("Mamba-370M", ["mamba-370m"], [8.14, 55.6, 46.5, 69.5, 55.1, 28.0, 55.3], 50.0),
    t3("Pythia-1B", ["pythia-1b"], [7.92, 56.1, 47.2, 70.7, 57.0, 27.1, 53.5], 51.9),
    t3("Mamba-790M", ["mamba-790m"], [6.02, 62.7, 55.1, 72.1, 61.2, 29.5, 56.1], 57.1),
    t3("GPT-Neo 1.3B", ["gpt-neo-1.3b"], [7.50, 57.2, 48.9, 71.1, 56.2, 25.9, 54.9], 52.4),
    t3("Hybrid H3-1.3B", ["hybrid-h3-1.3b", "h3-1.3b"], [11.25, 49.6, 52.6, 71.3, 59.2, 28.1, 56.9], 53.0),
    t3("OPT-1.3B", ["opt-1.3b"], [6.64, 58.0, 53.7, 72.4, 56.7, 29.6, 59.5], 55.0),
    t3("Pythia-1.4B", ["pythia-1.4b"], [6.08, 61.7, 52.1, 71.0, 60.5, 28.5, 57.2], 55.2),
    t3("RWKV-1.5B", ["rwkv-1.5b", "rwkv-4-1b5-pile"], [7.04, 56.4, 52.5, 72.4, 60.5, 29.4, 54.6], 54.3),
    t3("Mamba-1.4B", ["mamba-1.4b"], [5.04, 64.9, 59.1, 74.2, 65.5, 32.8, 61.5], 59.7),
    t3("GPT-Neo 2.7B", ["gpt-neo-2.7b"], [5.63, 62.2, 55.8, 72.1, 61.1, 30.2, 57.6], 56.5),
    t3("Hybrid H3-2.7B", ["hybrid-h3-2.7b", "h3-2.7b"], [7.92, 55.7, 59.7, 73.3, 65.6, 32.3, 61.4], 58.0),
    t3("OPT-2.7B", ["opt-2.7b"], [5.12, 63.6, 60.6, 74.8, 60.8, 31.3, 61.0], 58.7),
    t3("Pythia-2.8B", ["pythia-2.8b"], [5.04, 64.7, 59.3, 74.0, 64.1, 32.9, 59.7], 59.1),
    t3("RWKV-3B", ["rwkv-3b", "rwkv-4-3b-pile"], [5.24, 63.9, 59.6, 73.7, 67.8, 33.1, 59.6], 59.6),
    t3("Mamba-2.8B", ["mamba-2.8b"], [4.23, 69.2, 66.1, 75.2, 69.7, 36.3, 63.5], 63.3),
    t3("GPT-J-6B", ["gpt-j-6b"], [4.10, 68.3, 66.3, 75.4, 67.0, 36.6, 64.1], 63.0),
    t3("OPT-6.7B", ["opt-6.7b"], [4.25, 67.7, 67.2, 76.3, 65.6, 34.9, 65.5], 62.9),
    t3("Pythia-6.9B", ["pythia-6.9b"], [4.45, 67.1, 64.0, 75.2, 67.3, 35.5, 61.3], 61.7),
    t3("RWKV-7.4B", ["rwkv-7.4b", "rwkv-4-7b-pile"], [4.38, 67.2, 65.5, 76.1, 67.8, 37.5, 61.0], 62.5),
];

/** paper_tables.md §B: Mamba-2 paper, Table 10 (7-task average). */
export const MAMBA2_TABLE10: readonly ReferenceRow[] = [
    t10("Hybrid H3-130M", ["hybrid-h3-130m", "h3-130m"], [89.48, 25.8, 31.7, 64.2, 44.4, 24.2, 50.6], 27.0, 38.2),
    t10("Pythia-160M", ["pythia-160m"], [38.10, 33.0, 30.2, 61.4, 43.2, 24.1, 51.9], 29.2, 39.0),
    t10("Mamba-130M", ["mamba-130m"], [16.07, 44.3, 35.2, 64.5, 48.0, 24.2, 51.9], 28.8, 42.4),
    t10("Mamba-2-130M", ["mamba2-130m", "mamba-2-130m"], [16.86, 43.9, 35.3, 64.9, 47.4, 24.2, 52.1], 30.6, 42.6),
    t10("Hybrid H3-360M", ["hybrid-h3-360m", "h3-360m"], [12.58, 48.0, 41.5, 68.1, 51.4, 24.7, 54.1], 31.6, 45.6),
    t10("Pythia-410M", ["pythia-410m"], [10.84, 51.4, 40.6, 66.9, 52.1, 24.6, 53.8], 30.0, 45.6),
    t10("Mamba-370M", ["mamba-370m"], [8.14, 55.6, 46.5, 69.5, 55.1, 28.0, 55.3], 30.8, 48.7),
    t10("Mamba-2-370M", ["mamba2-370m", "mamba-2-370m"], [8.02, 55.8, 46.9, 70.5, 54.9, 26.9, 55.7], 32.4, 49.0),
    t10("Pythia-1B", ["pythia-1b"], [7.92, 56.1, 47.2, 70.7, 57.0, 27.1, 53.5], 31.4, 49.0),
    t10("Mamba-790M", ["mamba-790m"], [6.02, 62.7, 55.1, 72.1, 61.2, 29.5, 56.1], 34.2, 53.0),
    t10("Mamba-2-780M", ["mamba2-780m", "mamba-2-780m"], [5.86, 61.7, 54.9, 72.0, 61.0, 28.5, 60.2], 36.2, 53.5),
    t10("GPT-Neo 1.3B", ["gpt-neo-1.3b"], [7.50, 57.2, 48.9, 71.1, 56.2, 25.9, 54.9], 33.6, 49.7),
    t10("Hybrid H3-1.3B", ["hybrid-h3-1.3b", "h3-1.3b"], [11.25, 49.6, 52.6, 71.3, 59.2, 28.1, 56.9], 34.4, 50.3),
    t10("OPT-1.3B", ["opt-1.3b"], [6.64, 58.0, 53.7, 72.4, 56.7, 29.6, 59.5], 33.2, 51.9),
    t10("Pythia-1.4B", ["pythia-1.4b"], [6.08, 61.7, 52.1, 71.0, 60.5, 28.5, 57.2], 30.8, 51.7),
    t10("RWKV4-1.5B", ["rwkv-1.5b", "rwkv4-1.5b", "rwkv-4-1b5-pile"], [7.04, 56.4, 52.5, 72.4, 60.5, 29.4, 54.6], 34.0, 51.4),
    t10("Mamba-1.4B", ["mamba-1.4b"], [5.04, 65.0, 59.1, 74.2, 65.5, 32.8, 61.5], 36.4, 56.4),
    t10("Mamba-2-1.3B", ["mamba2-1.3b", "mamba-2-1.3b"], [5.02, 65.7, 59.9, 73.2, 64.3, 33.3, 60.9], 37.8, 56.4),
    t10("GPT-Neo 2.7B", ["gpt-neo-2.7b"], [5.63, 62.2, 55.8, 72.1, 61.1, 30.2, 57.6], 33.2, 53.2),
    t10("Hybrid H3-2.7B", ["hybrid-h3-2.7b", "h3-2.7b"], [7.92, 55.7, 59.7, 73.3, 65.6, 32.3, 61.4], 33.6, 54.5),
    t10("OPT-2.7B", ["opt-2.7b"], [5.12, 63.6, 60.6, 74.8, 60.8, 31.3, 61.0], 35.2, 55.3),
    t10("Pythia-2.8B", ["pythia-2.8b"], [5.04, 64.7, 59.3, 74.0, 64.1, 32.9, 59.7], 35.2, 55.7),
    t10("RWKV4-3B", ["rwkv-3b", "rwkv4-3b", "rwkv-4-3b-pile"], [5.24, 63.9, 59.6, 73.7, 67.8, 33.1, 59.6], 37.0, 56.4),
    t10("Mamba-2.8B", ["mamba-2.8b"], [4.23, 69.2, 66.1, 75.2, 69.7, 36.3, 63.5], 39.6, 59.9),
    t10("Mamba-2-2.7B", ["mamba2-2.7b", "mamba-2-2.7b"], [4.10, 69.7, 66.6, 76.4, 69.6, 36.4, 64.0], 38.8, 60.2),
    t10("GPT-J-6B", ["gpt-j-6b"], [4.10, 68.3, 66.3, 75.4, 67.0, 36.6, 64.1], 38.2, 59.4),
    t10("OPT-6.7B", ["opt-6.7b"], [4.25, 67.7, 67.2, 76.3, 65.6, 34.9, 65.5], 37.4, 59.2),
    t10("Pythia-6.9B", ["pythia-6.9b"], [4.45, 67.1, 64.0, 75.2, 67.3, 35.5, 61.3], 38.0, 58.3),
    t10("RWKV4-7.4B", ["rwkv-7.4b", "rwkv4-7.4b", "rwkv-4-7b-pile"], [4.38, 67.2, 65.5, 76.1, 67.8, 37.5, 61.0], 40.2, 59.3),
];

/** paper_tables.md §B, second table: Mamba-2 paper, Table 3 (2.7B architecture ablations). */
export const MAMBA2_TABLE3: readonly ReferenceRow[] = [
    m2t3("Transformer++", ["transformerpp-2.7b", "transformer++"], [3.99, 70.3, 66.4, 75.2, 67.7, 37.8, 63.9], 40.4, 60.2),
    m2t3("Mamba-2", ["mamba2-2.7b", "mamba-2-2.7b"], [4.10, 69.7, 66.6, 76.4, 69.6, 36.4, 64.0], 38.8, 60.2),
    m2t3("Mamba-2-MLP", ["mamba2-mlp-2.7b", "mamba-2-mlp"], [4.18, 69.3, 65.0, 76.4, 68.1, 37.0, 63.1], 38.2, 59.6),
    m2t3("Mamba-2-Attention", ["mamba2attn-2.7b", "mamba-2-attention"], [3.85, 71.1, 67.8, 75.8, 69.9, 37.8, 65.3], 39.0, 61.0),
    m2t3("Mamba-2-MLP-Attention", ["mamba2-mlp-attn-2.7b", "mamba-2-mlp-attention"], [3.95, 70.0, 66.6, 75.4, 70.6, 38.6, 64.6], 39.2, 60.7),
];

/**
 * paper_tables.md §C.1: the third-party lm-eval 0.4.9.1 reproduction, every number of its table as lm-eval printed
 * it (stderr aside). Its paper metric for OpenBookQA is acc_norm, as in the Mamba-2 paper.
 */
export const LM_EVAL_REPRODUCTION: readonly ReferenceRow[] = [
    repro("mamba-130m", ["mamba-130m"], stateSpaces(16.0450, 0.4417, [0.3077, 0.3525], [0.6453, 0.6333], [0.4798, 0.4205], [0.1971, 0.2406], 0.5249, [0.1660, 0.2840])),
    repro("mamba-370m", ["mamba-370m"], stateSpaces(8.1375, 0.5560, [0.3720, 0.4646], [0.6942, 0.6844], [0.5492, 0.4819], [0.2474, 0.2799], 0.5556, [0.1960, 0.3120])),
    repro("mamba-790m", ["mamba-790m"], stateSpaces(6.0149, 0.6146, [0.4230, 0.5501], [0.7193, 0.7247], [0.6107, 0.5391], [0.2637, 0.2935], 0.5627, [0.2300, 0.3420])),
    repro("mamba-1.4b", ["mamba-1.4b"], stateSpaces(5.0423, 0.6491, [0.4502, 0.5909], [0.7405, 0.7399], [0.6553, 0.6120], [0.2978, 0.3268], 0.6109, [0.2620, 0.3640])),
    repro("mamba-2.8b", ["mamba-2.8b"], stateSpaces(4.2303, 0.6909, [0.4951, 0.6612], [0.7530, 0.7584], [0.6961, 0.6427], [0.3439, 0.3635], 0.6338, [0.2940, 0.3960])),
    repro("mamba2-2.7b", ["mamba2-2.7b"], stateSpaces(4.0932, 0.6947, [0.4962, 0.6654], [0.7633, 0.7617], [0.6957, 0.6481], [0.3319, 0.3643], 0.6393, [0.2920, 0.3880])),
    repro("transformerpp-2.7b", ["transformerpp-2.7b"], stateSpaces(3.9878, 0.7027, [0.4971, 0.6637], [0.7519, 0.7644], [0.6776, 0.6305], [0.3242, 0.3780], 0.6377, [0.2900, 0.4060])),
    repro("mamba2attn-2.7b", ["mamba2attn-2.7b"], stateSpaces(3.8489, 0.7105, [0.5025, 0.6779], [0.7573, 0.7595], [0.6987, 0.6629], [0.3456, 0.3788], 0.6511, [0.3040, 0.3900])),
    // EleutherAI/pythia-160m (--model hf): the paper metric of each task only, no OpenBookQA.
    repro("pythia-160m", ["pythia-160m"], {
        "lambada_openai/perplexity": 38.0065, "lambada_openai/acc": 0.3264, "hellaswag/acc_norm": 0.3028, "piqa/acc": 0.6148,
        "arc_easy/acc": 0.4364, "arc_challenge/acc_norm": 0.2406, "winogrande/acc": 0.5178,
    }),
    // mamba-2.8b-slimpj: no LAMBADA in the source (its boolq, race, truthfulqa_mc2 and MMLU are not Table-3 tasks).
    repro("mamba-2.8b-slimpj", ["mamba-2.8b-slimpj"], {
        "hellaswag/acc": 0.5248, "hellaswag/acc_norm": 0.7097, "piqa/acc": 0.7709, "piqa/acc_norm": 0.7818,
        "arc_easy/acc": 0.7260, "arc_easy/acc_norm": 0.6818, "arc_challenge/acc": 0.3857, "arc_challenge/acc_norm": 0.4164,
        "winogrande/acc": 0.6598, "openbookqa/acc": 0.2860, "openbookqa/acc_norm": 0.3980,
    }),
];

/** One state-spaces row of §C.1 in its column order; pairs are acc / acc_norm. */
function stateSpaces(lambadaPpl: number, lambadaAcc: number, hellaswag: [number, number], piqa: [number, number],
    arcEasy: [number, number], arcChallenge: [number, number], winogrande: number, openbookqa: [number, number]): Record<string, number> {
    return {
        "lambada_openai/perplexity": lambadaPpl, "lambada_openai/acc": lambadaAcc,
        "hellaswag/acc": hellaswag[0], "hellaswag/acc_norm": hellaswag[1], "piqa/acc": piqa[0], "piqa/acc_norm": piqa[1],
        "arc_easy/acc": arcEasy[0], "arc_easy/acc_norm": arcEasy[1], "arc_challenge/acc": arcChallenge[0], "arc_challenge/acc_norm": arcChallenge[1],
        "winogrande/acc": winogrande, "openbookqa/acc": openbookqa[0], "openbookqa/acc_norm": openbookqa[1],
    };
}

/** Which published table to compare against: the papers, or the lm-eval 0.4.9.1 reproduction. */
export type ReferenceKind = "paper" | "repro";

/** What the CLI's --reference accepts: one kind, or both (paper lines then reproduction lines). */
export type ReferenceChoice = ReferenceKind | "both";
export const REFERENCE_CHOICES = ["paper", "repro", "both"] as const satisfies readonly ReferenceChoice[];

/** The reference kinds a --reference choice stands for, in display order. */
export function referenceKinds(choice: ReferenceChoice): ReferenceKind[] {
    return choice === "both" ? ["paper", "repro"] : [choice];
}

/** The papers' tables. */
export type PaperSource = Exclude<ReferenceSource, "repro">;

const PAPER_TABLES: Readonly<Record<PaperSource, readonly ReferenceRow[]>> = {
    "mamba-t3": MAMBA_TABLE3,
    "mamba2-t10": MAMBA2_TABLE10,
    "mamba2-t3": MAMBA2_TABLE3,
};

/** The Mamba paper's Table 3 first (all Mamba-1 sizes and the baselines), then Mamba-2 Table 10, then its Table 3. */
export const MAMBA_PAPER_ORDER: readonly PaperSource[] = ["mamba-t3", "mamba2-t10", "mamba2-t3"];

/**
 * The reference row for a normalised model name. "paper": the first paper table in `paperOrder` that lists the
 * model; "repro": the lm-eval 0.4.9.1 reproduction.
 */
export function referenceRowFor(name: string, kind: ReferenceKind, paperOrder: readonly PaperSource[] = MAMBA_PAPER_ORDER): ReferenceRow | undefined {
    const tables = kind === "paper" ? paperOrder.map((source) => PAPER_TABLES[source]) : [LM_EVAL_REPRODUCTION];
    for (const table of tables) {
        const found = table.find((r) => r.ids.includes(name));
        if (found !== undefined) return found;
    }
    return undefined;
}
