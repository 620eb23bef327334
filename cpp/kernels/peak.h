#pragma once
// A floating-point throughput probe: the benchmark runner measures the machine's fp32 FMA peak
// with it, so "% of peak" is relative to what this CPU really sustains.
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

struct PeakKernels {
  // Runs `iterations` rounds of independent fp32 FMA chains; returns the flops performed.
  double (*fma_chains)(int64_t iterations, float* sink);
};

NC_KERNEL_FAMILY(PeakKernels, peak)

}  // namespace nc::kernels
