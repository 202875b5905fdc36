/** Token ids given on the command line (--ids, --ids-file entries): parsing and the vocabulary check. */
import { UsageError } from "../errors.js";

/** Parses "1,2,3" into token ids. */
export function parseIdList(text: string, flag: string): number[] {
    const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
    if (parts.length === 0) throw new UsageError(`${flag}: expected comma-separated token ids, got ${JSON.stringify(text)}`);
    return parts.map((p) => {
        if (!/^\d+$/.test(p)) throw new UsageError(`${flag}: "${p}" is not a token id (a non-negative integer)`);
        return Number.parseInt(p, 10);
    });
}

/** Checks ids are inside the model's (padded) vocabulary. */
export function checkIds(ids: readonly number[], vocab: number, flag: string): void {
    for (const id of ids) {
        if (id >= vocab) throw new UsageError(`${flag}: token id ${id} is outside the model's vocabulary [0, ${vocab})`);
    }
}
