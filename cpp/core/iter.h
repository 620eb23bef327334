#pragma once
// Strided iteration over N operands that share one (broadcast) shape: the engine under every
// elementwise op, copy and dtype conversion. Dimensions that are contiguous across all operands
// are merged, then the element range is split between threads; each thread calls
// `inner(ptrs, byte_strides, n)` for runs along the innermost dimension.
#include <array>
#include <cstdint>
#include <vector>

#include "core/parallel.h"
#include "core/tensor.h"

namespace nc {

// Strides (in elements) of `t` broadcast to `shape`: size-1 or missing dims get stride 0.
Shape broadcast_strides(const Tensor& t, const Shape& shape, const char* op);
// The broadcast shape of two shapes, or a ValueError naming the op and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

constexpr int64_t kElementwiseGrain = 32768;

template <size_t N, class Inner>
void strided_loop(const Shape& shape, const std::array<Shape, N>& strides,
                  const std::array<int64_t, N>& itemsizes, const std::array<char*, N>& base,
                  const Inner& inner, int64_t grain = kElementwiseGrain) {
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  if (numel == 0) return;
  // Collect non-trivial dims (outermost first) with byte strides, merging contiguous neighbours.
  // Up to kInlineDims dims live on the stack: this setup runs for every op, however small.
  constexpr size_t kInlineDims = 8;
  std::array<std::array<int64_t, N>, kInlineDims> bstrides_inline;
  std::vector<std::array<int64_t, N>> bstrides_heap;
  if (shape.size() > kInlineDims) bstrides_heap.resize(shape.size());
  std::array<int64_t, N>* bstrides = shape.size() > kInlineDims ? bstrides_heap.data() : bstrides_inline.data();
  Shape sizes;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    std::array<int64_t, N> st;
    for (size_t k = 0; k < N; ++k) st[k] = strides[k][d] * itemsizes[k];
    if (!sizes.empty()) {
      std::array<int64_t, N>& last = bstrides[sizes.size() - 1];
      bool mergeable = true;
      for (size_t k = 0; k < N; ++k)
        if (last[k] != st[k] * shape[d]) mergeable = false;
      if (mergeable) {
        sizes.back() *= shape[d];
        last = st;
        continue;
      }
    }
    bstrides[sizes.size()] = st;
    sizes.push_back(shape[d]);
  }
  if (sizes.empty()) {
    bstrides[0] = {};
    sizes.push_back(1);
  }
  const int64_t nd = static_cast<int64_t>(sizes.size());
  const int64_t inner_n = sizes.back();
  const std::array<int64_t, N> inner_strides = bstrides[nd - 1];
  parallel_for(0, numel, grain, [&](int64_t begin, int64_t end) {
    Shape idx(static_cast<size_t>(nd));
    int64_t rem = begin;
    for (int64_t d = nd - 1; d >= 0; --d) {
      idx[d] = rem % sizes[d];
      rem /= sizes[d];
    }
    int64_t i = begin;
    while (i < end) {
      std::array<char*, N> ptrs;
      for (size_t k = 0; k < N; ++k) {
        char* p = base[k];
        for (int64_t d = 0; d < nd; ++d) p += idx[d] * bstrides[d][k];
        ptrs[k] = p;
      }
      const int64_t run = std::min(inner_n - idx[nd - 1], end - i);
      inner(ptrs, inner_strides, run);
      i += run;
      idx[nd - 1] += run;
      for (int64_t d = nd - 1; d > 0 && idx[d] == sizes[d]; --d) {
        idx[d] = 0;
        idx[d - 1]++;
      }
    }
  });
}

}  // namespace nc
