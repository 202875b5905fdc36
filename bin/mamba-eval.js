#!/usr/bin/env node
// Entry point of the `mamba-eval` command: runs the compiled CLI (npm run build writes dist/).
import { main } from "../dist/cli/main.js";

main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err) => { process.stderr.write(`mamba-eval: ${err instanceof Error ? err.message : String(err)}\n`); process.exitCode = 1; },
);
