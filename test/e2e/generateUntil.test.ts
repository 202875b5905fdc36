/**
 * generate_until on neox-mamba1 against the float64 reference's greedy continuation (fixtures/neox-mamba1/
 * reference.json: 16 greedy tokens after "Once upon a time, in a small village,", smallest top-2 margin 0.14,
 * far above float32 error): the output stops at the first until string and is cut before it.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NativeBackend } from "../../src/backend/NativeBackend.js";
import type { MambaLM } from "../../src/lm/MambaLM.js";
import { openFixtureLM, repoRoot } from "./helpers.js";

const greedy = (JSON.parse(readFileSync(path.join(repoRoot, "fixtures/neox-mamba1/reference.json"), "utf8")) as {
    greedy: { prompt_text: string; continuation: number[]; continuation_text: string };
}).greedy;

describe("generate_until (neox-mamba1)", () => {
    let lm: MambaLM;
    let backend: NativeBackend;
    beforeAll(async () => {
        ({ lm, backend } = await openFixtureLM("neox-mamba1"));
    });
    afterAll(async () => {
        await backend?.[Symbol.asyncDispose]();
    });

    it("the reference text holds the stop strings used below", () => {
        expect(greedy.continuation_text.startsWith(" encoding thriveshakeomit possibly endings endings")).toBe(true);
        expect(greedy.continuation).toHaveLength(16);
    });

    it("stops at the first until string, cuts before it, and otherwise runs to max_gen_toks", async () => {
        const context = greedy.prompt_text;
        const out = await lm.generateUntil([
            { context, until: ["endings"], maxGenToks: 16 },
            { context, until: ["never appears", "omit"], maxGenToks: 16 }, // stops inside a token ("shakeomit")
            { context, until: ["never appears"], maxGenToks: 16 },
            { context, until: ["endings"], maxGenToks: 2 },
        ]);
        expect(out[0]).toBe(" encoding thriveshakeomit possibly ");
        expect(out[1]).toBe(" encoding thriveshake");
        expect(out[2]).toBe(greedy.continuation_text);
        expect(out[3]).toBe(" encoding thrive");
    });

    it("generates the reference's greedy token ids", async () => {
        const ids = await lm.tokenizer!.encode(greedy.prompt_text);
        expect(await lm.generate(ids, { maxNewTokens: 16 })).toEqual(greedy.continuation);
    });
});
