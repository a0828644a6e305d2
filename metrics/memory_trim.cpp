// The memory trimmer; see memory_trim.hpp.
#include "metrics/memory_trim.hpp"

#include <malloc.h>

#include <spdlog/spdlog.h>

#include "actors/hardening.hpp"
#include "actors/messages.hpp"
#include "metrics/process_stats.hpp"

namespace warren::metrics {

bool should_trim(uint64_t resident, uint64_t in_use, uint64_t min_free) {
  if (resident <= in_use)
    return false;
  const uint64_t free = resident - in_use;
  return free >= min_free && free * 2 >= resident;
}

uint64_t allocator_in_use_bytes() {
  const struct mallinfo2 mi = mallinfo2();
  return static_cast<uint64_t>(mi.uordblks) + static_cast<uint64_t>(mi.hblkhd);
}

namespace {

// One look: trims when should_trim says so, and logs what it gave back.
void look(const trim_policy& policy) {
  const uint64_t resident = resident_memory_bytes();
  if (resident < policy.min_free_bytes)
    return;  // not even worth asking the allocator
  const uint64_t in_use = allocator_in_use_bytes();
  if (!should_trim(resident, in_use, policy.min_free_bytes))
    return;
  const auto t0 = std::chrono::steady_clock::now();
  malloc_trim(0);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - t0)
                    .count();
  const uint64_t after = resident_memory_bytes();
  const uint64_t gave = resident > after ? resident - after : 0;
  // Nothing given back happens where malloc is not glibc's (a sanitizer's allocator).
  spdlog::log(gave >= (1u << 20) ? spdlog::level::info : spdlog::level::debug,
              "memory: gave {} MiB back to the system ({} MiB resident, {} MiB in use; {} ms)",
              gave >> 20, after >> 20, in_use >> 20, ms);
}

caf::behavior trimmer(caf::event_based_actor* self, trim_policy policy) {
  install_defaults(self, "memory trimmer");
  self->delayed_send(self, policy.interval, tick_atom::value);
  return {
    [=](tick_atom) {
      look(policy);
      self->delayed_send(self, policy.interval, tick_atom::value);
    },
  };
}

}  // namespace

caf::actor spawn_memory_trimmer(caf::actor_system& sys, trim_policy policy) {
  if (policy.interval.count() <= 0)
    return {};
  return sys.spawn<caf::detached>(trimmer, policy);
}

}  // namespace warren::metrics
