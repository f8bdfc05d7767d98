#include "file_table.h"

#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomics.h"

namespace rm {

int file_claim(FileEntry* files, uint32_t count) {
  for (uint32_t i = 0; i < count; i++) {
    uint32_t expected = F_FREE;
    if (cas(&files[i].state, &expected, (uint32_t)F_OPENING)) {
      fetch_add(&files[i].generation, 1u);
      return (int)i;
    }
  }
  return -1;
}

void file_publish(FileEntry* e) { store_release(&e->state, (uint32_t)F_OPEN); }

void file_release(FileEntry* e) { store_release(&e->state, (uint32_t)F_FREE); }

int file_lookup(FileEntry* files, uint32_t count, double id, uint32_t* flags_out) {
  if (!(id >= 0) || id != std::floor(id) || id > 9007199254740991.0) return -1;
  uint64_t v = (uint64_t)id;
  uint32_t slot = (uint32_t)(v % 65536u);
  uint64_t gen = v / 65536u;
  if (slot >= count || gen > 0xffffffffull) return -1;
  FileEntry* e = &files[slot];
  if (load_acquire(&e->state) != F_OPEN) return -1;
  if (load_relaxed(&e->generation) != (uint32_t)gen) return -1;
  if (flags_out) *flags_out = load_relaxed(&e->open_flags);
  return (int)slot;
}

bool file_path_names(int dir_fd, const FileEntry* e, uint64_t dev, uint64_t ino) {
  char path[kMaxRelPath];
  memcpy(path, e->path, kMaxRelPath);
  path[kMaxRelPath - 1] = 0;  // shared memory: copied once, then used
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = (int)syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
  if (fd < 0) return false;
  struct stat st;
  bool same = fstat(fd, &st) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
  close(fd);
  return same;
}

}  // namespace rm
