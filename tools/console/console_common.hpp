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

// Where the messages go to or come from: a queue, or an exchange with a routing key.
struct target {
  std::string queue, exchange, key;
  bool exchange_given = false;

  // -q/--queue, -e/--exchange, -k/--routing-key; false for any other option.
  template <class Value>
  bool option(std::string_view arg, Value& value) {
    auto take = [&](std::string& out) {
      if (auto v = value())
        out = v;
    };
    if (arg == "-q" || arg == "--queue")
      take(queue);
    else if (arg == "-e" || arg == "--exchange")
      take(exchange), exchange_given = true;
    else if (arg == "-k" || arg == "--routing-key")
      take(key);
    else
      return false;
    return true;
  }
  bool valid() const { return queue.empty() == exchange_given; }
};

inline int usage_error(const char* tool, const std::string& why) {
  std::fprintf(stderr, "%s: %s (see --help)\n", tool, why.c_str());
  return exit_error;
}

// Reads the command line: --help (prints `usage`), the broker options (-h/--uri, --tls,
// --tls-ca), and every other option through `option(arg, value, error)`, which returns false
// for an option it does not know; `value()` takes the option's value (nullptr, with `error`
// set, when it is missing). Returns an exit status when the tool should stop, else -1.
template <class F>
int parse_command_line(int argc, char** argv, const char* tool, const char* usage,
                       perf::options& o, F&& option) {
  std::string error;
  for (int i = 1; i < argc && error.empty(); ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        error = "missing value for " + std::string(arg);
        return nullptr;
      }
      return argv[++i];
    };
    if (arg == "--help") {
      std::fputs(usage, stdout);
      return exit_ok;
    }
    if (arg == "-h" || arg == "--uri") {
      if (auto v = value(); v && !perf::parse_uri(v, o, error) && error.empty())
        error = "bad URI";
    } else if (arg == "--tls") {
      o.tls = true;
    } else if (arg == "--tls-ca") {
      if (auto v = value())
        o.tls_ca = v;
    } else if (!option(arg, value, error)) {
      error = "unknown option " + std::string(arg);
    }
  }
  return error.empty() ? -1 : usage_error(tool, error);
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
