#pragma once
// Philox 4x32-10 counter-based random words, vectorised: out[4*i + j] is word j of counter
// counter0 + i under `key`. Identical results on every ISA.
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

struct PhiloxKernels {
  void (*philox4x32)(uint64_t key, uint64_t counter0, int64_t n_counters, uint32_t* out);
};

NC_KERNEL_FAMILY(PhiloxKernels, philox)

}  // namespace nc::kernels
