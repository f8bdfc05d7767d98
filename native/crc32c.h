// CRC32C (Castagnoli) update: hardware (SSE4.2) when available, tables otherwise.
#pragma once
#include <cstdint>

namespace rm {

uint32_t crc32c(uint32_t crc, const uint8_t* p, uint64_t n);
bool crc32c_hw();

}  // namespace rm
