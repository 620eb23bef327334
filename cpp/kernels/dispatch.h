#pragma once
// Run-time CPU dispatch: which ISA build of the kernels this process uses.
#include <string>

#include "kernels/isa_list.h"

namespace nc::kernels {

#define NC_ISA_ENUM_(isa, ...) isa,
enum class Isa { NC_FOR_EACH_ISA(NC_ISA_ENUM_, ) };
#undef NC_ISA_ENUM_
#define NC_ISA_COUNT_(isa, ...) +1
constexpr int kIsaCount = 0 NC_FOR_EACH_ISA(NC_ISA_COUNT_, );
#undef NC_ISA_COUNT_

// Chosen once: NEUROCORE_CPU=<isa> forces a build (an error if this CPU cannot run it),
// otherwise (unset or auto) the best build that CPUID allows.
Isa active_isa();
std::string isa_name(Isa isa);
// Whether this CPU has the instructions of an ISA build.
bool cpu_supports(Isa isa);
bool cpu_supports_avx2();
// True when the avx512 build emulates AVX-512 with AVX2 (CMake -DNC_AVX512_EMULATE=ON, a test
// build): NEUROCORE_CPU=avx512 may then be forced on a CPU without AVX-512.
bool avx512_emulated();

}  // namespace nc::kernels
