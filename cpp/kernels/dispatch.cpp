// Picks the ISA build of the kernels once per process.
#include "kernels/dispatch.h"

#include <cstdlib>
#include <stdexcept>

#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/conv.h"
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

bool cpu_supports_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

static Isa choose_isa() {
  const char* forced = std::getenv("NEUROCORE_CPU");
  std::string f = forced ? forced : "";
  if (f == "generic") return Isa::Generic;
  if (f == "avx2") {
    if (!cpu_supports_avx2())
      throw std::runtime_error("NEUROCORE_CPU=avx2 but this CPU has no AVX2+FMA");
    return Isa::Avx2;
  }
  if (!f.empty() && f != "auto")
    throw std::runtime_error("NEUROCORE_CPU must be generic, avx2 or auto, got '" + f + "'");
  return cpu_supports_avx2() ? Isa::Avx2 : Isa::Generic;
}

Isa active_isa() {
  static const Isa isa = choose_isa();
  return isa;
}

std::string isa_name(Isa isa) { return isa == Isa::Avx2 ? "avx2" : "generic"; }

// One selector per kernel family: the table of the active ISA, chosen on first use.
#define NC_KERNEL_FAMILY(Table, name)                                          \
  const Table& name() {                                                      \
    static const Table& t = select(generic::name##_table, avx2::name##_table); \
    return t;                                                                \
  }

NC_KERNEL_FAMILY(GemmKernels, gemm)
NC_KERNEL_FAMILY(PeakKernels, peak)
NC_KERNEL_FAMILY(VecMathKernels, vecmath)
NC_KERNEL_FAMILY(NormKernels, norm)
NC_KERNEL_FAMILY(OptimKernels, optim)
NC_KERNEL_FAMILY(ConvKernels, conv)
NC_KERNEL_FAMILY(PhiloxKernels, philox)
NC_KERNEL_FAMILY(ElementwiseKernels, elementwise)
NC_KERNEL_FAMILY(SoftmaxKernels, softmax)
NC_KERNEL_FAMILY(PoolKernels, pool)
NC_KERNEL_FAMILY(ActivationKernels, activation)
NC_KERNEL_FAMILY(ReduceKernels, reduce)
NC_KERNEL_FAMILY(RnnKernels, rnn)
NC_KERNEL_FAMILY(AttentionKernels, attention)
NC_KERNEL_FAMILY(ImageKernels, image)

#undef NC_KERNEL_FAMILY

}  // namespace nc::kernels
