#include "process_table.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomics.h"

namespace rm {

uint64_t process_start_time(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE* f = fopen(path, "r");
  if (!f) return 0;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  // comm may contain spaces and parentheses: fields resume after the last ')'.
  char* p = strrchr(buf, ')');
  if (!p) return 0;
  p += 2;  // now at field 3 (state)
  unsigned long long v = 0;
  for (int field = 3; field <= 22 && *p; field++) {
    if (field == 22) { v = strtoull(p, nullptr, 10); break; }
    p = strchr(p, ' ');
    if (!p) return 0;
    p++;
  }
  return v;
}

int slot_claim(ProcSlot* slots, uint32_t count, SlotKind kind, uint32_t home_ring, bool reaps) {
  pid_t pid = getpid();
  for (uint32_t i = 0; i < count; i++) {
    uint32_t expected = SLOT_FREE;
    if (!cas(&slots[i].state, &expected, (uint32_t)SLOT_CLEANING)) continue;
    // We own the slot exclusively while it is CLEANING; fill it, then publish ACTIVE.
    ProcSlot* s = &slots[i];
    s->pid = pid;
    s->tid = (int32_t)syscall(SYS_gettid);
    s->start_time = process_start_time(pid);
    s->kind = kind;
    s->reaps = reaps ? 1 : 0;
    s->home_ring = home_ring;
    s->stat_submitted = s->stat_completed = s->stat_completed_by_other = 0;
    s->stat_reaped = s->stat_reaped_for_other = 0;
    s->tb_counted = 0;
    s->tb_owns_drain = 0;
    fetch_add(&s->generation, 1u);
    store_release(&s->state, (uint32_t)SLOT_ACTIVE);  // pairs with load_acquire in readers
    return (int)i;
  }
  return -1;
}

void slot_release(ProcSlot* slot) {
  store_relaxed(&slot->pid, 0);
  store_release(&slot->state, (uint32_t)SLOT_FREE);
}

bool slot_owner_dead(const ProcSlot* slot) {
  if (load_acquire(&slot->state) != SLOT_ACTIVE) return false;
  pid_t pid = load_relaxed(&slot->pid);
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  uint64_t st = process_start_time(pid);
  return st != 0 && st != load_relaxed(&slot->start_time);
}

namespace {
SlotCleanupHook g_cleanup_hooks[8];  // zero-initialized before module static initializers run
}

bool register_slot_cleanup_hook(SlotCleanupHook hook) {
  for (auto& h : g_cleanup_hooks) {
    if (!h) { h = hook; return true; }
  }
  return false;
}

void run_slot_cleanup_hooks(Segment& seg, uint32_t slot, bool process_died) {
  for (auto& h : g_cleanup_hooks) if (h) h(seg, slot, process_died);
}

void slot_ring_doorbell(ProcSlot* slot) {
  fetch_add(&slot->doorbell, 1u);  // release: the handle's COMPLETED state is visible first
  futex_wake_all(&slot->doorbell);
}

}  // namespace rm
