/** Shared paths and helpers for the task tests. */
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Instance } from "../../src/evaluator/requests.js";
import { pyJsonDumps } from "../../src/io/pyjson.js";
import { sha256Hex } from "../../src/evaluator/samples.js";
import { taskDataDir } from "../testData.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The real task data (MAMBA_EVAL_DATA), for groups declared with describeWithData (test/testData.ts). */
export const sharedData = taskDataDir ?? "(MAMBA_EVAL_DATA not set)";
/** Our bundled sample documents. */
export const fixtures = path.join(repoRoot, "fixtures/tasks");

/**
 * sha256 over every request as Python would print it: one `json.dumps([doc_id, idx, context, continuation],
 * ensure_ascii=False)` per line, joined by "\n". The expected digests were computed with an independent Python script.
 */
export function requestsDigest(requests: readonly Instance[]): string {
    return sha256Hex(requests.map((r) => pyJsonDumps([r.docId, r.idx, r.context, r.continuation])).join("\n"));
}
