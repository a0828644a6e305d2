// Memory and disk alarms, as RabbitMQ raises them: when the broker's resident memory reaches
// the high watermark, or the free space on the data directory's disk falls under the limit,
// every connection that publishes is blocked (AMQP connection.blocked to clients that announce
// the capability, then nothing more is read from them until the alarm clears, and
// connection.unblocked); consumers go on, so that queues can drain. STOMP connections stop at
// their next SEND the same way.
//
// The monitor is a detached actor (its own thread, never on the message path) that samples both
// every `interval` and tells alarm_group() (every connection joins it) when either alarm changes:
//   (alarm_atom, bool memory, bool disk)
// Requests:
//   (get_atom)                          -> alarm_status   now, and a connection's first look
//   (put_atom, alarm_limits_change)     -> alarm_status   warrenctl set_vm_memory_high_watermark
//                                                         and set_disk_free_limit
// What stays true: an alarm is raised or cleared only by a sample (or a new limit), and every
// change is sent to the group; the status it answers is the one it last sent.
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace warren {

struct alarm_limits {
  // The memory watermark: `memory_absolute` bytes when nonzero, else `memory_relative` of the
  // machine's memory (RabbitMQ's vm_memory_high_watermark.relative, default 0.4).
  double memory_relative = 0.4;
  uint64_t memory_absolute = 0;
  // Free disk below which publishers are blocked (RabbitMQ's disk_free_limit.absolute, 50 MB).
  uint64_t disk_free_absolute = 50'000'000;
  std::string data_dir = ".";
  std::chrono::milliseconds interval{1000};
};

// A change of limits; unset fields keep their value.
struct alarm_limits_change {
  std::optional<double> memory_relative;
  std::optional<uint64_t> memory_absolute;
  std::optional<uint64_t> disk_free_absolute;
};

struct alarm_status {
  bool memory = false;
  bool disk = false;
  uint64_t memory_used = 0;
  uint64_t memory_limit = 0;
  uint64_t disk_free = 0;
  uint64_t disk_free_limit = 0;
};

// RabbitMQ's reason in connection.blocked: "low on memory", "low on disk", or both.
inline const char* alarm_reason(bool memory, bool disk) {
  if (memory && disk)
    return "low on disk & memory";
  return memory ? "low on memory" : "low on disk";
}

// Sizes as RabbitMQ's config takes them: "52428800", "50MB", "1GB", "512MiB", "2GiB", "100kB".
std::optional<uint64_t> parse_byte_size(const std::string& text);

inline caf::group alarm_group(caf::actor_system& sys) {
  return sys.groups().get_local("warren.alarms");
}

// The monitor, registered in the system's registry (find it with current_alarms()).
caf::actor spawn_resource_alarms(caf::actor_system& sys, alarm_limits limits);
caf::actor current_alarms(caf::actor_system& sys);

}  // namespace warren

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::alarm_status)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::alarm_limits_change)
