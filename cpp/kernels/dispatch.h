#pragma once
// Run-time CPU dispatch: which ISA build of the kernels this process uses.
#include <string>

namespace nc::kernels {

enum class Isa { Generic, Avx2 };

// Chosen once: NEUROCORE_CPU=generic|avx2 forces a path, otherwise CPUID decides.
Isa active_isa();
std::string isa_name(Isa isa);
bool cpu_supports_avx2();

// Selects the table of the active ISA from the per-ISA tables of one kernel family.
template <class Table>
const Table& select(const Table& generic_table, const Table& avx2_table) {
  return active_isa() == Isa::Avx2 ? avx2_table : generic_table;
}

}  // namespace nc::kernels
