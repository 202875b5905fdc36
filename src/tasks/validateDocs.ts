/**
 * Every document checked before any scoring: its prompt, target and choices are built exactly as the evaluation
 * will build them, and a multiple-choice answer must name one of the document's choices. So a bad answer key, a
 * label outside the choices or a malformed field is reported at once, naming the file and line (or dataset row)
 * and the document, instead of after every request was scored.
 */
import { DataFormatError } from "../errors.js";
import type { Doc, TaskSpec } from "./types.js";

/** Checks one document; throws a DataFormatError naming what is wrong. */
export function validateDoc(task: TaskSpec, doc: Doc): void {
    const text = task.docToText(doc);
    const target = task.docToTarget(doc);
    if (task.outputType !== "multiple_choice") {
        if (typeof text !== "string" || typeof target !== "string") {
            throw new DataFormatError(`${task.name}: a loglikelihood document needs a text context and a text target`);
        }
        return;
    }
    const choices = task.docToChoice?.(doc) ?? [];
    if (choices.length === 0) throw new DataFormatError(`${task.name}: the document has no answer choices`);
    const inRange = (index: number) => Number.isInteger(index) && index >= 0 && index < choices.length;
    // Multiple-input tasks (winogrande) give the gold index as the "text"; the target then follows the choice.
    if (typeof text === "number" && !inRange(text)) {
        throw new DataFormatError(`${task.name}: the answer (choice ${text + 1}) is not one of the document's ${choices.length} choices`);
    }
    if (typeof target === "number" && !inRange(target)) {
        throw new DataFormatError(`${task.name}: the answer index ${target} is not one of the document's ${choices.length} choices (0 to ${choices.length - 1})`);
    }
    if (typeof target === "string" && typeof text !== "number" && !choices.includes(target)) {
        throw new DataFormatError(`${task.name}: the answer ${JSON.stringify(target)} is not one of the document's choices`);
    }
}

/** validateDoc on every document; an error is prefixed with `where(i)` (file:line, or dataset row). */
export function validateDocs(task: TaskSpec, docs: readonly Doc[], where: (index: number) => string): void {
    docs.forEach((doc, i) => {
        try {
            validateDoc(task, doc);
        } catch (e) {
            if (e instanceof DataFormatError) throw new DataFormatError(`${where(i)}: ${e.message}`);
            throw e;
        }
    });
}
