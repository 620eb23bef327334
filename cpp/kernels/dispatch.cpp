// Picks the ISA build of the kernels once per process.
#include "kernels/dispatch.h"

#include <cstdlib>
#include <stdexcept>

#include "kernels/conv.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/norm.h"
#include "kernels/optim.h"
#include "kernels/peak.h"
#include "kernels/philox.h"
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

const GemmKernels& gemm() {
  static const GemmKernels& t = select(generic::gemm_table, avx2::gemm_table);
  return t;
}

const PeakKernels& peak() {
  static const PeakKernels& t = select(generic::peak_table, avx2::peak_table);
  return t;
}

const VecMathKernels& vecmath() {
  static const VecMathKernels& t = select(generic::vecmath_table, avx2::vecmath_table);
  return t;
}

const NormKernels& norm() {
  static const NormKernels& t = select(generic::norm_table, avx2::norm_table);
  return t;
}

const OptimKernels& optim() {
  static const OptimKernels& t = select(generic::optim_table, avx2::optim_table);
  return t;
}

const ConvKernels& conv() {
  static const ConvKernels& t = select(generic::conv_table, avx2::conv_table);
  return t;
}

const PhiloxKernels& philox() {
  static const PhiloxKernels& t = select(generic::philox_table, avx2::philox_table);
  return t;
}

const ElementwiseKernels& elementwise() {
  static const ElementwiseKernels& t = select(generic::elementwise_table, avx2::elementwise_table);
  return t;
}

const SoftmaxKernels& softmax() {
  static const SoftmaxKernels& t = select(generic::softmax_table, avx2::softmax_table);
  return t;
}

}  // namespace nc::kernels
