#pragma once
// DimVector, the container of shapes and strides (nc::Shape). It behaves like the
// std::vector<int64_t> it replaced, and converts to and from one, but keeps up to kInline entries
// inside the object: a tensor of rank <= 6 then needs no heap allocation for its geometry, nor do
// the shape temporaries of an op. That is a large share of the fixed cost of a small op (PyTorch's
// DimVector is the same idea).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <new>
#include <type_traits>
#include <vector>

namespace nc {

class DimVector {
 public:
  static constexpr size_t kInline = 6;
  using value_type = int64_t;
  using size_type = size_t;
  using difference_type = std::ptrdiff_t;
  using reference = int64_t&;
  using const_reference = const int64_t&;
  using pointer = int64_t*;
  using const_pointer = const int64_t*;
  using iterator = int64_t*;
  using const_iterator = const int64_t*;
  using reverse_iterator = std::reverse_iterator<iterator>;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;

  DimVector() noexcept : data_(inline_) {}
  explicit DimVector(size_t n, int64_t value = 0) : DimVector() { assign(n, value); }
  DimVector(std::initializer_list<int64_t> il) : DimVector() { assign(il.begin(), il.end()); }
  template <class It, class = typename std::iterator_traits<It>::iterator_category>
  DimVector(It first, It last) : DimVector() { assign(first, last); }
  DimVector(const std::vector<int64_t>& v) : DimVector() { assign(v.data(), v.data() + v.size()); }  // NOLINT: implicit by design
  DimVector(const DimVector& o) : DimVector() { assign(o.begin(), o.end()); }
  DimVector(DimVector&& o) noexcept : DimVector() { take(o); }
  ~DimVector() { release(); }

  DimVector& operator=(const DimVector& o) {
    if (this != &o) assign(o.begin(), o.end());
    return *this;
  }
  DimVector& operator=(DimVector&& o) noexcept {
    if (this != &o) {
      release();
      data_ = inline_;
      capacity_ = kInline;
      take(o);
    }
    return *this;
  }
  DimVector& operator=(std::initializer_list<int64_t> il) {
    assign(il.begin(), il.end());
    return *this;
  }
  operator std::vector<int64_t>() const { return std::vector<int64_t>(begin(), end()); }  // NOLINT

  template <class It, class = typename std::iterator_traits<It>::iterator_category>
  void assign(It first, It last) {
    if constexpr (std::is_pointer_v<It>) {
      const size_t n = static_cast<size_t>(last - first);
      if (n <= capacity_) {
        // A forward copy is safe even when the range lies in this vector (it starts at or after data_).
        std::copy(first, last, data_);
        size_ = n;
        return;
      }
    }
    DimVector tmp;  // built apart: the range may lie in this vector
    for (; first != last; ++first) tmp.push_back(*first);
    *this = std::move(tmp);
  }
  void assign(size_t n, int64_t value) {
    size_ = 0;
    reserve(n);
    std::fill_n(data_, n, value);
    size_ = n;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return capacity_; }
  int64_t* data() { return data_; }
  const int64_t* data() const { return data_; }
  int64_t& operator[](size_t i) { return data_[i]; }
  const int64_t& operator[](size_t i) const { return data_[i]; }
  int64_t& front() { return data_[0]; }
  const int64_t& front() const { return data_[0]; }
  int64_t& back() { return data_[size_ - 1]; }
  const int64_t& back() const { return data_[size_ - 1]; }

  iterator begin() { return data_; }
  iterator end() { return data_ + size_; }
  const_iterator begin() const { return data_; }
  const_iterator end() const { return data_ + size_; }
  const_iterator cbegin() const { return data_; }
  const_iterator cend() const { return data_ + size_; }
  reverse_iterator rbegin() { return reverse_iterator(end()); }
  reverse_iterator rend() { return reverse_iterator(begin()); }
  const_reverse_iterator rbegin() const { return const_reverse_iterator(end()); }
  const_reverse_iterator rend() const { return const_reverse_iterator(begin()); }

  void reserve(size_t n) {
    if (n <= capacity_) return;
    const size_t cap = std::max(n, 2 * capacity_);
    auto* p = static_cast<int64_t*>(std::malloc(cap * sizeof(int64_t)));
    if (!p) throw std::bad_alloc();
    std::copy(data_, data_ + size_, p);
    release();
    data_ = p;
    capacity_ = cap;
  }
  void clear() { size_ = 0; }
  void push_back(int64_t v) {
    if (size_ == capacity_) reserve(size_ + 1);
    data_[size_++] = v;
  }
  void emplace_back(int64_t v) { push_back(v); }
  void pop_back() { --size_; }
  void resize(size_t n, int64_t value = 0) {
    reserve(n);
    if (n > size_) std::fill(data_ + size_, data_ + n, value);
    size_ = n;
  }

  iterator insert(const_iterator pos, int64_t value) { return insert(pos, size_t(1), value); }
  iterator insert(const_iterator pos, size_t n, int64_t value) {
    const size_t at = static_cast<size_t>(pos - data_);
    open_gap(at, n);
    std::fill_n(data_ + at, n, value);
    return data_ + at;
  }
  template <class It, class = typename std::iterator_traits<It>::iterator_category>
  iterator insert(const_iterator pos, It first, It last) {
    const size_t at = static_cast<size_t>(pos - data_);
    const DimVector values(first, last);  // the range may lie in this vector
    open_gap(at, values.size());
    std::copy(values.begin(), values.end(), data_ + at);
    return data_ + at;
  }
  iterator insert(const_iterator pos, std::initializer_list<int64_t> il) {
    return insert(pos, il.begin(), il.end());
  }
  iterator erase(const_iterator pos) { return erase(pos, pos + 1); }
  iterator erase(const_iterator first, const_iterator last) {
    const size_t at = static_cast<size_t>(first - data_), n = static_cast<size_t>(last - first);
    std::copy(data_ + at + n, data_ + size_, data_ + at);
    size_ -= n;
    return data_ + at;
  }

  friend bool operator==(const DimVector& a, const DimVector& b) {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
  }
  friend bool operator!=(const DimVector& a, const DimVector& b) { return !(a == b); }
  friend bool operator<(const DimVector& a, const DimVector& b) {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  void release() {
    if (data_ != inline_) std::free(data_);
  }
  // Takes o's contents (this must be empty and inline); leaves o empty.
  void take(DimVector& o) noexcept {
    if (o.data_ == o.inline_) {
      std::copy(o.inline_, o.inline_ + o.size_, inline_);
    } else {
      data_ = o.data_;
      capacity_ = o.capacity_;
      o.data_ = o.inline_;
      o.capacity_ = kInline;
    }
    size_ = o.size_;
    o.size_ = 0;
  }
  void open_gap(size_t at, size_t n) {
    reserve(size_ + n);
    std::copy_backward(data_ + at, data_ + size_, data_ + size_ + n);
    size_ += n;
  }

  int64_t* data_;
  size_t size_ = 0;
  size_t capacity_ = kInline;
  int64_t inline_[kInline];
};

}  // namespace nc
