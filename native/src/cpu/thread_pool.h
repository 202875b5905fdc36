// thread_pool.h — a fixed set of std::threads that run one parallel loop at a time.
//
// Waits spin briefly (about 50 µs of pause instructions) before sleeping on a condition variable: a decode
// step runs 4 (Mamba-1) to 6 (Mamba-2) parallel loops per layer, and a sleep/wake round trip per loop cost
// more than the loop itself.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mamba {

class ThreadPool {
public:
    // `threads` workers in total, the calling thread included (threads - 1 are spawned).
    explicit ThreadPool(int threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Runs fn(part, n_parts) once for each part in [0, size()) and waits for all of them.
    // The first exception thrown by any part is rethrown here.
    void run(const std::function<void(int part, int n_parts)>& fn);

    // Splits [0, n) into size() contiguous ranges, each a multiple of `grain` long (except the last),
    // and runs fn(begin, end) on each non-empty range.
    void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

private:
    void worker_loop(int part);

    int n_threads_;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    const std::function<void(int, int)>* job_ = nullptr;
    std::atomic<uint64_t> generation_{0};  // written under mutex_, read by spinning workers without it
    std::atomic<int> pending_{0};          // workers still running the current job (decremented under mutex_)
    std::atomic<bool> stop_{false};
    std::exception_ptr error_;
};

}  // namespace mamba
