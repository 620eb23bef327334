#pragma once
// SHA-256 (FIPS 180-4), for the model file's data checksum.
#include <cstddef>
#include <string>

namespace neurocore::detail {

// Lower-case hex digest of `size` bytes.
std::string sha256_hex(const unsigned char* data, size_t size);

}  // namespace neurocore::detail
