// What the console producer and consumer share (Kafka's kafka-console-producer and
// kafka-console-consumer, for an AMQP 0-9-1 broker): the broker address and login options
// (warren-perf's -h URI, --tls, --tls-ca), the connection (warren-perf's client, bench/), and
// the exit statuses.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "bench/perf_connection.hpp"
#include "bench/perf_options.hpp"

namespace warren::console {

inline constexpr int exit_ok = 0;
inline constexpr int exit_error = 1;  // usage, connection or login failure
inline constexpr int exit_refused = 3;  // the broker refused, returned or nacked messages

// Applies a broker option (-h/--uri, --tls, --tls-ca) at argv[i]; true when it was one, with
// `i` moved past its value. `error` is set when it was one but its value is missing or bad.
inline bool broker_option(int argc, char** argv, int& i, perf::options& o, std::string& error) {
  std::string_view arg = argv[i];
  auto value = [&]() -> const char* {
    if (i + 1 >= argc) {
      error = "missing value for " + std::string(arg);
      return nullptr;
    }
    return argv[++i];
  };
  if (arg == "-h" || arg == "--uri") {
    if (auto v = value(); v && !perf::parse_uri(v, o, error) && error.empty())
      error = "bad URI";
    return true;
  }
  if (arg == "--tls") {
    o.tls = true;
    return true;
  }
  if (arg == "--tls-ca") {
    if (auto v = value())
      o.tls_ca = v;
    return true;
  }
  return false;
}

// Default port, TLS context; then connects with channel 1 open. Reports failures on stderr.
inline bool connect(perf::connection& c, perf::options& o, const char* tool) {
  if (o.port.empty())
    o.port = o.tls ? "5671" : "5672";
  std::string err;
  if (o.tls && !perf::init_tls(o.tls_ca, err)) {
    std::fprintf(stderr, "%s: %s\n", tool, err.c_str());
    return false;
  }
  if (!c.open(o)) {
    std::fprintf(stderr, "%s: %s\n", tool, c.error().c_str());
    return false;
  }
  return true;
}

inline bool to_count(const char* s, long long& out) {
  char* end = nullptr;
  out = std::strtoll(s, &end, 10);
  return end != s && *end == '\0' && out >= 0;
}

}  // namespace warren::console
