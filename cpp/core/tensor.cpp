#include "core/tensor.h"

#include <algorithm>
#include <limits>

#include "core/allocator.h"
#include "core/error.h"

namespace nc {

// Our own memory is freed by the destructor rather than by an `owner` deleter, which saves a
// control-block allocation per tensor.
std::shared_ptr<Storage> Storage::allocate(size_t nbytes) {
  auto s = std::make_shared<Storage>();
  s->data = cached_alloc(nbytes);
  s->nbytes = nbytes;
  s->cached = true;
  return s;
}

Storage::~Storage() {
  if (cached) cached_free(data, nbytes);
}

std::shared_ptr<Storage> Storage::wrap(void* data, size_t nbytes, std::shared_ptr<void> owner) {
  auto s = std::make_shared<Storage>();
  s->data = data;
  s->nbytes = nbytes;
  s->owner = std::move(owner);
  return s;
}

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return st;
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

int64_t checked_numel(const Shape& shape, const char* op) {
  // PyTorch's rules: the product of the sizes taken in order (a 0 ends any overflow) and the
  // contiguous strides (products of the trailing sizes, a 0 counted as 1) must not overflow.
  uint64_t numel = 1;
  int64_t stride = 1;
  bool overflow = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    NC_CHECK(shape[i] >= 0, ValueError, "[", op, "] negative dimension ", shape[i], " in shape ", shape_str(shape));
    overflow = overflow || __builtin_mul_overflow(numel, static_cast<uint64_t>(shape[i]), &numel);
  }
  for (size_t i = shape.size(); i-- > 1;)
    overflow = overflow || __builtin_mul_overflow(stride, std::max<int64_t>(shape[i], 1), &stride);
  NC_CHECK(!overflow && numel <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), RuntimeError, "[", op,
           "] shape ", shape_str(shape), " has more elements than fit in a 64-bit count");
  return static_cast<int64_t>(numel);
}

size_t checked_nbytes(const Shape& shape, DType dtype, const char* op) {
  const int64_t n = checked_numel(shape, op);
  int64_t bytes = 0;
  NC_CHECK(!__builtin_mul_overflow(n, static_cast<int64_t>(nc::itemsize(dtype)), &bytes), RuntimeError, "[", op,
           "] shape ", shape_str(shape), " of ", dtype_name(dtype), " needs more bytes than fit in a 64-bit count");
  return static_cast<size_t>(bytes);
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  if (dim < lo || dim > hi)
    throw IndexError(cat_str("[", op, "] dimension out of range (expected to be in range of [", lo,
                             ", ", hi, "], but got ", dim, ")"));
  return dim < 0 ? dim + std::max<int64_t>(ndim, 1) : dim;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, const char* op) {
  const size_t nbytes = checked_nbytes(shape, dtype, op);
  auto impl = std::make_shared<TensorImpl>();
  try {
    impl->storage = Storage::allocate(nbytes);
  } catch (const std::bad_alloc&) {
    throw MemoryError(cat_str("[", op, "] can't allocate memory: you tried to allocate ", nbytes,
                              " bytes for a tensor of shape ", shape_str(shape), " ", dtype_name(dtype)));
  }
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::as_strided_alias(const Shape& shape, const Shape& strides, int64_t offset) const {
  checked_numel(shape, "view");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const { return impl_->shape[wrap_dim(d, dim(), "size")]; }

int64_t Tensor::numel() const { return shape_numel(impl_->shape); }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // nothing to lay out, as in PyTorch
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (impl_->shape[i] == 1) continue;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

}  // namespace nc
