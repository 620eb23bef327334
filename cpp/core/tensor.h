#pragma once
// Tensor: a shape, strides and offset over ref-counted, 64-byte aligned storage. Views share the
// storage (and its version counter, which in-place writes bump so autograd can detect that a
// tensor saved for backward was modified). Tensor is a cheap handle (one shared_ptr).
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace nc {

using Shape = DimVector;  // shapes and strides (core/shape.h)
struct Node;
struct DerivedCopy;  // core/derived_copy.h

struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<void> owner;        // keeps wrapped memory (a NumPy array) alive; null for ours
  std::atomic<uint64_t> version{0};   // bumped by every in-place write
  // Bumped when an in-place op records history on a tensor of this storage (rebasing its
  // grad_fn): a view whose grad_fn was taken before that no longer describes its values.
  std::atomic<uint64_t> history_version{0};
  bool cached = false;                // data came from cached_alloc(nbytes)
  // Set once the memory has been handed out to be written by others (a NumPy view from numpy()):
  // such writes bump no version, so nothing derived from the contents may be cached.
  std::atomic<bool> exposed{false};
  // A copy of the values in a kernel's layout and what it was made from (core/derived_copy.h,
  // read and replaced atomically); freed with the storage.
  std::shared_ptr<const DerivedCopy> derived;

  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();

  static std::shared_ptr<Storage> allocate(size_t nbytes);
  static std::shared_ptr<Storage> wrap(void* data, size_t nbytes, std::shared_ptr<void> owner);
};

struct LeafHooks;  // core/autograd.h

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::Float32;

  // Autograd. A leaf has no grad_fn; a non-leaf requires grad iff it has a grad_fn.
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;
  uint32_t output_nr = 0;               // which output of grad_fn this tensor is
  std::shared_ptr<TensorImpl> grad;     // accumulated gradient (leaves, or retain_grad())
  std::weak_ptr<Node> grad_accumulator; // the AccumulateGrad node of a leaf
  bool retains_grad = false;
  bool is_view = false;                 // shares storage with a base produced by a view op
  std::shared_ptr<LeafHooks> hooks;     // register_hook / post-accumulate hooks of a leaf (rare)
  uint64_t view_history_version = 0;    // the storage's history_version when the view was made
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // A new contiguous tensor with uninitialised memory. `op` names the caller in errors (a negative
  // size, an element or byte count that overflows, memory that can't be allocated).
  static Tensor empty(const Shape& shape, DType dtype, const char* op = "empty");
  // A view of the same storage with another shape/strides/offset (no autograd history).
  Tensor as_strided_alias(const Shape& shape, const Shape& strides, int64_t offset) const;

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  DType dtype() const { return impl_->dtype; }
  const Shape& shape() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  int64_t offset() const { return impl_->offset; }
  int64_t dim() const { return static_cast<int64_t>(impl_->shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  bool is_contiguous() const;
  size_t itemsize() const { return nc::itemsize(impl_->dtype); }

  void* raw_data() const {
    return static_cast<char*>(impl_->storage->data) + impl_->offset * itemsize();
  }
  template <class T> T* data() const { return static_cast<T*>(raw_data()); }

  // Autograd state.
  bool requires_grad() const { return impl_->requires_grad; }
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  Tensor grad() const { return Tensor(impl_->grad); }
  uint64_t version() const { return impl_->storage->version.load(); }
  void bump_version() const { impl_->storage->version.fetch_add(1); }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

using TensorList = std::vector<Tensor>;

Shape contiguous_strides(const Shape& shape);
// Product of the sizes. Only for shapes of existing tensors, whose counts were checked when made.
int64_t shape_numel(const Shape& shape);
// The one size check every tensor goes through (Tensor::empty for new storage, as_strided_alias
// for views): a negative size is a ValueError, an element count (or, for checked_nbytes, a byte
// count) that overflows int64 a RuntimeError, both "[op] ..." naming the shape.
int64_t checked_numel(const Shape& shape, const char* op);
size_t checked_nbytes(const Shape& shape, DType dtype, const char* op);
// Normalises a possibly negative dim for a tensor of `ndim` dims; names the op on error.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

}  // namespace nc
