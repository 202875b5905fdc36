/**
 * The task registry: lm-eval task names → TaskSpec, plus tags.
 *
 * API: `getTask(name)` (unknown → TaskError with a "did you mean …" suggestion), `resolveTaskNames(names)`
 * (expands tags such as ai2_arc, removes duplicates, keeps first-seen order), `listTasks()` (for `mamba-eval ls`).
 */
import { TaskError } from "../errors.js";
import { arcChallenge, arcEasy } from "./arc.js";
import { hellaswag } from "./hellaswag.js";
import { lambadaOpenai } from "./lambada.js";
import { openbookqa } from "./openbookqa.js";
import { piqa } from "./piqa.js";
import type { TaskSpec } from "./types.js";
import { winogrande } from "./winogrande.js";

const TASKS: readonly TaskSpec[] = [lambadaOpenai, hellaswag, piqa, arcEasy, arcChallenge, winogrande, openbookqa];
const BY_NAME = new Map(TASKS.map((t) => [t.name, t]));

/**
 * Tags that expand to tasks. Only ai2_arc is offered: lm-eval's `lambada` tag also contains lambada_standard and
 * its `multiple_choice` tag dozens of tasks we do not have, so expanding them here would silently differ.
 */
const TAGS: ReadonlyMap<string, readonly string[]> = new Map([["ai2_arc", ["arc_easy", "arc_challenge"]]]);

/** One row of `listTasks()`. */
export interface TaskListing {
    name: string;
    kind: "task" | "tag";
    /** For a task: dataset id/config/split; for a tag: its tasks. */
    description: string;
    metrics: string[];
}

/** The task named `name`, or a TaskError suggesting the closest known names. */
export function getTask(name: string): TaskSpec {
    const task = BY_NAME.get(name);
    if (task) return task;
    throw new TaskError(`unknown task "${name}"${suggestion(name)}; known tasks: ${[...BY_NAME.keys(), ...TAGS.keys()].join(", ")}`);
}

/** Task names and tags → the distinct tasks they select, in first-seen order. */
export function resolveTaskNames(names: readonly string[]): TaskSpec[] {
    const out: TaskSpec[] = [];
    const seen = new Set<string>();
    for (const raw of names) {
        const name = raw.trim();
        if (name === "") continue;
        const members = TAGS.get(name) ?? [name];
        for (const member of members) {
            const task = getTask(member);
            if (!seen.has(task.name)) {
                seen.add(task.name);
                out.push(task);
            }
        }
    }
    return out;
}

/** All tasks then all tags, for `mamba-eval ls`. */
export function listTasks(): TaskListing[] {
    const tasks: TaskListing[] = TASKS.map((t) => ({
        name: t.name,
        kind: "task",
        description: `${t.dataset.path}${t.dataset.name ? `/${t.dataset.name}` : ""} ${t.dataset.evalSplit} (${t.outputType})`,
        metrics: t.metrics.map((m) => m.name),
    }));
    const tags: TaskListing[] = [...TAGS].map(([name, members]) => ({
        name,
        kind: "tag",
        description: members.join(", "),
        metrics: [],
    }));
    return [...tasks, ...tags];
}

function suggestion(name: string): string {
    const candidates = [...BY_NAME.keys(), ...TAGS.keys()]
        .map((c) => ({ c, d: editDistance(name.toLowerCase(), c) }))
        .filter(({ c, d }) => d <= Math.max(2, Math.floor(c.length / 3)) || c.includes(name.toLowerCase()))
        .sort((a, b) => a.d - b.d || a.c.localeCompare(b.c))
        .map(({ c }) => `"${c}"`);
    return candidates.length > 0 ? ` (did you mean ${candidates.slice(0, 3).join(" or ")}?)` : "";
}

function editDistance(a: string, b: string): number {
    let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        const current = [i];
        for (let j = 1; j <= b.length; j++) {
            const cost = a[i - 1] === b[j - 1] ? 0 : 1;
            current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
        }
        previous = current;
    }
    return previous[b.length]!;
}
