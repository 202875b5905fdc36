// device_buffer.cuh — an owning, growable block of device memory (cudaMalloc, never managed memory).
#pragma once
#include <cstddef>
#include <utility>

#include "cuda_check.cuh"

namespace mamba::cuda {

/** Owns one cudaMalloc'd block. Moving transfers ownership; destruction frees it. */
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(size_t bytes) { reserve(bytes); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& other) noexcept : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
        if (this != &other) {
            release();
            ptr_ = std::exchange(other.ptr_, nullptr);
            bytes_ = std::exchange(other.bytes_, 0);
        }
        return *this;
    }
    ~DeviceBuffer() { release(); }

    /** Ensures at least `bytes` are allocated; old contents are NOT kept when it grows. */
    void reserve(size_t bytes) {
        if (bytes <= bytes_) return;
        release();
        check_cuda(cudaMalloc(&ptr_, bytes), "cudaMalloc");
        bytes_ = bytes;
    }
    void release() noexcept {
        if (ptr_ != nullptr) cudaFree(ptr_);
        ptr_ = nullptr;
        bytes_ = 0;
    }
    template <typename T>
    T* as() const { return static_cast<T*>(ptr_); }
    void* data() const { return ptr_; }
    size_t bytes() const { return bytes_; }

private:
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

}  // namespace mamba::cuda
