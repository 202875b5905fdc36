#!/usr/bin/env bash
# Builds the native addon with AddressSanitizer + UndefinedBehaviorSanitizer into native/build-asan (the normal
# build in native/build is left alone) and runs the native tests and the fuzz tests against it, with the ASan
# runtime preloaded into Node. Any sanitizer report fails the run (halt_on_error, no UBSan recovery).
#
#   scripts/sanitize.sh                 # build + native tests + fuzz tests (a few minutes on 2 cores)
#   FUZZ_CASES=50000 scripts/sanitize.sh   # the long fuzz run
#   SANITIZE_SKIP_BUILD=1 scripts/sanitize.sh  # reuse native/build-asan
#
# The tests find the instrumented addon through MAMBA_EVAL_ADDON (read by loadAddon in
# src/addon/loadAddon.ts); the script checks that the process really mapped it.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=native/build-asan
ADDON="$PWD/$BUILD_DIR/Release/mamba_eval.node"
SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g -O1"

if [[ "${SANITIZE_SKIP_BUILD:-}" != "1" || ! -f "$ADDON" ]]; then
    echo "sanitize: building $BUILD_DIR (ASan + UBSan)" >&2
    # CUDA is left out of the sanitized build: ASan does not instrument device code, and the CPU path is what
    # the bounds checks and kernels under test run on.
    MAMBA_EVAL_CUDA=OFF npx cmake-js compile -d native --out "$BUILD_DIR" \
        --CDCMAKE_BUILD_TYPE=RelWithDebInfo \
        --CDCMAKE_CXX_FLAGS="$SAN_FLAGS" \
        --CDCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
        --CDMAMBA_EVAL_CUDA=OFF \
        --parallel 2 >&2
fi
[[ -f "$ADDON" ]] || { echo "sanitize: $ADDON was not built" >&2; exit 1; }

CXX_BIN="${CXX:-c++}"
ASAN_RUNTIME="$("$CXX_BIN" -print-file-name=libasan.so)"
[[ -f "$ASAN_RUNTIME" ]] || { echo "sanitize: cannot find libasan.so (asked $CXX_BIN -print-file-name)" >&2; exit 1; }

export MAMBA_EVAL_ADDON="$ADDON"
# Node itself is not instrumented: leak checking would report V8's own allocations, so it is off.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:detect_odr_violation=0:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# The loader must honour MAMBA_EVAL_ADDON, or the tests below would exercise the uninstrumented build.
LD_PRELOAD="$ASAN_RUNTIME" node --import tsx --input-type=module -e '
import { readFileSync } from "node:fs";
const { loadAddon } = await import("./src/addon/loadAddon.ts");
loadAddon();
const maps = readFileSync("/proc/self/maps", "utf8");
if (!maps.includes(process.env.MAMBA_EVAL_ADDON)) {
    console.error(`sanitize: the addon loaded is not ${process.env.MAMBA_EVAL_ADDON}: src/addon/loadAddon.ts loadAddon() must read the MAMBA_EVAL_ADDON environment variable`);
    process.exit(1);
}
' >&2

LOG_DIR="$(mktemp -d)"
trap 'rm -rf "$LOG_DIR"' EXIT
export ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$LOG_DIR/asan"
export UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$LOG_DIR/ubsan"

status=0
LD_PRELOAD="$ASAN_RUNTIME" npx vitest run test/native test/fuzz test/metrics/bootstrapChunks.test.ts || status=$?

# A report from a forked worker may not fail vitest by itself: any log file is a failure.
if compgen -G "$LOG_DIR/*" > /dev/null; then
    echo "sanitize: sanitizer reports:" >&2
    cat "$LOG_DIR"/* >&2
    status=1
fi
if [[ $status -ne 0 ]]; then
    echo "sanitize: FAILED" >&2
else
    echo "sanitize: native and fuzz tests clean under ASan + UBSan" >&2
fi
exit $status
