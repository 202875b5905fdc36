#!/usr/bin/env bash
# Builds the addon with the CUDA backend on a GPU machine, the one way check.sh and table3_e2e.sh share: cmake
# directly (cmake-js may need the network), output where NativeBackend looks (native/build/Release).
#
#   bash scripts/cuda/build_addon.sh LOG_FILE     (from the repository root; exit status 0 when it built)
#
# cuBLASLt: the CUDA toolkit's, or else the first cublasLt.h found on the machine (e.g. the nvidia-cublas wheel's),
# passed on as MAMBA_EVAL_CUBLAS_ROOT. On failure the log's last 40 lines are printed.
set -uo pipefail
log=${1:?usage: build_addon.sh LOG_FILE}
if [ ! -f /usr/local/cuda/include/cublasLt.h ] && [ -z "${MAMBA_EVAL_CUBLAS_ROOT:-}" ]; then
    header=$(find / -name cublasLt.h -not -path '/proc/*' 2>/dev/null | head -1)
    if [ -n "$header" ]; then export MAMBA_EVAL_CUBLAS_ROOT=$(dirname "$(dirname "$header")"); fi
    echo "cuBLASLt from ${MAMBA_EVAL_CUBLAS_ROOT:-nowhere}"
fi
if ! { MAMBA_EVAL_CUDA=ON cmake -S native -B native/build -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/native/build/Release" \
        && cmake --build native/build -j "$(nproc)"; } > "$log" 2>&1; then
    tail -40 "$log"
    echo "build_addon.sh: BUILD FAILED (log: $log)"
    exit 1
fi
grep -E "CUDA backend|warning" "$log" | head -20
