/**
 * Packs the CLI's runtime packages for a GPU machine (Linux x64, no registry) into a small node_modules tree:
 * the root package.json's runtime dependencies that the CLI imports, their dependencies (transitively), and for
 * the two native packages only what Linux x64 loads (tokenizers: index.js + the linux-x64-gnu binary;
 * better-sqlite3: lib/ + build/Release/better_sqlite3.node). Run here by scripts/cuda/prepare.sh:
 *
 *   npx tsx scripts/cuda/packRuntime.ts OUT_NODE_MODULES
 *
 * scripts/cuda/harness_check.sh links the result into the repository's node_modules on the device.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";

/** What the compiled CLI imports at run time (build-only dependencies such as cmake-js and tsx are left out). */
const CLI_RUNTIME_PACKAGES = [
    "tokenizers",
    "better-sqlite3",
    "yargs",
    "zod",
    "p-queue",
    "csv-stringify",
    "hyparquet",
    "hyparquet-compressors",
];

/** Per-package file lists where the whole package would be wasteful; everything else is copied whole. */
const TRIMMED: Record<string, string[]> = {
    tokenizers: ["package.json", "index.js", "tokenizers.linux-x64-gnu.node"],
    "better-sqlite3": ["package.json", "lib", "build/Release/better_sqlite3.node"],
};

/** Files Node never loads: TypeScript sources and declarations, source maps (zod alone ships 4 MB of .ts). */
const NOT_RUN = /\.(ts|cts|mts|map)$/;

/** Dependencies that are only needed to install a package, never to run it. */
const INSTALL_ONLY = new Set(["prebuild-install"]);

function dependenciesOf(dir: string): string[] {
    const manifest = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as {
        dependencies?: Record<string, string>;
    };
    return Object.keys(manifest.dependencies ?? {}).filter((name) => !INSTALL_ONLY.has(name));
}

function sizeOf(p: string): number {
    const st = statSync(p);
    if (!st.isDirectory()) return st.size;
    return readdirSync(p).reduce((total, entry) => total + sizeOf(path.join(p, entry)), 0);
}

async function main(): Promise<void> {
    const out = process.argv[2];
    if (!out) {
        process.stderr.write("packRuntime: usage: packRuntime.ts OUT_NODE_MODULES\n");
        process.exitCode = 2;
        return;
    }
    const source = path.resolve("node_modules");
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    const seen = new Set<string>();
    const queue = [...CLI_RUNTIME_PACKAGES];
    while (queue.length > 0) {
        const name = queue.shift() as string;
        if (seen.has(name)) continue;
        seen.add(name);
        const from = path.join(source, name);
        if (!existsSync(path.join(from, "package.json"))) {
            throw new Error(`packRuntime: package ${name} is not installed in ${source} (run npm ci)`);
        }
        const files = TRIMMED[name];
        if (files) {
            for (const file of files) {
                const src = path.join(from, file);
                if (!existsSync(src)) throw new Error(`packRuntime: ${src} is missing (expected for Linux x64)`);
                cpSync(src, path.join(out, name, file), { recursive: true });
            }
        } else {
            cpSync(from, path.join(out, name), { recursive: true, filter: (file) => !NOT_RUN.test(file) });
        }
        queue.push(...dependenciesOf(from));
    }
    const bytes = sizeOf(out);
    process.stdout.write(`packRuntime: ${seen.size} packages, ${(bytes / 2 ** 20).toFixed(1)} MiB in ${out}\n`);
}

main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
});
