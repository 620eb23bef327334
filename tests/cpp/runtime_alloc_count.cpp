// Counts the C++ heap allocations (operator new) of Session::run into caller-owned outputs:
//   runtime_alloc_count model.ncm batch [threads] [fill]
// Runs the model three times on inputs holding `fill` (default 0.25; the dynamic dim of each input
// set to `batch`),
// then 20 more times while counting, and prints "allocations N" (the runtime promises N = 0 after
// the first call for a given shape), the first output's first value and the first call's count.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "neurocore/runtime.h"

static std::atomic<bool> counting{false};
static std::atomic<long> allocations{0};

void* operator new(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

int main(int argc, char** argv) {
  if (argc < 3) return std::fprintf(stderr, "usage: %s model.ncm batch [threads] [fill]\n", argv[0]), 2;
  neurocore::Session s(argv[1]);
  if (argc > 3) s.set_num_threads(std::atoi(argv[3]));
  const int64_t batch = std::atoll(argv[2]);
  const float fill = argc > 4 ? static_cast<float>(std::atof(argv[4])) : 0.25f;
  std::vector<std::vector<float>> data;
  std::vector<neurocore::Tensor> inputs;
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& declared : s.input_shapes()) {
    std::vector<int64_t> shape = declared;
    int64_t n = 1;
    for (int64_t& d : shape) n *= (d = d == -1 ? batch : d);
    data.emplace_back(static_cast<size_t>(n), fill);
    shapes.push_back(shape);
  }
  for (size_t i = 0; i < data.size(); ++i) inputs.emplace_back(data[i].data(), shapes[i]);
  std::vector<std::vector<float>> out_data;
  std::vector<neurocore::Tensor> outputs;
  for (const auto& shape : s.output_shapes(shapes)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    out_data.emplace_back(static_cast<size_t>(n));
    outputs.emplace_back(out_data.back().data(), shape);
  }
  counting = true;  // the first call plans and allocates (this shows the counter sees the runtime's)
  s.run(inputs, outputs);
  counting = false;
  const long first_call = allocations.exchange(0);
  for (int i = 0; i < 2; ++i) s.run(inputs, outputs);
  counting = true;
  for (int i = 0; i < 20; ++i) s.run(inputs, outputs);
  counting = false;
  std::printf("allocations %ld\nfirst %.9g\nfirst_call %ld\n", allocations.load(),
              out_data[0].empty() ? 0.0 : out_data[0][0], first_call);
  return 0;
}
