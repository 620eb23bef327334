#pragma once
// A copy of a weight's values in a kernel's own layout (the GEMM's packed B panels, a Winograd
// convolution's transformed filters), cached on the weight's storage so that a layer run again
// with unchanged weights (eval, inference) skips the repacking. The copy records what it was made
// from: the storage's version counter (bumped by every in-place write), the view (offset, shape,
// strides, dtype) and the kernel table whose layout it is in (which also tells the kinds of copy
// apart: the storage has one slot, the latest copy replaces the one before).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "core/tensor.h"

namespace nc {

struct DerivedCopy {
  const void* table = nullptr;  // the kernel table (of the ISA in use) that made it
  uint64_t version = 0;
  int64_t offset = 0;
  Shape shape, strides;
  DType dtype = DType::Float32;
  void* data = nullptr;  // 64-byte aligned, owned
  DerivedCopy() = default;
  DerivedCopy(const DerivedCopy&) = delete;
  DerivedCopy& operator=(const DerivedCopy&) = delete;
  ~DerivedCopy() { std::free(data); }
};

// Whether a copy of w's values may be kept at all: not when the memory can be written behind the
// version counter's back (wrapped NumPy memory, or a storage handed out by numpy()).
inline bool may_derive(const Tensor& w) {
  const Storage& st = *w.impl()->storage;
  return !st.owner && !st.exposed.load();
}

// The storage's copy if `table` made it from w as w is now (at `version`), else null.
inline std::shared_ptr<const DerivedCopy> find_derived(const Tensor& w, const void* table, uint64_t version) {
  auto hit = std::atomic_load(&w.impl()->storage->derived);
  if (hit && hit->table == table && hit->version == version && hit->offset == w.offset() && hit->shape == w.shape() &&
      hit->strides == w.strides() && hit->dtype == w.dtype())
    return hit;
  return nullptr;
}

// w's copy in `table`'s layout: the cached one, else made now by fill(void* data) into `bytes`
// bytes and cached (replacing the slot's old copy). Null when fill refuses (returns false) or
// there is no memory for it; callers then take their uncached path. The version is read before
// filling, so a write racing with it leaves a copy that no later call matches.
template <class Fill>
std::shared_ptr<const DerivedCopy> derived_copy(const Tensor& w, const void* table, size_t bytes, Fill fill) {
  Storage& st = *w.impl()->storage;
  const uint64_t version = st.version.load();
  if (auto hit = find_derived(w, table, version)) return hit;
  auto copy = std::make_shared<DerivedCopy>();
  copy->data = std::aligned_alloc(64, std::max<size_t>((bytes + 63) / 64 * 64, 64));
  if (!copy->data || !fill(copy->data)) return nullptr;
  copy->table = table;
  copy->version = version;
  copy->offset = w.offset();
  copy->shape = w.shape();
  copy->strides = w.strides();
  copy->dtype = w.dtype();
  std::atomic_store(&st.derived, std::shared_ptr<const DerivedCopy>(copy));
  return copy;
}

}  // namespace nc
