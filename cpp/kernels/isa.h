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
