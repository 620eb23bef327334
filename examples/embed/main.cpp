// Classifies digits with a model exported by neurocore.export.save and prints the accuracy.
//   classify model.ncm digits.bin
// digits.bin: uint32 count, count * 784 float32 pixels (1x28x28 each), count uint8 labels.
#include <neurocore/runtime.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) return std::fprintf(stderr, "usage: %s model.ncm digits.bin\n", argv[0]), 2;
  try {
    neurocore::Session session(argv[1]);
    std::ifstream f(argv[2], std::ios::binary);
    uint32_t n = 0;
    f.read(reinterpret_cast<char*>(&n), sizeof n);
    std::vector<float> pixels(size_t(n) * 784);
    std::vector<uint8_t> labels(n);
    f.read(reinterpret_cast<char*>(pixels.data()), pixels.size() * sizeof(float));
    f.read(reinterpret_cast<char*>(labels.data()), labels.size());
    if (!f) return std::fprintf(stderr, "%s: truncated file\n", argv[2]), 1;
    neurocore::Tensor images(pixels.data(), {int64_t(n), 1, 28, 28});  // a view: no copy
    const neurocore::Tensor logits = session.run({images})[0];        // (n, 10)
    int correct = 0;
    for (uint32_t i = 0; i < n; ++i) {
      const float* row = logits.data() + i * 10;
      int best = 0;
      for (int c = 1; c < 10; ++c) best = row[c] > row[best] ? c : best;
      correct += best == labels[i];
    }
    std::printf("accuracy %.4f (%d/%u)\n", double(correct) / n, correct, n);
  } catch (const std::exception& e) {
    return std::fprintf(stderr, "error: %s\n", e.what()), 1;
  }
}
