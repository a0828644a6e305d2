// warrenctl's commands (rabbitmqctl's names and output shapes, over the HTTP API). Each
// command gets its positional arguments and the common options, prints what it found to
// stdout (tab-separated rows for list_*), errors to stderr, and returns the exit status:
// 0 success, 1 the broker refused or the object does not exist, 64 bad usage, 69 the broker
// cannot be reached.
#pragma once

#include <string>
#include <vector>

#include "tools/warrenctl/http_client.hpp"

namespace warrenctl {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failed = 1;
inline constexpr int exit_usage = 64;
inline constexpr int exit_unavailable = 69;

struct invocation {
  endpoint ep;
  std::string vhost = "/";
  bool table_headers = true;
  bool quiet = false;
  std::vector<std::string> args;
};

struct command {
  const char* name;
  const char* usage;    // arguments after the command name
  const char* summary;  // one line
  int (*run)(invocation&);
};

const std::vector<command>& commands();

// Shared by the command files: report a failed request (exit 1, or 69 when the broker could
// not be reached), a usage error (64), an informational line (stderr, unless -q).
int failed(const response& r, const std::string& what);
int usage(const std::string& name, const std::string& why);
void info(const invocation& inv, const std::string& line);
// One request whose answer says only success (2xx) or failure (reported as by failed()).
int simple(const invocation& inv, const std::string& method, const std::string& path,
           const nlohmann::json* body, const std::string& what);

// lists.cpp
std::string text_of(const nlohmann::json& v);
int list_queues(invocation& inv);
int list_exchanges(invocation& inv);
int list_bindings(invocation& inv);
int list_connections(invocation& inv);
int list_channels(invocation& inv);
int list_consumers(invocation& inv);
int list_users(invocation& inv);
int list_vhosts(invocation& inv);
int list_permissions(invocation& inv);
int list_topic_permissions(invocation& inv);
int list_policies(invocation& inv);
int list_operator_policies(invocation& inv);

// policies.cpp
int set_policy(invocation& inv);
int clear_policy(invocation& inv);
int set_operator_policy(invocation& inv);
int clear_operator_policy(invocation& inv);

// streams.cpp
int add_super_stream(invocation& inv);
int alter_super_stream(invocation& inv);
int delete_super_stream(invocation& inv);
int list_super_stream_partitions(invocation& inv);

}  // namespace warrenctl
