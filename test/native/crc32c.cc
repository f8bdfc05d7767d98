// Description: CRC32C (Castagnoli): the published check values, and every length and alignment up to 300 bytes, whole or split in two updates, equals a bitwise reference (whichever of hardware or tables this machine uses).
#include "../../native/crc32c.h"

#include <vector>

#include "helpers.h"

using namespace rm;

namespace {

// Bit at a time, reflected polynomial 0x82F63B78: slow and obviously right.
uint32_t reference(uint32_t crc, const uint8_t* p, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return crc;
}

uint32_t full(const uint8_t* p, uint64_t n) { return ~crc32c(~0u, p, n); }

}  // namespace

int main() {
  fprintf(stderr, "crc32c: %s\n", crc32c_hw() ? "hardware (SSE4.2)" : "tables");

  t::run_case("check values (RFC 3720 B.4, and \"123456789\")", [] {
    const char* digits = "123456789";
    T_EQ(full(reinterpret_cast<const uint8_t*>(digits), 9), 0xE3069283u);
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    T_EQ(full(buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof(buf));
    T_EQ(full(buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)i;
    T_EQ(full(buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)(31 - i);
    T_EQ(full(buf, 32), 0x113FDB5Cu);
    T_EQ(full(buf, 0), 0u);
  });

  t::run_case("every length and alignment, whole and split, equals the reference", [] {
    std::vector<uint8_t> data(300 + 16);
    uint32_t x = 12345;
    for (auto& b : data) b = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
    int bad = 0;
    for (uint32_t align = 0; align < 16; align++) {
      for (uint32_t n = 0; n <= 300; n++) {
        const uint8_t* p = data.data() + align;
        uint32_t want = reference(~0u, p, n);
        if (crc32c(~0u, p, n) != want) bad++;
        uint32_t cut = n / 3;
        if (crc32c(crc32c(~0u, p, cut), p + cut, n - cut) != want) bad++;
      }
    }
    T_EQ(bad, 0);
  });

  return t::finish();
}
