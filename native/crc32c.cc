// CRC32C (Castagnoli), shared by the buffer pool (page checksums) and the WAL (record
// CRCs): the SSE4.2 instruction when the CPU has it, slice-by-8 tables otherwise.
// Running form: start with ~0u; a caller that wants the standard value inverts the end.
#include "crc32c.h"

#include <cstring>
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace rm {

namespace {

// ---- CRC32C ----------------------------------------------------------------
uint32_t g_crc_table[8][256];
bool g_crc_hw = false;

void crc_init_table() {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    g_crc_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++) {
    for (int t = 1; t < 8; t++) g_crc_table[t][i] = (g_crc_table[t - 1][i] >> 8) ^ g_crc_table[0][g_crc_table[t - 1][i] & 0xff];
  }
#if defined(__x86_64__)
  __builtin_cpu_init();
  g_crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}
const bool g_crc_ready = (crc_init_table(), true);

uint32_t crc_sw(uint32_t crc, const uint8_t* p, uint64_t n) {
  while (n && ((uintptr_t)p & 7)) { crc = (crc >> 8) ^ g_crc_table[0][(crc ^ *p++) & 0xff]; n--; }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    w ^= crc;
    crc = g_crc_table[7][w & 0xff] ^ g_crc_table[6][(w >> 8) & 0xff] ^ g_crc_table[5][(w >> 16) & 0xff] ^
          g_crc_table[4][(w >> 24) & 0xff] ^ g_crc_table[3][(w >> 32) & 0xff] ^ g_crc_table[2][(w >> 40) & 0xff] ^
          g_crc_table[1][(w >> 48) & 0xff] ^ g_crc_table[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ g_crc_table[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc_hw(uint32_t crc, const uint8_t* p, uint64_t n) {
  uint64_t c = crc;
  while (n && ((uintptr_t)p & 7)) { c = _mm_crc32_u8((uint32_t)c, *p++); n--; }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    n -= 8;
  }
  while (n--) c = _mm_crc32_u8((uint32_t)c, *p++);
  return (uint32_t)c;
}
#endif

}  // namespace

uint32_t crc32c(uint32_t crc, const uint8_t* p, uint64_t n) {
#if defined(__x86_64__)
  if (g_crc_hw) return crc_hw(crc, p, n);
#endif
  return crc_sw(crc, p, n);
}

bool crc32c_hw() { return g_crc_hw; }

}  // namespace rm
