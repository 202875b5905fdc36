/**
 * What the A/B benches (prefillAB.ts, decodeAB.ts) check of their command line: one or more existing addon
 * builds, and positive integer counts. A problem is one line naming the script and the argument, exit status 2.
 */
import { existsSync } from "node:fs";

/** Prints `<script>: <message>` and exits with status 2 (a usage error, no stack trace). */
export function failUsage(script: string, message: string): never {
    console.error(`${script}: ${message}`);
    process.exit(2);
}

/** The addon files named on the command line, after checking them and the integer flags. */
export function checkedBuilds(script: string, positional: readonly unknown[], counts: Readonly<Record<string, number>>): string[] {
    const builds = positional.map(String);
    if (builds.length < 1) failUsage(script, "expected one or more addon files (*.node) as arguments");
    for (const [flag, v] of Object.entries(counts)) {
        if (!Number.isInteger(v) || v < 1) failUsage(script, `${flag}: expected a positive integer, got ${v}`);
    }
    for (const b of builds) {
        if (!existsSync(b)) failUsage(script, `${b}: no such addon file (copy native/build/Release/mamba_eval.node there first)`);
    }
    return builds;
}
