// OFD locks on <dataDir>/postmaster.pid: see datadir_lock.h.
#include "datadir_lock.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rm {

namespace {

constexpr off_t kOwnerByte = 0;
constexpr off_t kWorkerByte = 1;
constexpr size_t kMaxContent = 4096;

int ofd_lock(int fd, short type, off_t start, int cmd) {
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = 1;
  fl.l_pid = 0;  // required by F_OFD_*
  if (fcntl(fd, cmd, &fl) != 0) return -errno;
  return cmd == F_OFD_GETLK ? fl.l_type : 0;
}

std::string read_all(int fd) {
  std::string s(kMaxContent, '\0');
  ssize_t n;
  do {
    n = pread(fd, &s[0], s.size(), 0);
  } while (n < 0 && errno == EINTR);
  s.resize(n > 0 ? (size_t)n : 0);
  return s;
}

int write_all(int fd, const std::string& content) {
  if (ftruncate(fd, 0) != 0) return -errno;
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = pwrite(fd, content.data() + done, content.size() - done, (off_t)done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    done += (size_t)n;
  }
  return 0;
}

}  // namespace

int datadir_lock(const char* lock_path, const std::string& content, int* fd_out, std::string* previous) {
  // O_NOFOLLOW: a symlink planted in place of the lock file is refused, never followed.
  int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return -errno;
  int rc = ofd_lock(fd, F_WRLCK, kOwnerByte, F_OFD_SETLK);
  if (rc == -EAGAIN || rc == -EACCES) {
    *previous = read_all(fd);
    close(fd);
    return kDataDirHeldByPostmaster;
  }
  if (rc < 0) {
    close(fd);
    return rc;
  }
  *previous = read_all(fd);
  // Our identity goes in before the worker byte is checked: a worker of the earlier
  // postmaster that locks byte 1 after our check reads our content, sees that it no
  // longer names its postmaster, and refuses to attach.
  rc = write_all(fd, content);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  rc = ofd_lock(fd, F_WRLCK, kWorkerByte, F_OFD_GETLK);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  if (rc != F_UNLCK) {
    write_all(fd, *previous);  // the directory still belongs to the earlier postmaster's workers
    close(fd);
    return kDataDirHeldByWorkers;
  }
  *fd_out = fd;
  return kDataDirLocked;
}

void datadir_unlock(int fd, bool clear) {
  if (fd < 0) return;
  if (clear && ftruncate(fd, 0) != 0) {
    // Nothing to do: the content is informational; the lock is released below either way.
  }
  close(fd);
}

int datadir_share(const char* lock_path, std::string* content) {
  int fd = open(lock_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -errno;
  int rc = ofd_lock(fd, F_RDLCK, kWorkerByte, F_OFD_SETLK);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  *content = read_all(fd);
  return fd;
}

}  // namespace rm
