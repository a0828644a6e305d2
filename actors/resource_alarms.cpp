#include "actors/resource_alarms.hpp"

#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <system_error>

#include <spdlog/spdlog.h>

#include "actors/messages.hpp"
#include "metrics/process_stats.hpp"

namespace warren {

namespace {

using alarm_tick_atom = caf::atom_constant<caf::atom("alarmtick")>;

uint64_t machine_memory_bytes() {
  auto pages = sysconf(_SC_PHYS_PAGES);
  auto size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(size) : 0;
}

struct alarms_state {
  alarm_limits limits;
  alarm_status status;
  static inline const char* name = "resource_alarms";
};

using alarms_actor = caf::stateful_actor<alarms_state>;

uint64_t memory_limit(const alarm_limits& l) {
  if (l.memory_absolute > 0)
    return l.memory_absolute;
  return static_cast<uint64_t>(l.memory_relative * static_cast<double>(machine_memory_bytes()));
}

// Samples both resources; sends the group the new state when an alarm changed.
void sample(alarms_actor* self) {
  auto& st = self->state;
  auto& s = st.status;
  bool was_memory = s.memory, was_disk = s.disk;
  s.memory_used = metrics::resident_memory_bytes();
  s.memory_limit = memory_limit(st.limits);
  s.disk_free_limit = st.limits.disk_free_absolute;
  s.memory = s.memory_used >= s.memory_limit;
  // A disk that cannot be asked (the data directory gone) keeps the alarm as it was.
  std::error_code ec;
  auto space = std::filesystem::space(st.limits.data_dir, ec);
  if (!ec) {
    s.disk_free = space.available;
    s.disk = s.disk_free < s.disk_free_limit;
  }
  auto log_change = [](const char* resource, bool raised, const char* what, uint64_t amount,
                       uint64_t limit) {
    spdlog::warn("{} resource limit alarm {}: {} {} bytes, limit {} bytes{}", resource,
                 raised ? "set" : "cleared", what, amount, limit,
                 raised ? "; publishers are blocked until it clears" : "");
  };
  if (s.memory != was_memory)
    log_change("memory", s.memory, "memory used", s.memory_used, s.memory_limit);
  if (s.disk != was_disk)
    log_change("disk", s.disk, "free disk", s.disk_free, s.disk_free_limit);
  if (s.memory != was_memory || s.disk != was_disk)
    self->send(alarm_group(self->home_system()), alarm_atom::value, s.memory, s.disk);
}

caf::behavior alarms_behavior(alarms_actor* self, alarm_limits limits) {
  self->state.limits = std::move(limits);
  sample(self);
  self->delayed_send(self, self->state.limits.interval, alarm_tick_atom::value);
  return {
    [=](alarm_tick_atom) {
      sample(self);
      self->delayed_send(self, self->state.limits.interval, alarm_tick_atom::value);
    },
    [=](get_atom) { return self->state.status; },
    [=](put_atom, alarm_limits_change& c) {
      auto& l = self->state.limits;
      if (c.memory_relative) {
        l.memory_relative = *c.memory_relative;
        l.memory_absolute = 0;
      }
      if (c.memory_absolute)
        l.memory_absolute = *c.memory_absolute;
      if (c.disk_free_absolute)
        l.disk_free_absolute = *c.disk_free_absolute;
      spdlog::info("resource limits set: memory high watermark {} bytes, disk free limit {} "
                   "bytes",
                   memory_limit(l), l.disk_free_absolute);
      sample(self);
      return self->state.status;
    },
  };
}

}  // namespace

std::optional<uint64_t> parse_byte_size(const std::string& text) {
  size_t i = 0;
  uint64_t n = 0;
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0])))
    return std::nullopt;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (n > (UINT64_MAX - 9) / 10)
      return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(text[i++] - '0');
  }
  auto unit = text.substr(i);
  uint64_t mult = 1;
  if (unit.empty())
    mult = 1;
  else if (unit == "kB" || unit == "KB")
    mult = 1000;
  else if (unit == "MB")
    mult = 1000 * 1000;
  else if (unit == "GB")
    mult = 1000ull * 1000 * 1000;
  else if (unit == "TB")
    mult = 1000ull * 1000 * 1000 * 1000;
  else if (unit == "KiB" || unit == "k" || unit == "K")
    mult = 1ull << 10;
  else if (unit == "MiB" || unit == "M")
    mult = 1ull << 20;
  else if (unit == "GiB" || unit == "G")
    mult = 1ull << 30;
  else if (unit == "TiB" || unit == "T")
    mult = 1ull << 40;
  else
    return std::nullopt;
  if (n > UINT64_MAX / mult)
    return std::nullopt;
  return n * mult;
}

caf::actor spawn_resource_alarms(caf::actor_system& sys, alarm_limits limits) {
  auto a = sys.spawn<caf::detached>(alarms_behavior, std::move(limits));
  sys.registry().erase(caf::atom("alarms"));
  sys.registry().put(caf::atom("alarms"), a);
  return a;
}

caf::actor current_alarms(caf::actor_system& sys) {
  return caf::actor_cast<caf::actor>(sys.registry().get(caf::atom("alarms")));
}

}  // namespace warren
