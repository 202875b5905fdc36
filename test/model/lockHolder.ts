/**
 * A second process for the lock tests: takes the hub's download lock `argv[2]` through withFileLock, prints
 * "held", keeps it for `argv[3]` ms, then releases it and exits (or is killed while holding it).
 */
import { withFileLock } from "../../src/hub/hubLock.js";

const [file, holdMs] = process.argv.slice(2);
await withFileLock(file!, { pollMs: 20, staleMs: 60_000 }, async () => {
    process.stdout.write("held\n");
    await new Promise((done) => setTimeout(done, Number(holdMs)));
});
