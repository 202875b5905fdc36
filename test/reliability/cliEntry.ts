/**
 * The CLI as a user runs it, from the TypeScript sources: what bin/mamba-eval.js does with dist/ (exit status from
 * main(), and a last-resort one-line message for anything main() lets through).
 */
import { main } from "../../src/cli/main.js";

main(process.argv.slice(2)).then(
    (code) => {
        process.exitCode = code;
    },
    (err: unknown) => {
        process.stderr.write(`mamba-eval: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
    },
);
