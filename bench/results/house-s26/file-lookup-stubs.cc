// Stand-ins for what native/file_table.cc links against besides file_lookup (never called
// by file-lookup-hot.cc): enough to link it alone.
#include <string>
#include <cstdint>
namespace rm { struct Segment; struct FileEntry; struct RobustLock; struct IoMethod;
enum class LockResult { Acquired };
int open_beneath(int, const char*, int, int, bool*) { return -1; }
int dir_sync_parents(Segment&, const char*, std::string*) { return 0; }
bool file_sync_pending(const FileEntry*) { return false; }
LockResult robust_lock_acquire(RobustLock*, long) { return LockResult::Acquired; }
void robust_lock_release(RobustLock*) {}
bool file_sync_needs_fsync(const FileEntry*) { return false; }
void file_sync_entry_opened(Segment&, FileEntry*, unsigned long, bool) {}
}
namespace rm { struct IoMethodOps; const IoMethodOps& io_method(const Segment&) { return *(const IoMethodOps*)nullptr; } }
