/**
 * Published tables that `table3 --paper NAME` reproduces: which checkpoints, which tasks, which columns, and which
 * published rows they are shown beside.
 *
 *   mamba2-table3: the Mamba-2 paper's Table 3 (§9.2.3; 2.7B models trained on 300B tokens of the Pile):
 *     Transformer++, Mamba-2 and Mamba-2-Attention are the public checkpoints state-spaces/transformerpp-2.7b,
 *     mamba2-2.7b and mamba2attn-2.7b; Mamba-2-MLP and Mamba-2-MLP-Attention have none and are shown from the
 *     paper only. Seven tasks (with OpenBookQA), the average over seven.
 */
import { MAMBA2_TASKS } from "../io/bundled.js";
import { MAMBA2_TABLE3, type PaperSource, type ReferenceRow } from "./paperTables.js";
import type { Table3Layout } from "./table3.js";

export interface Table3Preset {
    /** What --paper names it. */
    name: string;
    /** The first line of table3.md. */
    title: string;
    /** The checkpoints run, in the paper's row order. */
    models: readonly string[];
    tasks: readonly string[];
    layout: Table3Layout;
    /** The paper table the rows are compared with first. */
    preferPaper: PaperSource;
    /** Every row of that table (the ones without a run of ours are shown from the paper only). */
    paperRows: readonly ReferenceRow[];
}

export const TABLE3_PRESETS = {
    "mamba2-table3": {
        name: "mamba2-table3",
        title: "Mamba-2 paper (arXiv 2405.21060), Table 3: 2.7B models, 300B tokens of the Pile (zero-shot, lm-eval)",
        models: ["state-spaces/transformerpp-2.7b", "state-spaces/mamba2-2.7b", "state-spaces/mamba2attn-2.7b"],
        tasks: MAMBA2_TASKS,
        layout: "mamba2",
        preferPaper: "mamba2-t3",
        paperRows: MAMBA2_TABLE3,
    },
} as const satisfies Record<string, Table3Preset>;

export type Table3PresetName = keyof typeof TABLE3_PRESETS;
export const TABLE3_PRESET_NAMES = Object.keys(TABLE3_PRESETS) as Table3PresetName[];

/** The preset's paper rows that no row of the table matches (by normalised model name). */
export function paperRowsNotRun(preset: Table3Preset, runModels: readonly string[]): ReferenceRow[] {
    return preset.paperRows.filter((row) => !runModels.some((model) => row.ids.includes(model)));
}
