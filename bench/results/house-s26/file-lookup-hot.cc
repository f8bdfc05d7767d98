// Cache-hot cost of rm::file_lookup (native/file_table.cc at -O3): see README.md here.
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstring>
namespace rm {
struct FileEntry;
int file_lookup(FileEntry* files, uint32_t count, double id, uint32_t* flags_out);
}
int main() {
  alignas(64) static unsigned char table[288 * 64];
  memset(table, 0, sizeof(table));
  uint32_t slot = 5, gen = 3;
  uint32_t* e = (uint32_t*)(table + 288 * slot);
  e[0] = 2; e[1] = gen;  // F_OPEN, generation
  double id = (double)((uint64_t)gen * 65536 + slot);
  const long N = 200000000;
  for (int rep = 0; rep < 5; rep++) {
    long hits = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < N; i++) {
      volatile double v = id;
      hits += rm::file_lookup((rm::FileEntry*)table, 64, v, nullptr) >= 0;
    }
    auto t1 = std::chrono::steady_clock::now();
    auto t2 = std::chrono::steady_clock::now();
    for (long i = 0; i < N; i++) { volatile double v = id; hits += v > 0; }
    auto t3 = std::chrono::steady_clock::now();
    printf("file_lookup: %.2f ns/call (empty loop %.2f ns), hits %ld\n", std::chrono::duration<double, std::nano>(t1 - t0).count() / N,
           std::chrono::duration<double, std::nano>(t3 - t2).count() / N, hits);
  }
}
