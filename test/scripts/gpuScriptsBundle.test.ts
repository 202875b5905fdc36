/**
 * scripts/cuda/prepare.sh bundles the GPU check and bench programs into plain ESM for a GPU machine that has no
 * Node packages: those bundles must build, and the programs that take no tokenizer must not pull in `tokenizers`
 * (a native package the bundle cannot hold). A src/ import that drags the tokenizer in (as loadModel.ts does) broke
 * prepare.sh once; this test fails first.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

async function bundleInputs(program: string, external: string[] = []): Promise<string[]> {
    const result = await build({
        entryPoints: [path.join(root, "scripts/cuda", `${program}.ts`)],
        bundle: true, platform: "node", format: "esm", target: "node20", write: false, metafile: true,
        external, logLevel: "silent",
    });
    expect(result.errors).toEqual([]);
    return Object.keys(result.metafile.inputs);
}

describe("prepare.sh's bundles", () => {
    for (const program of ["check", "bench", "compareSamples", "abOutputs"]) {
        it(`${program}.ts bundles without the tokenizers package`, async () => {
            const inputs = await bundleInputs(program);
            expect(inputs.filter((f) => f.includes("node_modules/tokenizers/"))).toEqual([]);
            expect(inputs.some((f) => f.includes(`scripts/cuda/${program}.ts`))).toBe(true);
        });
    }
    it("replay.ts bundles with tokenizers left external", async () => {
        const inputs = await bundleInputs("replay", ["tokenizers"]);
        expect(inputs.some((f) => f.endsWith("src/model/tokenizer.ts"))).toBe(true);
    });
}, 60_000);
