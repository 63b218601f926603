// Waiting a moment before sleeping: for waits that usually end within microseconds.
#pragma once

#include <chrono>
#include <thread>

namespace warmrtc {

// Waking a thread that sleeps on a futex (a mutex or condition variable) took tens of
// microseconds here, more than the band of work or the frame copy being waited for, and was
// paid on every frame. So such waits poll first, for at most kPoll, yielding the core to any
// other thread that wants it, and sleep only after that.
constexpr std::chrono::microseconds kPoll{200};

// Calls done() until it returns true (then true) or kPoll has passed (then false). A wait that
// is over at once (the usual case, e.g. a turn no other thread holds) reads no clock.
template <typename Done>
bool poll_until(Done done) {
  if (done()) return true;
  const auto until = std::chrono::steady_clock::now() + kPoll;
  do {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::yield();
  } while (!done());
  return true;
}

}  // namespace warmrtc
