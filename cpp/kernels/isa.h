#pragma once
// Every .cpp file in cpp/kernels/ except dispatch.cpp is compiled once per ISA (see CMakeLists.txt)
// with NC_ISA set to the ISA's name, and puts everything it defines in nc::kernels::NC_ISA.
// Keep kernel files free of static data in headers and of std containers: inline functions
// instantiated in several ISA builds are merged by the linker, and the wrong one could win.
#ifndef NC_ISA
#error "cpp/kernels/*.cpp are compiled per ISA: NC_ISA must be defined"
#endif

#include <cstdint>

#if defined(__AVX2__) && defined(__FMA__)
#define NC_HAVE_AVX2 1
#include <immintrin.h>
#else
#define NC_HAVE_AVX2 0
#endif

// The avx512 build (-mavx512f -mavx512bw -mavx512dq -mavx512vl on top of AVX2/FMA/F16C): its
// hand-written paths use the 512-bit intrinsics (32 zmm registers, mask registers for ragged
// edges); everything else in it is the AVX2 code plus what the compiler vectorises at 512 bits.
// NC_AVX512_EMULATE (a test build) compiles the same lines for AVX2 through kernels/avx512_emulate.h.
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define NC_HAVE_AVX512 1
#elif defined(NC_AVX512_EMULATE) && NC_HAVE_AVX2
#include "kernels/avx512_emulate.h"
#define NC_HAVE_AVX512 1
#else
#define NC_HAVE_AVX512 0
#endif
