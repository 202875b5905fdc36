// scan_queue.cuh — taking and finishing the items of a scan launch ordered by a ScanQueue (kernels.cuh says how
// the queue works). The hand-over is the usual flag protocol: the producer's block finishes its stores, passes a
// barrier, and one thread fences and publishes the flag; the consumer's first thread spins on the flag, fences, and
// the block passes a barrier before any thread reads the state (through L2: __ldcg, never a stale L1 line).
#pragma once
#include "kernels.cuh"

namespace mamba::cuda {

struct ScanItem {
    int pos;    // position in q.order
    int block;  // channel block or head
    int seg;
};

/** Called by every thread of the block before it reads its initial state. */
__device__ __forceinline__ ScanItem scan_take(const ScanQueue& q) {
    // One level, positions on x (the Mamba-2 chunked scan builds its own item, heads on x, and does not come here).
    if (q.counter == nullptr) return ScanItem{int(blockIdx.x), int(blockIdx.y), q.order[blockIdx.x]};
    __shared__ unsigned ticket;
    if (threadIdx.x == 0) {
        const unsigned t = atomicAdd(q.counter, 1u);
        const int parent = q.parent[t / unsigned(q.blocks)];
        if (parent >= 0) {
            const volatile unsigned* flag = q.flags + static_cast<size_t>(parent) * q.blocks + t % unsigned(q.blocks);
            while (*flag != q.epoch) __nanosleep(100);
            __threadfence();
        }
        ticket = t;
    }
    __syncthreads();
    const int pos = static_cast<int>(ticket / unsigned(q.blocks));
    return ScanItem{pos, static_cast<int>(ticket % unsigned(q.blocks)), q.order[pos]};
}

/** Called by every thread of the block after its saved state is stored. */
__device__ __forceinline__ void scan_finish(const ScanQueue& q, const ScanItem& it) {
    if (q.counter == nullptr) return;
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        atomicExch(q.flags + static_cast<size_t>(it.pos) * q.blocks + it.block, q.epoch);
    }
}

}  // namespace mamba::cuda
