// Picks the ISA build of the kernels once per process.
#include "kernels/dispatch.h"

#include <cstdlib>
#include <stdexcept>

#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/conv.h"
#include "kernels/conv_winograd.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/image.h"
#include "kernels/norm.h"
#include "kernels/optim.h"
#include "kernels/peak.h"
#include "kernels/philox.h"
#include "kernels/pool.h"
#include "kernels/reduce.h"
#include "kernels/rnn.h"
#include "kernels/softmax.h"
#include "kernels/vecmath.h"

namespace nc::kernels {

bool cpu_supports(Isa isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  switch (isa) {
    case Isa::generic: return true;
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512:
      // The avx512 build is compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl (and AVX2, FMA, F16C).
      return cpu_supports(Isa::avx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  }
  return false;
#else
  return isa == Isa::generic;
#endif
}

bool cpu_supports_avx2() { return cpu_supports(Isa::avx2); }

bool avx512_emulated() {
#ifdef NC_AVX512_EMULATED
  return true;
#else
  return false;
#endif
}

#define NC_ISA_NAME_(isa, ...) #isa,
static const char* const kIsaNames[] = {NC_FOR_EACH_ISA(NC_ISA_NAME_, )};
#undef NC_ISA_NAME_

std::string isa_name(Isa isa) { return kIsaNames[static_cast<int>(isa)]; }

// Whether this process may run an ISA's build: the CPU has it, or (avx512 only) the build
// emulates it with AVX2.
static bool can_run(Isa isa) {
  if (isa == Isa::avx512 && avx512_emulated()) return cpu_supports(Isa::avx2);
  return cpu_supports(isa);
}

static Isa choose_isa() {
  const char* forced = std::getenv("NEUROCORE_CPU");
  const std::string f = forced ? forced : "";
  if (f.empty() || f == "auto") {
    // The last (widest) build the CPU itself supports; an emulated build is never chosen.
    for (int i = kIsaCount - 1; i > 0; --i)
      if (cpu_supports(static_cast<Isa>(i))) return static_cast<Isa>(i);
    return Isa::generic;
  }
  std::string names;
  for (int i = 0; i < kIsaCount; ++i) {
    if (f == kIsaNames[i]) {
      const Isa isa = static_cast<Isa>(i);
      if (!can_run(isa))
        throw std::runtime_error("NEUROCORE_CPU=" + f + " but this CPU cannot run the " + f +
                                 " kernels (it lacks some of their instructions); use auto or generic");
      return isa;
    }
    names += std::string(kIsaNames[i]) + ", ";
  }
  throw std::runtime_error("NEUROCORE_CPU must be one of " + names + "or auto, got '" + f + "'");
}

Isa active_isa() {
  static const Isa isa = choose_isa();
  return isa;
}

// One selector per kernel family: the table of the active ISA, chosen on first use.
#define NC_TABLE_ADDRESS_(isa, name) &isa::name##_table,
#define NC_KERNEL_SELECTOR(Table, name)                                                \
  const Table& name() {                                                                \
    static const Table* const tables[] = {NC_FOR_EACH_ISA(NC_TABLE_ADDRESS_, name)}; \
    static const Table& t = *tables[static_cast<int>(active_isa())];                  \
    return t;                                                                          \
  }

NC_KERNEL_SELECTOR(GemmKernels, gemm)
NC_KERNEL_SELECTOR(PeakKernels, peak)
NC_KERNEL_SELECTOR(VecMathKernels, vecmath)
NC_KERNEL_SELECTOR(NormKernels, norm)
NC_KERNEL_SELECTOR(OptimKernels, optim)
NC_KERNEL_SELECTOR(ConvKernels, conv)
NC_KERNEL_SELECTOR(WinogradKernels, winograd)
NC_KERNEL_SELECTOR(PhiloxKernels, philox)
NC_KERNEL_SELECTOR(ElementwiseKernels, elementwise)
NC_KERNEL_SELECTOR(SoftmaxKernels, softmax)
NC_KERNEL_SELECTOR(PoolKernels, pool)
NC_KERNEL_SELECTOR(ActivationKernels, activation)
NC_KERNEL_SELECTOR(ReduceKernels, reduce)
NC_KERNEL_SELECTOR(RnnKernels, rnn)
NC_KERNEL_SELECTOR(AttentionKernels, attention)
NC_KERNEL_SELECTOR(ImageKernels, image)

#undef NC_KERNEL_SELECTOR
#undef NC_TABLE_ADDRESS_

}  // namespace nc::kernels
