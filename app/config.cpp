#include "app/config.hpp"

#include <cstdlib>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include "actors/resource_alarms.hpp"

namespace warren {

namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// "true" or "false" into `out`; false (and `out` untouched) for anything else.
bool to_bool(const std::string& s, bool& out) {
  if (s != "true" && s != "false")
    return false;
  out = s == "true";
  return true;
}

bool to_int(const std::string& s, long lo, long hi, long& out) {
  try {
    size_t pos = 0;
    long v = std::stol(s, &pos);
    if (pos != s.size() || v < lo || v > hi)
      return false;
    out = v;
    return true;
  } catch (...) {
    return false;
  }
}

// A listener value is "PORT" or "ADDRESS:PORT" (RabbitMQ's listeners.tcp.* format).
bool parse_listener(const std::string& v, std::string& address, int& port) {
  auto colon = v.rfind(':');
  std::string p = colon == std::string::npos ? v : v.substr(colon + 1);
  long n;
  if (!to_int(p, 0, 65535, n))
    return false;
  if (colon != std::string::npos)
    address = v.substr(0, colon);
  port = static_cast<int>(n);
  return true;
}

// One `ssl_options.<rest>` (or `management.ssl.<rest>`) setting; false when `rest` names none
// or `value` does not fit it.
bool apply_tls_key(const std::string& rest, const std::string& value, net::tls_options& t,
                   bool& known) {
  known = true;
  long n;
  if (rest == "certfile")
    t.certfile = value;
  else if (rest == "keyfile")
    t.keyfile = value;
  else if (rest == "cacertfile")
    t.cacertfile = value;
  else if (rest == "password")
    t.password = value;
  else if (rest == "verify") {
    if (value != "verify_peer" && value != "verify_none")
      return false;
    t.verify_peer = value == "verify_peer";
  } else if (rest == "fail_if_no_peer_cert")
    return to_bool(value, t.fail_if_no_peer_cert);
  else if (rest == "depth") {
    if (!to_int(value, 0, 100, n))
      return false;
    t.depth = static_cast<int>(n);
  } else if (rest.rfind("versions.", 0) == 0) {
    if (value != "tlsv1" && value != "tlsv1.1" && value != "tlsv1.2" && value != "tlsv1.3")
      return false;
    t.versions.push_back(value);
  } else if (rest.rfind("ciphers.", 0) == 0) {
    if (value.empty())
      return false;
    t.ciphers.push_back(value);
  } else {
    known = false;
    return false;
  }
  return true;
}

const char* levels[] = {"trace", "debug", "info", "warning", "warn", "error", "critical", "none"};

bool valid_level(const std::string& l) {
  for (auto x : levels)
    if (l == x)
      return true;
  return false;
}

}  // namespace

