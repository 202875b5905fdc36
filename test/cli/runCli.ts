/** Runs the CLI from the TypeScript sources in a child process (tests spawn `node --import tsx` on this file). */
import { main } from "../../src/cli/main.js";

process.exitCode = await main(process.argv.slice(2));
