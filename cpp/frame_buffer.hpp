// Scratch memory for whole frames, kept per thread and reused from capture to capture.
#pragma once

#include <cstddef>
#include <cstdint>

namespace warmrtc {

// One block of bytes that grows when asked for more (its contents are then not kept) and is
// never zeroed. A frame-sized block is written and read in full on every frame, page after
// page, and with 4 KiB pages that costs a page-table walk every 4 KiB, dearer still in a virtual
// machine: on Linux, blocks of kHugeFrom bytes and more are laid out on 2 MiB boundaries and
// asked for as transparent huge pages (a 1080p I420 frame then spans 2 pages, not 760; where
// the system grants none they are ordinary pages). Not thread-safe: each thread has its own.
class FrameBuffer {
 public:
  static constexpr size_t kHugePage = size_t{2} << 20;
  // Half a huge page: a block this big wastes at most as much as it uses (720p I420 is 1.4 MB).
  static constexpr size_t kHugeFrom = kHugePage / 2;

  FrameBuffer() = default;
  ~FrameBuffer();
  FrameBuffer(const FrameBuffer&) = delete;
  FrameBuffer& operator=(const FrameBuffer&) = delete;

  // At least `bytes` bytes, valid until a call that asks for more. Throws std::bad_alloc.
  uint8_t* get(size_t bytes);

 private:
  void release();

  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
  bool mapped_ = false;  // mapped on huge-page boundaries (else from operator new[])
};

}  // namespace warmrtc
