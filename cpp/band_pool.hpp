// A video source's own worker threads, which split one frame's conversion into row bands.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace warmrtc {

// The name each worker thread carries (at most 15 characters, Linux's limit).
constexpr const char* kBandWorkerName = "warmrtc-band";

// `threads - 1` workers started once and parked on a condition variable; the calling thread
// works bands too, so `threads` cores share a frame. No thread is created per frame. Threads
// poll a moment before they sleep (see poll.hpp): for the next frame, or the last band.
class BandPool {
 public:
  using BandTask = std::function<void(int band)>;

  // threads >= 2 (1 would be no pool at all).
  explicit BandPool(int threads);
  ~BandPool();
  BandPool(const BandPool&) = delete;
  BandPool& operator=(const BandPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs task(0) .. task(bands - 1), spread over the workers and the caller, and returns when
  // all are done; the first exception a band threw is rethrown here. Returns false, having run
  // nothing, when another caller has the pool or it is closed: the caller then does the whole
  // frame itself, so concurrent captures never wait for each other's bands.
  bool try_run(int bands, const BandTask& task);

  // Waits for a running job, then stops and joins the workers. Idempotent; try_run returns
  // false afterwards.
  void close();

 private:
  void work();
  void run_bands(std::unique_lock<std::mutex>& lock, uint64_t job);

  std::mutex run_mutex_;  // one job at a time; held by its caller for the job's length

  std::mutex mutex_;  // guards everything below
  std::condition_variable job_posted_, job_done_;
  uint64_t job_ = 0;  // generation: workers wait for it to change
  const BandTask* task_ = nullptr;
  int bands_ = 0, next_band_ = 0;
  // Also read without the mutex, by threads polling before they sleep (see poll.hpp).
  std::atomic<int> bands_left_{0};
  std::atomic<uint64_t> wake_calls_{0};  // jobs posted, and close(): what a worker polls for
  std::exception_ptr error_;
  bool stopping_ = false;

  std::vector<std::thread> workers_;
};

}  // namespace warmrtc
