#pragma once
// Counter-based random numbers (Philox 4x32-10): element i of a draw depends only on the seed and
// the draw's counter, so results are the same on any number of threads.
#include <cstdint>

#include "core/tensor.h"

namespace nc {

void manual_seed(uint64_t seed);
uint64_t initial_seed();
// Reserves `n` counters of the global generator; returns (key, first counter).
struct PhiloxState {
  uint64_t key;
  uint64_t counter;
};
PhiloxState reserve_random(uint64_t n);
// Generator state for save/restore (nc.get_rng_state / set_rng_state).
PhiloxState get_rng_state();
void set_rng_state(PhiloxState s);

// While alive, this thread's draws use (and advance) `state` instead of the global generator:
// an nc.Generator passed as generator= to a random op.
class GeneratorScope {
 public:
  explicit GeneratorScope(PhiloxState* state);
  ~GeneratorScope();
  GeneratorScope(const GeneratorScope&) = delete;
  GeneratorScope& operator=(const GeneratorScope&) = delete;

 private:
  PhiloxState* prev_;
};

// Four 32-bit random words for (key, counter).
void philox(uint64_t key, uint64_t counter, uint32_t out[4]);

// In-place fills (no autograd). uniform in [low, high); normal(mean, std); integers in [low, high).
void uniform_(const Tensor& t, double low, double high);
void normal_(const Tensor& t, double mean, double std);
void random_int_(const Tensor& t, int64_t low, int64_t high);
// Keep-mask of a dropout layer: 1/(1-p) with probability 1-p, else 0; t must be contiguous float.
void bernoulli_scaled_(const Tensor& t, double p);

}  // namespace nc
