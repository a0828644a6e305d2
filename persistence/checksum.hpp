// Checksums used by the persistence layer: CRC-32 (the zlib/IEEE polynomial, slice-by-8) for
// stored messages, and SHA-256 for deriving stable queue file names. Both are pure functions
// of their input bytes and never change between versions: stored checksums and file names
// depend on them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace warren::persistence {

// Incremental CRC-32: crc32_update(crc32_update(0, a), b) == crc32(a + b).
uint32_t crc32_update(uint32_t crc, const void* data, size_t size);
inline uint32_t crc32_update(uint32_t crc, std::string_view bytes) {
  return crc32_update(crc, bytes.data(), bytes.size());
}

// SHA-256 of the bytes, as 64 lowercase hex digits.
std::string sha256_hex(std::string_view bytes);

}  // namespace warren::persistence
