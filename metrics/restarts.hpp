// Restarts made by supervisors (vhosts restart their queues and exchanges, the registry its
// vhosts, the root supervisor its children), counted per actor for warren_actor_restarts_total.
// Written only when something crashed, so a mutex is fine; the exporter reads a copy.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace warren::metrics {

struct restart_count {
  std::string kind;   // "queue", "exchange", "vhost", "registry", ...
  std::string vhost;  // "" where it does not apply
  std::string name;
  uint64_t restarts = 0;
};

namespace detail {

struct restart_table {
  std::mutex mutex;
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> counts;
};

inline restart_table& restarts() {
  static restart_table table;
  return table;
}

}  // namespace detail

// Counts one restart and returns how many this actor has had.
inline uint64_t count_restart(const std::string& kind, const std::string& vhost,
                              const std::string& name) {
  auto& t = detail::restarts();
  std::lock_guard lock{t.mutex};
  return ++t.counts[{kind, vhost, name}];
}

inline std::vector<restart_count> restart_counts() {
  auto& t = detail::restarts();
  std::lock_guard lock{t.mutex};
  std::vector<restart_count> out;
  out.reserve(t.counts.size());
  for (auto& [key, n] : t.counts)
    out.push_back(restart_count{std::get<0>(key), std::get<1>(key), std::get<2>(key), n});
  return out;
}

}  // namespace warren::metrics
