#include "frame_buffer.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace warmrtc {
namespace {

size_t round_up(size_t bytes, size_t to) { return (bytes + to - 1) / to * to; }

#if defined(__linux__) && defined(MADV_HUGEPAGE)
// `bytes` (a multiple of the huge page) starting on a huge-page boundary and advised as huge
// pages; null when the system refuses the mapping.
uint8_t* map_huge(size_t bytes) {
  // One huge page more than asked, then what lies before and after the boundary goes back.
  const size_t page = FrameBuffer::kHugePage;
  const size_t span = bytes + page;
  void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(p), end = start + span;
  const uintptr_t first = round_up(start, page), last = first + bytes;
  if (first > start) munmap(p, first - start);
  if (end > last) munmap(reinterpret_cast<void*>(last), end - last);
  // Advice the kernel may ignore (transparent huge pages off): the memory is good either way.
  madvise(reinterpret_cast<void*>(first), bytes, MADV_HUGEPAGE);
  return reinterpret_cast<uint8_t*>(first);
}
void unmap(uint8_t* data, size_t bytes) { munmap(data, bytes); }
#else
uint8_t* map_huge(size_t) { return nullptr; }
void unmap(uint8_t*, size_t) {}
#endif

}  // namespace

FrameBuffer::~FrameBuffer() { release(); }

void FrameBuffer::release() {
  if (mapped_) {
    unmap(data_, capacity_);
  } else {
    delete[] data_;
  }
  data_ = nullptr;
  capacity_ = 0;
  mapped_ = false;
}

uint8_t* FrameBuffer::get(size_t bytes) {
  if (bytes <= capacity_) return data_;
  release();
  if (bytes >= kHugeFrom) {
    const size_t rounded = round_up(bytes, kHugePage);
    if (uint8_t* huge = map_huge(rounded)) {
      data_ = huge;
      capacity_ = rounded;
      mapped_ = true;
      return data_;
    }
  }
  data_ = new uint8_t[bytes];
  capacity_ = bytes;
  return data_;
}

}  // namespace warmrtc
