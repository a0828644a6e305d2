// The methods each path of the API takes: what OPTIONS answers in its Allow header, and what
// every other method gets a 405 for. RabbitMQ's lists (its dispatcher's paths, in its order,
// so that "users/bulk-delete" is taken before "users/{user}"), less what Warren does not do,
// plus Warren's own paths (cluster, debug, node limits).
#include "management/api.hpp"

#include <array>

namespace warren::mgmt {
namespace {

struct route {
  std::string_view pattern;  // segments after "/api/"; "*" is any one segment
  std::string_view allow;
};

constexpr std::string_view get = read_only;
constexpr std::string_view get_put_delete = "HEAD, GET, PUT, DELETE, OPTIONS";

constexpr std::array routes{
  route{"overview", get},
  route{"cluster-name", get},  // (the first node's name: it cannot be set)
  route{"nodes", get},
  route{"nodes/*", get},
  route{"nodes/*/limits", "PUT, OPTIONS"},
  route{"definitions", "HEAD, GET, POST, OPTIONS"},
  route{"definitions/*", "HEAD, GET, POST, OPTIONS"},
  route{"parameters", get},  // (Warren has none to set)
  route{"parameters/*", get},
  route{"parameters/*/*", get},
  route{"parameters/*/*/*", get},
  route{"global-parameters", get},
  route{"global-parameters/*", get},
  route{"policies", get},
  route{"policies/*", get},
  route{"policies/*/*", get_put_delete},  // (a PUT says why there are none)
  route{"operator-policies", get},
  route{"operator-policies/*", get},
  route{"operator-policies/*/*", get_put_delete},
  route{"vhost-limits/*/*", "PUT, DELETE, OPTIONS"},
  route{"vhost-limits", "GET, OPTIONS"},
  route{"vhost-limits/*", "GET, OPTIONS"},
  route{"connections", get},
  route{"connections/*", "HEAD, GET, DELETE, OPTIONS"},
  route{"connections/*/channels", get},
  route{"channels", get},
  route{"channels/*", get},
  route{"consumers", get},
  route{"consumers/*", get},
  route{"exchanges", get},
  route{"exchanges/*", get},
  route{"exchanges/*/*", get_put_delete},
  route{"exchanges/*/*/publish", "POST, OPTIONS"},
  route{"exchanges/*/*/bindings/source", get},
  route{"exchanges/*/*/bindings/destination", get},
  route{"queues", get},
  route{"queues/*", get},
  route{"queues/*/*", get_put_delete},
  route{"queues/*/*/bindings", get},
  route{"queues/*/*/contents", "DELETE, OPTIONS"},
  route{"queues/*/*/get", "POST, OPTIONS"},
  route{"bindings", get},
  route{"bindings/*", get},
  route{"bindings/*/e/*/*/*", "HEAD, GET, POST, OPTIONS"},
  route{"bindings/*/e/*/*/*/*", "HEAD, GET, DELETE, OPTIONS"},
  route{"vhosts", get},
  route{"vhosts/*", get_put_delete},
  route{"vhosts/*/permissions", get},
  route{"vhosts/*/topic-permissions", get},
  route{"vhosts/*/connections", get},
  route{"vhosts/*/channels", get},
  route{"users/bulk-delete", "POST, OPTIONS"},
  route{"users/without-permissions", get},
  route{"users", get},
  route{"users/*", get_put_delete},
  route{"users/*/permissions", get},
  route{"users/*/topic-permissions", get},
  route{"user-limits/*/*", "PUT, DELETE, OPTIONS"},
  route{"user-limits", "GET, OPTIONS"},
  route{"user-limits/*", "GET, OPTIONS"},
  route{"whoami", get},
  route{"auth", get},
  route{"extensions", get},
  route{"permissions", get},
  route{"permissions/*/*", get_put_delete},
  route{"topic-permissions", get},
  route{"topic-permissions/*/*", get_put_delete},
  route{"aliveness-test/*", get},
  route{"healthchecks/node", get},
  route{"health/checks/certificate-expiration/*/*", get},
  route{"health/checks/port-listener/*", get},
  route{"health/checks/protocol-listener/*", get},
  route{"health/checks/*", get},
  route{"cluster/join", "POST, OPTIONS"},
  route{"cluster/leave", "POST, OPTIONS"},
  route{"cluster/nodes/*", "DELETE, OPTIONS"},
  route{"debug/crash/*/*", "POST, OPTIONS"},
  route{"debug/crash/*/*/*", "POST, OPTIONS"},
  route{"debug/stall/*/*/*", "POST, OPTIONS"},
};

bool matches(std::string_view pattern, const std::vector<std::string>& path) {
  size_t i = 0;
  while (true) {
    auto slash = pattern.find('/');
    auto part = pattern.substr(0, slash);
    if (i == path.size() || (part != "*" && part != path[i]))
      return false;
    ++i;
    if (slash == std::string_view::npos)
      return i == path.size();
    pattern.remove_prefix(slash + 1);
  }
}

}  // namespace

std::string_view allowed_methods(const std::vector<std::string>& path) {
  for (auto& r : routes)
    if (matches(r.pattern, path))
      return r.allow;
  return get;  // (as RabbitMQ's handler of every other path: its static files)
}

bool method_allowed(std::string_view allow, std::string_view method) {
  while (!allow.empty()) {
    auto comma = allow.find(", ");
    if (allow.substr(0, comma) == method)
      return true;
    if (comma == std::string_view::npos)
      break;
    allow.remove_prefix(comma + 2);
  }
  return false;
}

}  // namespace warren::mgmt
