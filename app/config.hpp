// warrend's settings: defaults, then the config file (RabbitMQ's `key = value` format), then
// command-line flags, each overriding the one before.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "net/tls.hpp"

namespace warren {

struct daemon_config {
  std::string bind_address = "127.0.0.1";
  int amqp_port = 5672;
  int stomp_port = 61613;
  int http_port = 15672;
  // TLS listeners: -1 = none (RabbitMQ starts them only when configured), 0 = a free port.
  // AMQPS and STOMP over TLS use `tls` (ssl_options.*), HTTPS its own (management.ssl.*).
  int amqps_port = -1;
  int stomps_port = -1;
  int https_port = -1;
  net::tls_options tls;
  net::tls_options management_tls;
  // SASL mechanisms offered to AMQP clients, in order (auth_mechanisms.N); EXTERNAL takes the
  // user name from the client's TLS certificate: its subject (RFC 4514) or its common name.
  std::vector<std::string> auth_mechanisms{"PLAIN", "AMQPLAIN"};
  bool cert_login_common_name = false;  // ssl_cert_login_from = common_name
  bool stomp_cert_login = false;  // stomp.ssl_cert_login: a CONNECT without login uses it too
  std::string data_dir = "./data";
  std::string config_file;
  int workers = 0;  // 0 = number of cores
  // The I/O thread runs the actors a small socket read wakes (net/inline_unit.hpp) instead of
  // handing every read to a worker: fewer thread wake-ups per message at low rates.
  bool inline_io = true;
  // Threads that read the client sockets, each with its sockets (net/io_pool.hpp);
  // 0 = one per four workers, at least one.
  int io_threads = 0;
  std::string log_level = "info";
  std::string log_file;
  std::string default_user = "guest";
  std::string default_pass = "guest";
  // RabbitMQ's load_definitions: a definitions file (the management API's export format), or a
  // directory of them (*.json, in name order), imported at every start before the listeners
  // open; "" = none.
  std::string load_definitions;
  // Users who may log in only through a loopback address ("loopback_users = none": nobody).
  std::vector<std::string> loopback_users{"guest"};
  // Memory and disk alarms (actors/resource_alarms.hpp): the memory high watermark (absolute
  // bytes when nonzero, else relative to the machine's memory) and the free disk limit.
  double memory_relative = 0.4;
  uint64_t memory_absolute = 0;
  uint64_t disk_free_absolute = 50'000'000;
  uint16_t heartbeat = 60;
  uint32_t frame_max = 131072;
  uint16_t channel_max = 2047;
  // RabbitMQ's consumer_timeout: a channel with a delivery unacknowledged this long is closed
  // (0, `consumer_timeout = false`: never).
  uint32_t consumer_timeout_ms = 1'800'000;
  std::string on_corruption = "refuse";  // refuse | quarantine
  int commit_interval_ms = 2;  // longest a confirm waits for its group commit
  // Observability: how often actors report their statistics, and whether /metrics has a
  // series per queue, exchange, connection and channel (RabbitMQ's keys and default).
  int stats_interval_ms = 1000;
  bool per_object_metrics = false;
  int queue_memory_mb = 64;  // per durable queue; beyond it bodies stay on disk
  // How often the memory trimmer looks whether the allocator keeps memory worth giving back
  // (metrics/memory_trim.hpp); 0 turns it off.
  int memory_trim_interval_ms = 10000;
  // Supervision: more than `max_restarts` restarts within `restart_period_ms` and a
  // supervisor gives up (a vhost for its exchanges and queues, the registry for its vhosts,
  // the root for its children), leaving the decision to its parent.
  int max_restarts = 5;
  int restart_period_ms = 10000;
  // POST /api/debug/crash/... and `warrenctl crash` make actors fail (tests of supervision).
  bool fault_injection = false;
  // Cluster (cluster/cluster_actor.hpp): a negative port is none, the node runs alone.
  int cluster_port = -1;
  std::string cluster_name;  // "" = warren@<hostname>
  std::string cluster_join;  // host:port, joined at the first start
  std::string cluster_cookie;  // the same on every node of a cluster
  int cluster_keep_deletions_s = 120;  // tombstones kept once every member runs
  // TLS between the nodes (cluster.ssl_options.*): certfile, keyfile, cacertfile, password.
  net::tls_options cluster_tls;
};

// Parses argv; on --help prints usage and sets `exit_code` to 0; on a bad flag or config file
// prints the reason and sets `exit_code` to 2. Returns nullopt whenever the daemon should exit.
std::optional<daemon_config> parse_command_line(int argc, char** argv, int& exit_code);

// Applies `key = value` lines (comments with #) to cfg; returns an error message or "".
std::string apply_config_text(const std::string& text, daemon_config& cfg);

std::string usage_text();

}  // namespace warren
