#pragma once
// Non-temporal ("streaming") stores for outputs far larger than the caches. An ordinary store
// first reads the output's cache line from memory (write-allocate), so y = f(x) moves 3 bytes
// over the memory bus for every 2 it needs, and a + b 4 for 3; streaming stores skip that read.
// Outputs that fit in the caches keep ordinary stores: their consumer usually reads them next.
//
// write_streaming(out, n, body): body(dst, begin, len) computes elements [begin, begin + len) of
// the output into dst[0, len). Small outputs are computed in place (dst = out + begin); large ones
// block by block into a small buffer in L1, then streamed out. Every element is computed by
// the same body whatever the path, so results do not change. The body may read out[begin, ...)
// (in-place ops): a block is read before it is written.
#include "kernels/isa.h"

#include <algorithm>
#include <cstring>

namespace nc::kernels::NC_ISA {
namespace {

// Per call (one thread's share): below this, ordinary stores. 8 MB per thread is a quarter of
// the shared 32 MB L3 of the development machine with two threads.
constexpr int64_t kStreamMinBytes = int64_t(8) << 20;

template <class T, class Body>
inline void write_streaming(T* out, int64_t n, const Body& body) {
#if NC_HAVE_AVX2
  const uintptr_t addr = reinterpret_cast<uintptr_t>(out);
  if (n * static_cast<int64_t>(sizeof(T)) < kStreamMinBytes || addr % sizeof(T) != 0) {
    body(out, 0, n);
    return;
  }
  // From a cache-line boundary, in blocks of a few whole lines: measured on Zen 3, 512-byte bursts
  // of streaming stores beat both storing from registers one vector at a time and 4 KB blocks.
  const int64_t head = std::min<int64_t>(n, static_cast<int64_t>((64 - addr % 64) % 64 / sizeof(T)));
  body(out, 0, head);
  constexpr int64_t kBlock = 512 / sizeof(T);
  alignas(32) T buf[kBlock];
  for (int64_t i = head; i < n; i += kBlock) {
    const int64_t len = std::min(kBlock, n - i);
    body(buf, i, len);
    const int64_t bytes = len * static_cast<int64_t>(sizeof(T)), full = bytes & ~int64_t(31);
    char* dst = reinterpret_cast<char*>(out + i);
    const char* src = reinterpret_cast<const char*>(buf);
    for (int64_t k = 0; k < full; k += 32) {
      const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(src + k));
      _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + k), v);
    }
    std::memcpy(dst + full, src + full, bytes - full);
  }
  _mm_sfence();  // streaming stores are weakly ordered: make them visible before returning
#else
  body(out, 0, n);
#endif
}

}  // namespace
}  // namespace nc::kernels::NC_ISA
