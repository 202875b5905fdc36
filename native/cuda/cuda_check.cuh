// cuda_check.cuh — turn CUDA / cuBLAS failures into one-line std::runtime_error messages.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace mamba::cuda {

/** Throws "cuda: <what>: <error string>" when `status` is not cudaSuccess. */
inline void check_cuda(cudaError_t status, const char* what) {
    if (status != cudaSuccess) {
        throw std::runtime_error(std::string("cuda: ") + what + ": " + cudaGetErrorString(status));
    }
}

/** Throws "cublasLt: <what>: status N" when `status` is not CUBLAS_STATUS_SUCCESS. */
inline void check_cublas(cublasStatus_t status, const char* what) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        throw std::runtime_error(std::string("cublasLt: ") + what + ": status " + std::to_string(static_cast<int>(status)));
    }
}

/** Checks the launch of the kernel just queued (configuration errors surface here, faults at the next sync). */
inline void check_launch(const char* kernel) { check_cuda(cudaGetLastError(), kernel); }

}  // namespace mamba::cuda
