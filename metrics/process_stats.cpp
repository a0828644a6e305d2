// Implementation of process_stats.hpp (Linux).
#include "metrics/process_stats.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

namespace warren::metrics {

namespace fs = std::filesystem;

namespace {

const auto started = std::chrono::steady_clock::now();

}  // namespace

uint64_t resident_memory_bytes() {
  std::ifstream in{"/proc/self/statm"};
  uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident))
    return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

descriptor_counts open_descriptors(bool sockets) {
  std::error_code ec;
  descriptor_counts n;
  for (fs::directory_iterator it{"/proc/self/fd", ec}, end; !ec && it != end; it.increment(ec)) {
    ++n.fds;
    if (!sockets)
      continue;
    std::error_code link_ec;
    auto target = fs::read_symlink(it->path(), link_ec);
    if (!link_ec && target.native().rfind("socket:", 0) == 0)
      ++n.sockets;
  }
  n.fds -= n.fds > 0 ? 1 : 0;  // the iterator's own descriptor
  return n;
}

uint64_t max_fds() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0)
    return 0;
  return r.rlim_cur == RLIM_INFINITY ? 0 : static_cast<uint64_t>(r.rlim_cur);
}

uint64_t directory_bytes(const std::string& dir) {
  std::error_code ec;
  uint64_t total = 0;
  fs::recursive_directory_iterator it{dir, fs::directory_options::skip_permission_denied, ec};
  for (fs::recursive_directory_iterator end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec)) {
      auto n = it->file_size(fec);
      if (!fec)
        total += n;
    }
  }
  return total;
}

uint64_t free_disk_bytes(const std::string& dir) {
  std::error_code ec;
  auto info = fs::space(dir, ec);
  return ec ? 0 : info.available;
}

double uptime_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

}  // namespace warren::metrics
