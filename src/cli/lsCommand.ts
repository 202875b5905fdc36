/** `mamba-eval ls`: the tasks and tags this build knows, with their dataset split and metrics. */
import type { CommandModule } from "yargs";
import { listTasks } from "../tasks/registry.js";
import type { CliIO } from "./io.js";

/** The listing as text. */
export function formatTaskList(): string {
    const rows = listTasks();
    const width = Math.max(...rows.map((r) => r.name.length));
    return rows
        .map((r) => `${r.name.padEnd(width)}  ${r.kind === "tag" ? `tag: ${r.description}` : `${r.description}  metrics: ${r.metrics.join(", ")}`}`)
        .join("\n") + "\n";
}

export function lsCommand(io: CliIO): CommandModule {
    return {
        command: "ls",
        describe: "List the available tasks and tags",
        handler: () => io.out(formatTaskList()),
    };
}
