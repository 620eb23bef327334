// neurocore-run-cpp: times an exported model through the C++ runtime alone (no Python).
//   neurocore-run-cpp model.ncm [--batch B] [--bench N] [--warmup W] [--threads T]
// Inputs have the model's declared shapes (the dynamic batch dim set to B, default 1) and hold a
// fixed pattern; each timed call is Session::run into preallocated outputs. Prints the output
// shapes, then "latency over N runs (us): p50 .. p90 .. p99 .. min .. mean ..".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "neurocore/runtime.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s model.ncm [--batch B] [--bench N] [--warmup W] [--threads T]\n", argv[0]);
    return 2;
  }
  int64_t batch = 1;
  int bench = 0, warmup = 10, threads = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const long v = std::atol(argv[i + 1]);
    if (flag == "--batch") batch = v;
    else if (flag == "--bench") bench = static_cast<int>(v);
    else if (flag == "--warmup") warmup = static_cast<int>(v);
    else if (flag == "--threads") threads = static_cast<int>(v);
    else return std::fprintf(stderr, "unknown option %s\n", argv[i]), 2;
  }
  try {
    neurocore::Session session(argv[1]);
    session.set_num_threads(threads);
    std::vector<std::vector<int64_t>> shapes;
    std::vector<std::vector<float>> data;
    for (const auto& declared : session.input_shapes()) {
      std::vector<int64_t> shape = declared;
      int64_t n = 1;
      for (int64_t& d : shape) n *= (d = d == -1 ? batch : d);
      std::vector<float> x(static_cast<size_t>(n));
      for (int64_t k = 0; k < n; ++k) x[static_cast<size_t>(k)] = static_cast<float>((k * 7919) % 2003) / 2003.0f - 0.5f;
      shapes.push_back(shape);
      data.push_back(std::move(x));
    }
    std::vector<neurocore::Tensor> inputs, outputs;
    for (size_t i = 0; i < data.size(); ++i) inputs.emplace_back(data[i].data(), shapes[i]);
    std::vector<std::vector<float>> out_data;
    const auto out_shapes = session.output_shapes(shapes);
    for (const auto& shape : out_shapes) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      out_data.emplace_back(static_cast<size_t>(n));
    }
    for (size_t i = 0; i < out_shapes.size(); ++i) outputs.emplace_back(out_data[i].data(), out_shapes[i]);
    session.run(inputs, outputs);
    for (size_t i = 0; i < out_shapes.size(); ++i) {
      std::printf("%s: shape (", session.output_names()[i].c_str());
      for (size_t d = 0; d < out_shapes[i].size(); ++d) std::printf(d ? ", %lld" : "%lld", static_cast<long long>(out_shapes[i][d]));
      std::printf(")\n");
    }
    if (bench <= 0) return 0;
    for (int i = 0; i < warmup; ++i) session.run(inputs, outputs);
    std::vector<double> us(static_cast<size_t>(bench));
    for (int i = 0; i < bench; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      session.run(inputs, outputs);
      us[static_cast<size_t>(i)] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    }
    double mean = 0;
    for (double u : us) mean += u / bench;
    std::sort(us.begin(), us.end());
    auto pct = [&](double p) { return us[static_cast<size_t>(p / 100.0 * (us.size() - 1) + 0.5)]; };
    std::printf("latency over %d runs (us): p50 %.1f  p90 %.1f  p99 %.1f  min %.1f  mean %.1f\n", bench, pct(50),
                pct(90), pct(99), us.front(), mean);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "neurocore-run-cpp: %s\n", e.what());
    return 1;
  }
  return 0;
}
