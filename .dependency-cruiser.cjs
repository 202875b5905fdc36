/**
 * The layers of src/, and the one rule between them: imports point down this list, never up or sideways
 * (tasks and lm, backend and metrics are siblings that do not import each other). Checked by `npm test`.
 *
 *   cli → report → evaluator → tasks | lm → backend | metrics → model → hub → addon | io
 *
 * src/index.ts (the package's public entry) and src/errors.ts (error classes, imported by every layer) stand
 * outside the list.
 */
const LAYERS = [
    ["cli"],
    ["report"],
    ["evaluator"],
    ["tasks", "lm"],
    ["backend", "metrics"],
    ["model"],
    ["hub"],
    ["addon", "io"],
];

/** Folders of src/ that a folder may import: itself and every folder of a lower layer. */
function allowedBelow(rank) {
    return LAYERS.slice(rank + 1).flat();
}

const upward = LAYERS.flatMap((layer, rank) =>
    layer.map((folder) => ({
        name: `no-upward-from-${folder}`,
        comment: `src/${folder} may import only ${allowedBelow(rank).join(", ") || "nothing else in src"} (and src/errors.ts)`,
        severity: "error",
        from: { path: `^src/${folder}/` },
        to: {
            path: "^src/",
            pathNot: [`^src/${folder}/`, "^src/errors\\.ts$", ...allowedBelow(rank).map((f) => `^src/${f}/`)],
        },
    })),
);

module.exports = {
    forbidden: [
        {
            name: "no-circular",
            comment: "no import cycles anywhere in src/",
            severity: "error",
            from: { path: "^src/" },
            to: { circular: true },
        },
        {
            name: "no-unknown-folder",
            comment: "every module of src/ lives in a layer folder (or is index.ts / errors.ts)",
            severity: "error",
            from: { path: "^src/", pathNot: [`^src/(${LAYERS.flat().join("|")})/`, "^src/(index|errors)\\.ts$"] },
            to: {},
        },
        {
            name: "nothing-imports-the-entry",
            comment: "src/index.ts is the public entry; modules inside src/ never import it",
            severity: "error",
            from: { path: "^src/" },
            to: { path: "^src/index\\.ts$" },
        },
        {
            name: "errors-is-a-leaf",
            comment: "src/errors.ts imports nothing from src/",
            severity: "error",
            from: { path: "^src/errors\\.ts$" },
            to: { path: "^src/" },
        },
        ...upward,
    ],
    options: {
        doNotFollow: { path: "node_modules" },
        exclude: { path: "(^|/)(node_modules|dist)/" },
        tsPreCompilationDeps: true,
        tsConfig: { fileName: "tsconfig.json" },
        enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"], extensions: [".ts", ".js"] },
    },
};
