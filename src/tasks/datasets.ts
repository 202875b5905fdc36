/**
 * A task's evaluation documents from one of two sources that give the same documents in the same order:
 * `--data_dir DIR` (the original published files, see localFiles.ts) or, by default, the HF datasets lm-eval uses
 * (parquet through the hub cache, see hubParquet.ts). process_docs is applied here, so callers get lm-eval's
 * `eval_docs`.
 *
 * API: `loadTaskDocs(task, { dataDir?, hub? })` → Doc[].
 */
import type { HubOptions } from "../hub/hub.js";
import { loadHubRows } from "./hubParquet.js";
import { loadLocalRows } from "./localFiles.js";
import type { Doc, TaskSpec } from "./types.js";

/** Where to read documents from. */
export interface DataSourceOptions {
    /** A directory in the original-files layout; when unset, the HF datasets are used. */
    dataDir?: string;
    /** Options passed to the hub (cache dir, endpoint, offline, progress). */
    hub?: HubOptions;
}

/** The task's evaluation split, in dataset order, after process_docs. */
export async function loadTaskDocs(task: TaskSpec, options: DataSourceOptions = {}): Promise<Doc[]> {
    const rows = options.dataDir !== undefined ? await loadLocalRows(options.dataDir, task.name) : await loadHubRows(task.dataset, options.hub);
    return task.processDoc ? rows.map(task.processDoc) : rows;
}
