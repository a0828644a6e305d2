// Numbers about the warrend process and its store, read from /proc and the file system when
// someone asks (a scrape of /metrics, /api/nodes): never on the message path.
#pragma once

#include <cstdint>
#include <string>

namespace warren::metrics {

uint64_t resident_memory_bytes();  // VmRSS
// The entries of /proc/self/fd, and (with `sockets`) how many of them are sockets, in one pass.
struct descriptor_counts {
  uint64_t fds = 0, sockets = 0;
};
descriptor_counts open_descriptors(bool sockets);
uint64_t max_fds();                // RLIMIT_NOFILE soft limit
// Total size of the regular files under `dir` (the data directory); 0 when unreadable.
uint64_t directory_bytes(const std::string& dir);
// Free bytes on the file system holding `dir`.
uint64_t free_disk_bytes(const std::string& dir);
double uptime_seconds();  // since the process started (first call of any of these)

}  // namespace warren::metrics
