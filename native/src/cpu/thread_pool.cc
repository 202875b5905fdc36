// thread_pool.cc — see thread_pool.h.
#include "cpu/thread_pool.h"

#include <immintrin.h>

#include <algorithm>

namespace mamba {

namespace {
constexpr int kSpins = 4000;  // pause iterations before sleeping (≈ 50 µs)
}  // namespace

ThreadPool::ThreadPool(int threads) : n_threads_(std::max(1, threads)) {
    for (int part = 1; part < n_threads_; part++) workers_.emplace_back([this, part] { worker_loop(part); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int part) {
    uint64_t seen = 0;
    for (;;) {
        const std::function<void(int, int)>* job;
        for (int i = 0; i < kSpins && generation_.load(std::memory_order_acquire) == seen && !stop_.load(); i++) _mm_pause();
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
            if (stop_) return;
            seen = generation_.load();
            job = job_;
        }
        std::exception_ptr err;
        try {
            (*job)(part, n_threads_);
        } catch (...) {
            err = std::current_exception();
        }
        std::lock_guard<std::mutex> lock(mutex_);
        if (err && !error_) error_ = err;
        if (pending_.fetch_sub(1) == 1) done_.notify_one();
    }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
    if (n_threads_ == 1) {
        fn(0, 1);
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = &fn;
        pending_ = n_threads_ - 1;
        error_ = nullptr;
        generation_++;
    }
    wake_.notify_all();
    std::exception_ptr err;
    try {
        fn(0, n_threads_);
    } catch (...) {
        err = std::current_exception();
    }
    for (int i = 0; i < kSpins && pending_.load(std::memory_order_acquire) != 0; i++) _mm_pause();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_.load() == 0; });
    if (!err) err = error_;
    job_ = nullptr;
    if (err) std::rethrow_exception(err);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    const int64_t units = (n + grain - 1) / grain;
    const int parts = int(std::min<int64_t>(units, n_threads_));
    if (parts == 1) {
        fn(0, n);
        return;
    }
    run([&](int part, int) {
        if (part >= parts) return;
        const int64_t u0 = units * part / parts, u1 = units * (part + 1) / parts;
        const int64_t b = u0 * grain, e = std::min(n, u1 * grain);
        if (b < e) fn(b, e);
    });
}

}  // namespace mamba
