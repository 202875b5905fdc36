/**
 * A task's evaluation documents from one of two sources that give the same documents in the same order:
 * `--data_dir DIR` (the original published files, see localFiles.ts) or, by default, the HF datasets lm-eval uses
 * (parquet through the hub cache, see hubParquet.ts). process_docs is applied here, so callers get lm-eval's
 * `eval_docs`, and every document is validated (validateDocs.ts) before any is returned: bad data is reported with
 * its file and line (or dataset row) before a run scores anything, and a split without documents is refused.
 *
 * API: `loadTaskDocs(task, { dataDir?, hub? })` → Doc[].
 */
import { DataFormatError } from "../errors.js";
import type { HubOptions } from "../hub/hub.js";
import { loadHubRows } from "./hubParquet.js";
import { loadLocalSource } from "./localFiles.js";
import type { Doc, TaskSpec } from "./types.js";
import { validateDocs } from "./validateDocs.js";

/** Where to read documents from. */
export interface DataSourceOptions {
    /** A directory in the original-files layout; when unset, the HF datasets are used. */
    dataDir?: string;
    /** Options passed to the hub (cache dir, endpoint, offline, progress). */
    hub?: HubOptions;
}

/** The task's evaluation split, in dataset order, after process_docs, every document validated. */
export async function loadTaskDocs(task: TaskSpec, options: DataSourceOptions = {}): Promise<Doc[]> {
    let rows: Doc[];
    let where: (index: number) => string;
    if (options.dataDir !== undefined) {
        const source = await loadLocalSource(options.dataDir, task.name);
        rows = source.rows;
        where = (i) => source.locations[i]!;
    } else {
        rows = await loadHubRows(task.dataset, options.hub);
        const split = `${task.dataset.path}${task.dataset.name ? ` (${task.dataset.name})` : ""} ${task.dataset.evalSplit}`;
        if (rows.length === 0) throw new DataFormatError(`${split}: the split holds no documents`);
        where = (i) => `${split} row ${i}`;
    }
    const docs = rows.map((row, i) => {
        if (!task.processDoc) return row;
        try {
            return task.processDoc(row);
        } catch (e) {
            if (e instanceof DataFormatError) throw new DataFormatError(`${where(i)}: ${e.message}`);
            throw e;
        }
    });
    validateDocs(task, docs, where);
    return docs;
}
