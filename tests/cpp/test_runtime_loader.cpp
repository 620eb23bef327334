// Fuzz driver for the runtime's loader, meant to run under AddressSanitizer:
//   test_runtime_loader model.ncm [iterations] [seed]
// Loads the model, runs it once, then loads thousands of seeded mutations of the file (truncations,
// bit flips, byte runs overwritten) and runs the ones that still load on inputs of 0.5 (1 when the
// original rejects 0.5) of the recorded example shape. Every failure must be a neurocore::Error;
// ASan reports any bad access.
// Last line: "N loaded, N rejected".
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "neurocore/runtime.h"

static std::vector<unsigned char> read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

static void write(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

static void run_once(const neurocore::Session& s, float fill) {
  std::vector<std::vector<float>> data;
  std::vector<neurocore::Tensor> inputs;
  for (const auto& declared : s.input_shapes()) {
    std::vector<int64_t> shape = declared;
    int64_t n = 1;
    for (int64_t& d : shape) {
      if (d == -1) d = 2;  // the dynamic batch dim
      if (d < 0 || d > (1 << 24)) return;
      n *= d;
      if (n > (1 << 24)) return;
    }
    data.emplace_back(static_cast<size_t>(n), fill);
    inputs.emplace_back(data.back().data(), shape);
  }
  s.run(inputs);
}

int main(int argc, char** argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: %s model.ncm [iterations] [seed]\n", argv[0]), 2;
  const std::string path = argv[1], tmp = path + ".fuzz";
  const int iterations = argc > 2 ? std::stoi(argv[2]) : 3000;
  const unsigned seed = argc > 3 ? static_cast<unsigned>(std::stoul(argv[3])) : 20261207u;
  std::printf("seed %u\n", seed);
  const std::vector<unsigned char> original = read(path);
  float fill = 0.5f;  // every input's value; a packed sequence's lengths need an integer
  try {
    run_once(neurocore::Session(path), fill);
  } catch (const neurocore::Error& e) {
    std::printf("inputs of 0.5 rejected (%s): inputs of 1\n", e.what());
    fill = 1.0f;
    run_once(neurocore::Session(path), fill);
  }
  std::mt19937 rng(seed);
  size_t header_end = 8;  // mutations inside the JSON header reach the parser and the validation
  for (int k = 7; k >= 0; --k) header_end = (header_end - 8) * 256 + original[static_cast<size_t>(k)] + 8;
  if (header_end > original.size()) header_end = original.size();
  int loaded = 0, rejected = 0;
  for (int i = 0; i < iterations; ++i) {
    std::vector<unsigned char> b = original;
    switch (i % 5) {
      case 3:  // a bit flip inside the header
        b[8 + rng() % (header_end - 8)] ^= static_cast<unsigned char>(1u << (rng() % 8));
        break;
      case 4: {  // a digit of the header replaced by another (valid JSON, other numbers)
        std::vector<size_t> digits;
        for (size_t k = 8; k < header_end; ++k)
          if (b[k] >= '0' && b[k] <= '9') digits.push_back(k);
        if (!digits.empty()) b[digits[rng() % digits.size()]] = static_cast<unsigned char>('0' + rng() % 10);
        break;
      }
      case 0: b.resize(rng() % b.size()); break;
      case 1:
        for (unsigned k = 0, n = 1 + rng() % 4; k < n; ++k) b[rng() % b.size()] ^= static_cast<unsigned char>(1u << (rng() % 8));
        break;
      default: {
        const size_t at = rng() % b.size(), len = 1 + rng() % 16;
        for (size_t k = at; k < b.size() && k < at + len; ++k) b[k] = static_cast<unsigned char>(rng());
      }
    }
    write(tmp, b);
    try {
      neurocore::Session s(tmp);
      ++loaded;
      run_once(s, fill);
    } catch (const neurocore::Error&) {
      ++rejected;
    }
  }
  std::remove(tmp.c_str());
  std::printf("%d loaded, %d rejected\n", loaded, rejected);
  return 0;
}
