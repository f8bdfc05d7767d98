// Cross-process waits on 32-bit words in the arena: "wake every waiter in every
// process when this word changes". A JS environment registers (word offset, value
// it saw); its doorbell thread resolves the wait once the word differs. A waker
// changes the word, then calls wake_word_waiters(): it rings the doorbell of every
// slot flagged in the segment's waiting-slots bitmap. Waiter: set own bit, then
// re-check the word; waker: change the word, then read the bitmap (both seq_cst),
// so a wake is never lost; the doorbell thread also re-checks every 250 ms.
#pragma once
#include <cstdint>

namespace rm {

struct Segment;
constexpr uint32_t kWaitBitmapWords = 64;  // 4096 slots

void set_slot_waiting(Segment& seg, uint32_t slot, bool waiting);
void wake_word_waiters(Segment& seg);
bool word_offset_valid(Segment& seg, uint64_t offset);

}  // namespace rm
