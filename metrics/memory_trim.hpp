// Gives back to the system the memory the allocator keeps after a burst.
//
// glibc's malloc keeps freed memory in its arenas: after a backlog of a few hundred MB is
// consumed or deleted, warrend's RSS stayed at its peak (S6: 680 MiB a few seconds after the
// run, 12 MiB once trimmed). The trimmer is a detached actor that looks every `interval` and
// calls malloc_trim(0) when most of the resident memory is free in the allocator.
// Talks to: nobody (a timer to itself).
// What stays true: never on the message path (its own thread); never trims while most of the
// resident memory is in use or the free part is under the minimum, so a load that keeps its
// memory busy is not made to fault its pages back in.
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>

namespace warren::metrics {

struct trim_policy {
  std::chrono::milliseconds interval{10000};  // 0: no trimmer
  // Smaller gaps are not worth a trim. Under a steady 1 -> 1 load the allocator's slack
  // swings between 20 and 40 MiB; trimming it would only make the pages fault back in.
  uint64_t min_free_bytes = 64ull << 20;
};

// Whether a process with `resident` bytes, of which the allocator hands out `in_use`, should
// trim: at least `min_free` bytes and at least half of what is resident are free.
bool should_trim(uint64_t resident, uint64_t in_use, uint64_t min_free);

// Bytes the allocator has handed out and not had back (glibc mallinfo2: arenas and mmapped
// chunks).
uint64_t allocator_in_use_bytes();

// Spawns the trimmer (a detached actor); returns an invalid handle when interval is 0.
caf::actor spawn_memory_trimmer(caf::actor_system& sys, trim_policy policy);

}  // namespace warren::metrics
