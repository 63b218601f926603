#include "band_pool.hpp"

#include <stdexcept>
#include <string>

#include "poll.hpp"

#if defined(__linux__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace warmrtc {
namespace {

// Workers are named so that a process's threads say what they are (ps, top, debuggers, the
// tests). Linux names a thread from outside, so the name is there as soon as it exists; macOS
// only lets a thread name itself.
void name_worker(std::thread& worker) {
#if defined(__linux__)
  pthread_setname_np(worker.native_handle(), kBandWorkerName);
#else
  (void)worker;
#endif
}

void name_this_worker() {
#if defined(__APPLE__)
  pthread_setname_np(kBandWorkerName);
#endif
}

}  // namespace

BandPool::BandPool(int threads) {
  if (threads < 2) {
    throw std::invalid_argument("a band pool needs 2 or more threads, got " +
                                std::to_string(threads));
  }
  workers_.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) {
    workers_.emplace_back([this] { work(); });
    name_worker(workers_.back());
  }
}

BandPool::~BandPool() { close(); }

void BandPool::close() {
  std::lock_guard<std::mutex> no_job(run_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    wake_calls_.fetch_add(1, std::memory_order_release);
  }
  job_posted_.notify_all();
  for (std::thread& t : workers_) t.join();
}

bool BandPool::try_run(int bands, const BandTask& task) {
  std::unique_lock<std::mutex> mine(run_mutex_, std::try_to_lock);
  if (!mine.owns_lock()) return false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return false;
    task_ = &task;
    bands_ = bands;
    next_band_ = 0;
    bands_left_ = bands;
    error_ = nullptr;
    ++job_;
    wake_calls_.fetch_add(1, std::memory_order_release);
  }
  job_posted_.notify_all();
  std::unique_lock<std::mutex> lock(mutex_);
  run_bands(lock, job_);
  if (bands_left_ != 0) {
    lock.unlock();
    poll_until([this] { return bands_left_.load(std::memory_order_acquire) == 0; });
    lock.lock();
  }
  job_done_.wait(lock, [this] { return bands_left_ == 0; });
  task_ = nullptr;
  if (error_) std::rethrow_exception(error_);
  return true;
}

// Takes bands of job `job` one at a time until none is left, so a worker that wakes late finds
// nothing to do. A job cannot end, nor the next one start, while one of its bands runs, so
// the task stays valid while it is used.
void BandPool::run_bands(std::unique_lock<std::mutex>& lock, uint64_t job) {
  while (job_ == job && next_band_ < bands_) {
    const int band = next_band_++;
    const BandTask& task = *task_;
    lock.unlock();
    std::exception_ptr error;
    try {
      task(band);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error && !error_) error_ = error;
    if (--bands_left_ == 0) job_done_.notify_all();
  }
}

void BandPool::work() {
  name_this_worker();
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (!stopping_ && job_ == seen) {  // the next frame may be a moment away
      const uint64_t posted = wake_calls_.load(std::memory_order_acquire);
      lock.unlock();
      poll_until([&] { return wake_calls_.load(std::memory_order_acquire) != posted; });
      lock.lock();
    }
    job_posted_.wait(lock, [&] { return stopping_ || job_ != seen; });
    if (stopping_) return;
    seen = job_;
    run_bands(lock, seen);
  }
}

}  // namespace warmrtc
