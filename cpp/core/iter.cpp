#include "core/iter.h"

namespace nc {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ValueError(cat_str("[", op, "] shapes ", shape_str(a), " and ", shape_str(b),
                               " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db, ")"));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcast_strides(const Tensor& t, const Shape& shape, const char* op) {
  const Shape& ts = t.shape();
  NC_CHECK(ts.size() <= shape.size(), ValueError, "[", op, "] cannot broadcast shape ", shape_str(ts),
           " to ", shape_str(shape));
  Shape st(shape.size(), 0);
  size_t lead = shape.size() - ts.size();
  for (size_t i = 0; i < ts.size(); ++i) {
    if (ts[i] == shape[lead + i]) st[lead + i] = ts[i] == 1 ? 0 : t.strides()[i];
    else NC_CHECK(ts[i] == 1, ValueError, "[", op, "] cannot broadcast shape ", shape_str(ts), " to ",
                  shape_str(shape));
  }
  return st;
}

}  // namespace nc
