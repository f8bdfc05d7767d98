// Description: the shared file table's operations on a real segment (threads backend, a temporary data directory): opening a file twice with the same access gives one id and two references, a path leaving the data directory is refused (EXDEV) before the table changes, the last close of a file with unsynced writes asks for a sync first, a closed id is stale, a full table says EMFILE, and a renamed-away file is not matched by identity.
#include "../../native/segment.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "../../native/file_table.h"
#include "../../native/io_method.h"
#include "../../native/slot_cleanup.h"
#include "helpers.h"

using namespace rm;

int main() {
  char dir[] = "/tmp/rm-file-table-XXXXXX";
  T_REQUIRE(mkdtemp(dir) != nullptr);
  SegmentConfig cfg;
  cfg.backend = BACKEND_THREADS;
  cfg.max_slots = 4;
  cfg.max_files = 4;
  cfg.arena_size = 1 << 20;
  cfg.data_dir = dir;
  Segment* segp = new Segment;  // forget_segment deletes it
  Segment& seg = *segp;
  std::string err;
  int rc = segment_create(cfg, segp, &err);
  if (rc != 0) fprintf(stderr, "segment_create: %s\n", err.c_str());
  T_REQUIRE(rc == 0);
  // What the first attached environment of a process does (process_env_attached): the
  // threads backend's pool, which keeps this process's fds of the table's files.
  io_method(seg).process_start(segp, SLOT_POSTMASTER, 0, false);
  T_REQUIRE(seg.pool != nullptr);

  const int rw = O_RDWR | O_CREAT;
  uint64_t a_id = 0;

  t::run_case("one file identity, one id: a second open counts a reference", [&] {
    FileOpenResult a, again;
    T_EQ(file_open(seg, "a", rw, 0600, &a), 0);
    T_EQ(file_open(seg, "a", O_RDWR, 0600, &again), 0);  // same access (O_CREAT is how, not what)
    T_EQ(again.id, a.id);
    a_id = a.id;
    FileDescription d;
    T_CHECK(file_describe(seg, (double)a.id, &d));
    T_CHECK(strcmp(d.path, "a") == 0);
    T_EQ(seg.files[d.slot].open_count, 2u);
    FileOpenResult ro;
    T_EQ(file_open(seg, "a", O_RDONLY, 0, &ro), 0);  // other access: its own entry
    T_CHECK(ro.id != a.id);
    bool fsync = false;
    T_CHECK(file_close(seg, (double)ro.id, true, &fsync) == FileClose::Closed);
  });

  t::run_case("a path leaving the data directory: EXDEV, nothing claimed", [&] {
    uint32_t before = 0;
    for (uint32_t i = 0; i < cfg.max_files; i++) before += seg.files[i].state != F_FREE;
    FileOpenResult r;
    T_EQ(file_open(seg, "../escape", rw, 0600, &r), -EXDEV);
    T_CHECK(r.failed == FileOpenStep::Open);
    T_EQ(file_open(seg, "/etc/passwd", O_RDONLY, 0, &r), -EXDEV);
    uint32_t after = 0;
    for (uint32_t i = 0; i < cfg.max_files; i++) after += seg.files[i].state != F_FREE;
    T_EQ(after, before);
  });

  t::run_case("closing: a reference at a time; the last one syncs first unless forced; then the id is stale", [&] {
    bool fsync = false;
    T_CHECK(file_close(seg, (double)a_id, false, &fsync) == FileClose::Released);
    // Created by this open: its directory entry and size must be synced before it goes.
    T_CHECK(file_close(seg, (double)a_id, false, &fsync) == FileClose::SyncFirst);
    T_CHECK(fsync);
    T_CHECK(file_ref(seg, (double)a_id));  // still open: nothing changed
    T_CHECK(file_close(seg, (double)a_id, true, &fsync) == FileClose::Released);
    T_CHECK(file_close(seg, (double)a_id, true, &fsync) == FileClose::Closed);
    T_CHECK(!file_ref(seg, (double)a_id));
    T_CHECK(file_close(seg, (double)a_id, true, &fsync) == FileClose::NotOpen);
    FileDescription d;
    T_CHECK(!file_describe(seg, (double)a_id, &d));
    T_CHECK(!file_describe(seg, -1, &d));
    T_CHECK(!file_describe(seg, 0.5, &d));
    // Reopened: the slot's generation moved on, so the old id stays stale.
    FileOpenResult again;
    T_EQ(file_open(seg, "a", rw, 0600, &again), 0);
    T_CHECK(again.id != a_id);
    T_CHECK(!file_ref(seg, (double)a_id));
    T_CHECK(file_close(seg, (double)again.id, true, &fsync) == FileClose::Closed);
  });

  t::run_case("the last-handle decision and its decrement are one step; a handle added while the last closer prepares makes its close refuse", [&] {
    FileOpenResult x, y;
    T_EQ(file_open(seg, "lc", rw, 0600, &x), 0);
    T_EQ(file_open(seg, "lc", rw, 0600, &y), 0);  // two references
    uint32_t epoch = 0;
    T_CHECK(file_close_unless_last(seg, (double)x.id, &epoch) == FileClose::Released);
    T_CHECK(file_close_unless_last(seg, (double)x.id, &epoch) == FileClose::Last);  // nothing changed
    T_CHECK(file_close_unless_last(seg, (double)x.id, &epoch) == FileClose::Last);
    uint32_t stale = epoch;
    // Another handle comes and goes while the last closer prepares the file.
    T_CHECK(file_ref(seg, (double)x.id));
    bool fsync = false;
    T_CHECK(file_close(seg, (double)x.id, true, &fsync) == FileClose::Released);
    T_CHECK(file_close(seg, (double)x.id, true, &fsync, &epoch) == FileClose::Reopened);  // still open
    T_CHECK(epoch != stale);
    FileDescription d;
    T_CHECK(file_describe(seg, (double)x.id, &d));
    T_CHECK(file_close(seg, (double)x.id, true, &fsync, &epoch) == FileClose::Closed);
    T_CHECK(file_close_unless_last(seg, (double)x.id, &epoch) == FileClose::NotOpen);
  });

  t::run_case("a full table: EMFILE, and the fd is not kept", [&] {
    uint64_t ids[4];
    char name[8];
    for (int i = 0; i < 4; i++) {
      snprintf(name, sizeof(name), "f%d", i);
      FileOpenResult r;
      T_EQ(file_open(seg, name, rw, 0600, &r), 0);
      ids[i] = r.id;
    }
    FileOpenResult r;
    T_EQ(file_open(seg, "f9", rw, 0600, &r), -EMFILE);
    T_CHECK(r.failed == FileOpenStep::TableFull);
    bool fsync = false;
    for (uint64_t id : ids) T_CHECK(file_close(seg, (double)id, true, &fsync) == FileClose::Closed);
  });

  t::run_case("a file renamed away is not its old entry's identity any more", [&] {
    FileOpenResult first;
    T_EQ(file_open(seg, "old", rw, 0600, &first), 0);
    std::string from = std::string(dir) + "/old", to = std::string(dir) + "/new";
    T_REQUIRE(rename(from.c_str(), to.c_str()) == 0);
    FileOpenResult moved;
    T_EQ(file_open(seg, "new", O_RDWR, 0600, &moved), 0);  // same inode, but "old" no longer names it
    T_CHECK(moved.id != first.id);
    bool fsync = false;
    T_CHECK(file_close(seg, (double)first.id, true, &fsync) == FileClose::Closed);
    T_CHECK(file_close(seg, (double)moved.id, true, &fsync) == FileClose::Closed);
  });

  forget_segment(segp, true);
  std::string cmd = std::string("rm -rf ") + dir;
  T_CHECK(system(cmd.c_str()) == 0);
  return t::finish();
}