std::string usage_text() {
  return R"(Usage: warrend [options]

Warren message broker: AMQP 0-9-1 and STOMP, with an HTTP management API.

Options:
  --amqp-port N       AMQP listener port (default 5672; 0 picks a free port)
  --stomp-port N      STOMP listener port (default 61613; 0 picks a free port)
  --http-port N       HTTP management / metrics port (default 15672; 0 picks a free port)
  --amqps-port N      AMQP over TLS listener port (default none; RabbitMQ's is 5671)
  --stomps-port N     STOMP over TLS listener port (default none; RabbitMQ's is 61614)
  --https-port N      HTTPS management / metrics port (default none; RabbitMQ's is 15671)
                      The TLS listeners need a certificate and key: ssl_options.certfile and
                      ssl_options.keyfile (management.ssl.* for HTTPS) in the config file.
  --bind ADDRESS      address the listeners bind to (default 127.0.0.1)
  --data-dir DIR      directory for the broker's data (default ./data)
  --config FILE       configuration file in RabbitMQ's `key = value` format
  --workers N         actor scheduler threads (default: number of cores)
  --io-threads N      threads that read the client sockets, each its share of them
                      (default: one per four workers, at least one)
  --inline-io true|false  whether an I/O thread runs the actors a small socket read wakes
                      (default true: one thread wake-up less per message at low rates)
  --log-level LEVEL   trace, debug, info, warning, error, critical or none (default info)
  --log-file FILE     also log to FILE
  --on-corruption M   refuse (default) or quarantine: what to do when the start-up check
                      finds a damaged or missing part of the message store
  --max-restarts N    restart intensity of every supervisor (default 5): more than N
                      restarts within the period and it gives up, its parent decides
  --restart-period-ms MS   the period of the restart intensity (default 10000)
  --fault-injection [true|false]  allow POST /api/debug/crash/... and `warrenctl crash`
                      (default false; the flag alone means true)
  --cluster-port N    port for the other nodes of a cluster, on the --bind address
                      (default none: the node runs alone; RabbitMQ's is 25672)
  --cluster-name NAME this node's name in the cluster (default warren@<hostname>)
  --cluster-join HOST:PORT  at the first start, join the cluster of the node whose cluster
                      port that is; a node that has joined remembers the others in its data
                      directory and rejoins them by itself (warrenctl join_cluster does the
                      same at any time)
  --cluster-cookie SECRET  every node of a cluster must have the same; a node with another
                      one cannot join (default none, on every node)
                      TLS between the nodes, with a certificate each and the CAs that signed
                      them: cluster.ssl_options.certfile, .keyfile and .cacertfile in the
                      config file (then every node of the cluster needs them)
  --help              show this text and exit

Configuration keys (see etc/warren.conf):
  listeners.tcp.default, stomp.listeners.tcp.1, management.tcp.port, listeners.bind,
  listeners.ssl.default, stomp.listeners.ssl.1, management.ssl.port, ssl_options.certfile,
  ssl_options.keyfile, ssl_options.cacertfile, ssl_options.password, ssl_options.verify,
  ssl_options.fail_if_no_peer_cert, ssl_options.depth, ssl_options.versions.N,
  ssl_options.ciphers.N, management.ssl.* (the same keys for HTTPS), ssl_handshake_timeout,
  auth_mechanisms.N, ssl_cert_login_from, stomp.ssl_cert_login,
  data_dir, scheduler.workers, scheduler.io_threads, scheduler.inline_io, log.console.level,
  log.file, default_user, default_pass, loopback_users, load_definitions,
  vm_memory_high_watermark.relative,
  vm_memory_high_watermark.absolute, disk_free_limit.absolute, heartbeat, frame_max, channel_max,
  consumer_timeout, persistence.on_corruption, persistence.commit_interval_ms,
  persistence.queue_memory_mb, memory.trim_interval_ms, collect_statistics_interval,
  prometheus.return_per_object_metrics, supervision.max_restarts, supervision.period_ms,
  debug.fault_injection, cluster.port, cluster.name, cluster.join, cluster.cookie,
  cluster.ssl_options.certfile, cluster.ssl_options.keyfile, cluster.ssl_options.cacertfile,
  cluster.ssl_options.password, cluster.keep_deletions

HTTP on --http-port: the management API (/api/..., RabbitMQ's paths, basic auth with the
broker's users), Prometheus metrics (/metrics) and a web page (/). Users, vhosts and
permissions are kept in the data directory; default_user / default_pass are created on the
first start only (when the store has no users). warrenctl is the command-line client.

When a listener is up, warrend logs `listening <proto> <address>:<port>` to stderr.
SIGTERM or SIGINT closes every connection with 320 CONNECTION_FORCED and exits 0.
If the root supervisor gives up (its children failed too often), warrend exits with 70.
)";
}

std::string apply_config_text(const std::string& text, daemon_config& cfg) {
  std::istringstream in{text};
  std::string line;
  int lineno = 0;
  bool mechanisms_given = false;
  while (std::getline(in, line)) {
    ++lineno;
    auto hash = line.find('#');
    if (hash != std::string::npos)
      line.erase(hash);
    line = trim(line);
    if (line.empty())
      continue;
    auto eq = line.find('=');
    if (eq == std::string::npos)
      return "line " + std::to_string(lineno) + ": expected `key = value`";
    auto key = trim(line.substr(0, eq));
    auto value = trim(line.substr(eq + 1));
    auto bad = [&] {
      return "line " + std::to_string(lineno) + ": invalid value '" + value + "' for " + key;
    };
    long n;
    if (key == "listeners.tcp.default") {
      if (!parse_listener(value, cfg.bind_address, cfg.amqp_port))
        return bad();
    } else if (key == "stomp.listeners.tcp.1" || key == "stomp.listeners.tcp.default") {
      std::string ignored;
      if (!parse_listener(value, ignored, cfg.stomp_port))
        return bad();
    } else if (key == "listeners.ssl.default" || key == "stomp.listeners.ssl.1" ||
               key == "stomp.listeners.ssl.default") {
      std::string ignored;
      auto& port = key == "listeners.ssl.default" ? cfg.amqps_port : cfg.stomps_port;
      if (!parse_listener(value, ignored, port))
        return bad();
    } else if (key == "listeners.ssl" || key == "stomp.listeners.ssl") {  // `= none`
      if (value != "none")
        return bad();
      (key == "listeners.ssl" ? cfg.amqps_port : cfg.stomps_port) = -1;
    } else if (key == "management.ssl.port") {
      if (!to_int(value, 0, 65535, n))
        return bad();
      cfg.https_port = static_cast<int>(n);
    } else if (key.rfind("ssl_options.", 0) == 0 || key.rfind("management.ssl.", 0) == 0) {
      bool mgmt = key.rfind("management.ssl.", 0) == 0;
      auto rest = key.substr(mgmt ? std::string_view{"management.ssl."}.size()
                                  : std::string_view{"ssl_options."}.size());
      bool known = false;
      if (!apply_tls_key(rest, value, mgmt ? cfg.management_tls : cfg.tls, known))
        return known ? bad() : "line " + std::to_string(lineno) + ": unknown key '" + key + "'";
    } else if (key == "ssl_handshake_timeout") {
      if (!to_int(value, 100, 600000, n))
        return bad();
      cfg.tls.handshake_timeout_ms = cfg.management_tls.handshake_timeout_ms =
        static_cast<int>(n);
    } else if (key.rfind("auth_mechanisms.", 0) == 0) {
      if (value != "PLAIN" && value != "AMQPLAIN" && value != "EXTERNAL")
        return bad();
      if (!mechanisms_given)
        cfg.auth_mechanisms.clear();
      mechanisms_given = true;
      if (std::find(cfg.auth_mechanisms.begin(), cfg.auth_mechanisms.end(), value) ==
          cfg.auth_mechanisms.end())
        cfg.auth_mechanisms.push_back(value);
    } else if (key == "ssl_cert_login_from") {
      if (value != "distinguished_name" && value != "common_name")
        return bad();
      cfg.cert_login_common_name = value == "common_name";
    } else if (key == "stomp.ssl_cert_login") {
      if (!to_bool(value, cfg.stomp_cert_login))
        return bad();
    } else if (key == "management.tcp.port") {
      if (!to_int(value, 0, 65535, n))
        return bad();
      cfg.http_port = static_cast<int>(n);
    } else if (key == "listeners.bind") {
      cfg.bind_address = value;
    } else if (key == "data_dir") {
      cfg.data_dir = value;
    } else if (key == "scheduler.workers") {
      if (!to_int(value, 0, 1024, n))
        return bad();
      cfg.workers = static_cast<int>(n);
    } else if (key == "scheduler.io_threads") {
      if (!to_int(value, 0, 256, n))
        return bad();
      cfg.io_threads = static_cast<int>(n);
    } else if (key == "scheduler.inline_io") {
      if (!to_bool(value, cfg.inline_io))
        return bad();
    } else if (key == "log.console.level" || key == "log.level") {
      if (!valid_level(value))
        return bad();
      cfg.log_level = value;
    } else if (key == "log.file") {
      cfg.log_file = value;
    } else if (key == "default_user") {
      cfg.default_user = value;
    } else if (key == "default_pass") {
      cfg.default_pass = value;
    } else if (key == "vm_memory_high_watermark.relative" || key == "vm_memory_high_watermark") {
      char* end = nullptr;
      double f = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !(f > 0) || f > 1000)
        return bad();
      cfg.memory_relative = f;
      cfg.memory_absolute = 0;
    } else if (key == "vm_memory_high_watermark.absolute") {
      auto n = parse_byte_size(value);
      if (!n || *n == 0)
        return bad();
      cfg.memory_absolute = *n;
    } else if (key == "disk_free_limit.absolute" || key == "disk_free_limit") {
      auto n = parse_byte_size(value);
      if (!n)
        return bad();
      cfg.disk_free_absolute = *n;
    } else if (key == "loopback_users") {
      // "none" (RabbitMQ's `loopback_users = none`) or names separated by commas.
      cfg.loopback_users.clear();
      if (value != "none") {
        size_t pos = 0;
        while (pos <= value.size()) {
          auto comma = value.find(',', pos);
          auto name = trim(value.substr(pos, comma == std::string::npos ? comma : comma - pos));
          if (!name.empty())
            cfg.loopback_users.push_back(name);
          if (comma == std::string::npos)
            break;
          pos = comma + 1;
        }
      }
    } else if (key.rfind("loopback_users.", 0) == 0) {
      // RabbitMQ's `loopback_users.guest = false`.
      bool on = false;
      auto name = key.substr(std::string_view{"loopback_users."}.size());
      if (name.empty() || !to_bool(value, on))
        return bad();
      auto& users = cfg.loopback_users;
      users.erase(std::remove(users.begin(), users.end(), name), users.end());
      if (on)
        users.push_back(name);
    } else if (key == "load_definitions" || key == "management.load_definitions") {
      cfg.load_definitions = value;
    } else if (key == "heartbeat") {
      if (!to_int(value, 0, 65535, n))
        return bad();
      cfg.heartbeat = static_cast<uint16_t>(n);
    } else if (key == "consumer_timeout") {
      // RabbitMQ takes a positive number of milliseconds here (and turns the timeout off only
      // in advanced.config); `false` turns it off.
      bool on = true;
      if (to_bool(value, on) && !on)
        cfg.consumer_timeout_ms = 0;
      else if (to_int(value, 1, 0x7fffffff, n))
        cfg.consumer_timeout_ms = static_cast<uint32_t>(n);
      else
        return bad();
    } else if (key == "frame_max") {
      if (!to_int(value, 4096, 1 << 30, n))
        return bad();
      cfg.frame_max = static_cast<uint32_t>(n);
    } else if (key == "persistence.on_corruption") {
      if (value != "refuse" && value != "quarantine")
        return bad();
      cfg.on_corruption = value;
    } else if (key == "persistence.queue_memory_mb") {
      if (!to_int(value, 0, 1 << 20, n))
        return bad();
      cfg.queue_memory_mb = static_cast<int>(n);
    } else if (key == "memory.trim_interval_ms") {
      if (!to_int(value, 0, 3600000, n))
        return bad();
      cfg.memory_trim_interval_ms = static_cast<int>(n);
    } else if (key == "collect_statistics_interval") {
      if (!to_int(value, 100, 3600000, n))
        return bad();
      cfg.stats_interval_ms = static_cast<int>(n);
    } else if (key == "prometheus.return_per_object_metrics") {
      if (!to_bool(value, cfg.per_object_metrics))
        return bad();
    } else if (key == "persistence.commit_interval_ms") {
      if (!to_int(value, 0, 1000, n))
        return bad();
      cfg.commit_interval_ms = static_cast<int>(n);
    } else if (key == "supervision.max_restarts") {
      if (!to_int(value, 0, 1000000, n))
        return bad();
      cfg.max_restarts = static_cast<int>(n);
    } else if (key == "supervision.period_ms") {
      if (!to_int(value, 1, 86400000, n))
        return bad();
      cfg.restart_period_ms = static_cast<int>(n);
    } else if (key == "debug.fault_injection") {
      if (!to_bool(value, cfg.fault_injection))
        return bad();
    } else if (key == "cluster.port") {
      if (!to_int(value, 0, 65535, n))
        return bad();
      cfg.cluster_port = static_cast<int>(n);
    } else if (key == "cluster.name") {
      cfg.cluster_name = value;
    } else if (key == "cluster.join") {
      cfg.cluster_join = value;
    } else if (key == "cluster.cookie") {
      cfg.cluster_cookie = value;
    } else if (key == "cluster.keep_deletions") {
      if (!to_int(value, 1, 30 * 86400, n))
        return bad();
      cfg.cluster_keep_deletions_s = static_cast<int>(n);
    } else if (key.rfind("cluster.ssl_options.", 0) == 0) {
      // CAF's TLS for the middleman takes a certificate, its key and the CAs; nothing else.
      auto rest = key.substr(std::string_view{"cluster.ssl_options."}.size());
      bool known = rest == "certfile" || rest == "keyfile" || rest == "cacertfile" ||
                   rest == "password";
      if (!known || !apply_tls_key(rest, value, cfg.cluster_tls, known))
        return known ? bad() : "line " + std::to_string(lineno) + ": unknown key '" + key + "'";
    } else if (key == "channel_max") {
      if (!to_int(value, 1, 65535, n))
        return bad();
      cfg.channel_max = static_cast<uint16_t>(n);
    } else {
      return "line " + std::to_string(lineno) + ": unknown key '" + key + "'";
    }
  }
  return {};
}

std::optional<daemon_config> parse_command_line(int argc, char** argv, int& exit_code) {
  daemon_config cfg;
  std::vector<std::pair<std::string, std::string>> flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << usage_text();
      exit_code = 0;
      return std::nullopt;
    }
    std::string value;
    auto eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (a == "--fault-injection") {  // a switch: alone it means true
      value = "true";
      std::string next = i + 1 < argc ? argv[i + 1] : "";
      if (next == "true" || next == "false")
        value = argv[++i];
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      std::cerr << "warrend: missing value for " << a << "\n";
      exit_code = 2;
      return std::nullopt;
    }
    flags.emplace_back(a, value);
  }
  // The config file first, so that flags override it.
  for (auto& [k, v] : flags) {
    if (k != "--config")
      continue;
    std::ifstream f{v};
    if (!f) {
      std::cerr << "warrend: cannot read config file " << v << "\n";
      exit_code = 2;
      return std::nullopt;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    if (auto err = apply_config_text(ss.str(), cfg); !err.empty()) {
      std::cerr << "warrend: " << v << ": " << err << "\n";
      exit_code = 2;
      return std::nullopt;
    }
    cfg.config_file = v;
  }
  for (auto& [k, v] : flags) {
    long n;
    auto port = [&](int& out) {
      if (!to_int(v, 0, 65535, n))
        return false;
      out = static_cast<int>(n);
      return true;
    };
    bool ok = true;
    if (k == "--config")
      continue;
    else if (k == "--amqp-port")
      ok = port(cfg.amqp_port);
    else if (k == "--stomp-port")
      ok = port(cfg.stomp_port);
    else if (k == "--http-port")
      ok = port(cfg.http_port);
    else if (k == "--amqps-port")
      ok = port(cfg.amqps_port);
    else if (k == "--stomps-port")
      ok = port(cfg.stomps_port);
    else if (k == "--https-port")
      ok = port(cfg.https_port);
    else if (k == "--bind")
      cfg.bind_address = v;
    else if (k == "--data-dir")
      cfg.data_dir = v;
    else if (k == "--workers") {
      ok = to_int(v, 1, 1024, n);
      cfg.workers = static_cast<int>(n);
    } else if (k == "--io-threads") {
      ok = to_int(v, 1, 256, n);
      cfg.io_threads = static_cast<int>(n);
    } else if (k == "--inline-io") {
      ok = to_bool(v, cfg.inline_io);
    } else if (k == "--log-level") {
      ok = valid_level(v);
      cfg.log_level = v;
    } else if (k == "--log-file")
      cfg.log_file = v;
    else if (k == "--on-corruption") {
      ok = v == "refuse" || v == "quarantine";
      cfg.on_corruption = v;
    } else if (k == "--max-restarts") {
      ok = to_int(v, 0, 1000000, n);
      cfg.max_restarts = static_cast<int>(n);
    } else if (k == "--restart-period-ms") {
      ok = to_int(v, 1, 86400000, n);
      cfg.restart_period_ms = static_cast<int>(n);
    } else if (k == "--fault-injection") {
      ok = to_bool(v, cfg.fault_injection);
    } else if (k == "--cluster-port") {
      ok = port(cfg.cluster_port);
    } else if (k == "--cluster-name") {
      ok = !v.empty();
      cfg.cluster_name = v;
    } else if (k == "--cluster-join") {
      cfg.cluster_join = v;
    } else if (k == "--cluster-cookie") {
      cfg.cluster_cookie = v;
    } else {
      std::cerr << "warrend: unknown option " << k << "\n" << usage_text();
      exit_code = 2;
      return std::nullopt;
    }
    if (!ok) {
      std::cerr << "warrend: invalid value '" << v << "' for " << k << "\n";
      exit_code = 2;
      return std::nullopt;
    }
  }
  return cfg;
}

}  // namespace warren
