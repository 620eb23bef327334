#pragma once
// The kernel builds, listed once. Every .cpp file in cpp/kernels/ except dispatch.cpp is compiled
// once per ISA named here, into namespace nc::kernels::<isa> (see isa.h); CMakeLists.txt reads
// the names from the NC_FOR_EACH_ISA line below (and the compiler flags of each from its
// NC_ISA_FLAGS_<isa>), each family header declares its per-ISA tables with NC_KERNEL_FAMILY, and
// dispatch.cpp picks one of them at run time. Adding an ISA: one X(...) here, its flags in
// CMakeLists.txt, its CPUID test in dispatch.cpp (cpu_supports), then its kernels.
// X(isa, ...) is called once per ISA, in order, with the caller's extra arguments.
#define NC_FOR_EACH_ISA(X, ...) X(generic, __VA_ARGS__) X(avx2, __VA_ARGS__) X(avx512, __VA_ARGS__)

#define NC_DECLARE_ISA_TABLE_(isa, Table, name) \
  namespace isa {                               \
  extern const Table name##_table;              \
  }
// Inside namespace nc::kernels: the per-ISA tables isa::name_table of one family, and name(),
// the table of the ISA in use (defined in dispatch.cpp).
#define NC_KERNEL_FAMILY(Table, name)                 \
  NC_FOR_EACH_ISA(NC_DECLARE_ISA_TABLE_, Table, name) \
  const Table& name();
