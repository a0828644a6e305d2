// Command-line parsing for warren-perf: PerfTest-style short letters plus long names,
// `--name value` and `--name=value`, with range checks and the usage text.
#include "bench/perf_options.hpp"
#include "bench/perf_socket.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace warren::perf {

namespace {

const char* usage_text = R"(Usage: warren-perf [options]

AMQP 0-9-1 (or STOMP 1.2) load generator: producers publish timestamped messages, consumers
measure the end-to-end latency. Works against any AMQP 0-9-1 or STOMP 1.2 broker.

  -h, --uri URI             HOST:PORT or amqp://USER:PASS@HOST:PORT/VHOST, amqps://... for TLS
                            (default 127.0.0.1:5672, or 127.0.0.1:61613 with --stomp; 5671 and
                            61614 with TLS)
      --tls                 connect over TLS (AMQPS, or STOMP over TLS with --stomp)
      --tls-ca FILE         verify the broker's certificate against these CAs (default: no
                            verification, as PerfTest does for amqps://)
  -x, --producers N         producer connections (default 1)
  -y, --consumers N         consumer connections (default 1)
  -s, --size BYTES          message body size, at least 12 (default 12)
  -u, --queue NAME          queue name, or name prefix with --queues (default warren-perf)
  -e, --exchange NAME       exchange to publish to (default: the default exchange)
  -t, --type TYPE           exchange type to declare (default direct)
  -k, --routing-key KEY     routing key, also the binding key (default: the queue name)
      --binding-keys K1,K2  bind queue i with K[i % n] instead of the routing key (e.g. topic
                            patterns that match the routing key)
      --extra-bindings N    also bind N keys that never match (xb<i>.*.c, #.xb<i>, xb<i>.#,
                            *.xb<i>.*, a.xb<i>.c, *.*.xb<i>), spread over the queues
      --queues N            N queues; consumer i uses queue i % N. Bound to the exchange with -e;
                            on the default exchange producer i publishes to queue i % N
                            (default with fanout/topic: one queue per consumer)
      --no-declare          use existing exchange/queues; declare, purge or delete nothing
      --keep-queues         do not delete the queues after the run
      --queue-type T        declare the queues with x-queue-type T (stream and quorum:
                            durable; stream consumers need -q and --manual-ack)
      --stream-offset S     consumer argument x-stream-offset (first, last, next, a number)
  -f, --flag FLAG           persistent (delivery mode 2, durable queue) or mandatory; repeatable
  -c, --confirm N           publisher confirms, at most N unconfirmed messages per producer
  -q, --qos N               consumer prefetch count
  -a, --autoack             consumers use no-ack (the default)
      --manual-ack          consumers acknowledge explicitly
      --multi-ack-every N   manual ack with multiple=true every N messages (implies --manual-ack)
  -r, --rate R              messages per second per producer (default: as fast as possible)
  -z, --time SECONDS        run duration (default: until -C is reached)
  -C, --pmessages N         messages per producer, then stop; with -x 0: stop once the consumers
                            received N in all, or nothing for 2 s (a queue drained)
      --batch N             publishes written per syscall when not rate-limited (default 64)
      --idle-connections N  also open N idle connections and hold them during the run
      --frame-max BYTES     largest frame size proposed to the broker (default 131072)
      --stomp               speak STOMP 1.2 (-h names the STOMP port): producers SEND to the
                            destination, consumers SUBSCRIBE (ack auto, or client-individual
                            with --manual-ack, client with --multi-ack-every; -q sets
                            prefetch-count); -c asks a RECEIPT per SEND, at most N outstanding
      --destination D       STOMP destination (default /queue/<queue>, /queue/<queue>-<i> with
                            --queues)
      --amqp-uri URI        with --stomp: the broker's AMQP address, used to delete the queues
                            before and after the run and to declare them (durable) before it
      --progress            print a progress line to stderr every second
      --json                print the result as one JSON object on stdout (summary to stderr)
      --help                show this text

The last stdout line is `summary: sent=.. received=.. confirmed=.. p50_us=.. p95_us=..
p99_us=.. max_us=.. duration_s=.. client_cpu_s=.. ...` (rates in msg/s over the measured
run, then totals). Exit status: 0 ok, 1 usage or connection error, 3 the broker closed a
connection or channel (STOMP: sent an ERROR frame).
)";

template <class T>
bool to_number(std::string_view s, T& out) {
  if constexpr (std::is_floating_point_v<T>) {
    char* end = nullptr;
    std::string tmp(s);
    out = static_cast<T>(std::strtod(tmp.c_str(), &end));
    return !tmp.empty() && end == tmp.c_str() + tmp.size() && out >= 0;
  } else {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size();
  }
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc{} && p == s.data() + i + 3) {
        out.push_back(static_cast<char>(v));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

bool split_host_port(std::string_view hp, options& out, std::string& error) {
  if (hp.empty()) return true;
  if (hp.front() == '[') {  // [v6]:port
    const auto close = hp.find(']');
    if (close == std::string_view::npos) return error = "bad address: " + std::string(hp), false;
    out.host = std::string(hp.substr(1, close - 1));
    hp.remove_prefix(close + 1);
    if (!hp.empty() && hp.front() == ':') out.port = std::string(hp.substr(1));
    return true;
  }
  const auto colon = hp.rfind(':');
  if (colon == std::string_view::npos) {
    out.host = std::string(hp);
  } else {
    if (colon > 0) out.host = std::string(hp.substr(0, colon));
    out.port = std::string(hp.substr(colon + 1));
  }
  uint16_t port = 0;
  if (!out.port.empty() && (!to_number(std::string_view(out.port), port) || port == 0))
    return error = "bad port: " + out.port, false;
  return true;
}

}  // namespace

bool parse_uri(const std::string& uri, options& out, std::string& error) {
  std::string_view s(uri);
  const size_t scheme = s.substr(0, 7) == "amqp://"    ? 7
                        : s.substr(0, 8) == "amqps://" ? 8
                        : s.substr(0, 8) == "stomp://" ? 8
                                                       : 0;
  if (scheme == 0) return split_host_port(s, out, error);
  if (s.substr(0, 8) == "amqps://") out.tls = true;
  s.remove_prefix(scheme);
  const auto slash = s.find('/');
  std::string_view authority = s.substr(0, slash);
  if (slash != std::string_view::npos) {
    const auto path = s.substr(slash + 1);
    out.vhost = path.empty() ? "/" : percent_decode(path);
  }
  const auto at = authority.rfind('@');
  if (at != std::string_view::npos) {
    const auto userinfo = authority.substr(0, at);
    const auto colon = userinfo.find(':');
    out.user = percent_decode(userinfo.substr(0, colon));
    out.pass = colon == std::string_view::npos ? "" : percent_decode(userinfo.substr(colon + 1));
    authority.remove_prefix(at + 1);
  }
  return split_host_port(authority, out, error);
}

int parse_options(int argc, char** argv, options& o) {
  bool qos_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline = false;
    if (arg.rfind("--", 0) == 0) {
      const auto eq = arg.find('=');
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg.resize(eq);
        has_inline = true;
      }
    }
    auto need = [&](std::string& v) {
      if (has_inline) return v = value, true;
      if (i + 1 >= argc) return false;
      v = argv[++i];
      return true;
    };
    auto bad = [&](const std::string& what) {
      std::fprintf(stderr, "warren-perf: %s for %s (see --help)\n", what.c_str(), arg.c_str());
      return 1;
    };
    auto number = [&](auto& target) {
      std::string v;
      if (!need(v)) return false;
      return to_number(std::string_view(v), target);
    };

    if (arg == "--help") {
      std::fputs(usage_text, stdout);
      return 2;
    } else if (arg == "-h" || arg == "--uri") {
      std::string v, err;
      if (!need(v)) return bad("missing value");
      if (!parse_uri(v, o, err)) return bad(err);
    } else if (arg == "-x" || arg == "--producers") {
      if (!number(o.producers) || o.producers < 0) return bad("bad count");
    } else if (arg == "-y" || arg == "--consumers") {
      if (!number(o.consumers) || o.consumers < 0) return bad("bad count");
    } else if (arg == "-s" || arg == "--size") {
      if (!number(o.body_size) || o.body_size < 12) return bad("size must be at least 12");
    } else if (arg == "-u" || arg == "--queue") {
      if (!need(o.queue) || o.queue.empty()) return bad("missing queue name");
    } else if (arg == "-e" || arg == "--exchange") {
      if (!need(o.exchange)) return bad("missing value");
    } else if (arg == "-t" || arg == "--type") {
      if (!need(o.exchange_type)) return bad("missing value");
    } else if (arg == "-k" || arg == "--routing-key") {
      if (!need(o.routing_key)) return bad("missing value");
    } else if (arg == "--binding-keys") {
      std::string v;
      if (!need(v) || v.empty()) return bad("missing value");
      o.binding_keys.clear();
      for (size_t at = 0;;) {
        const size_t comma = v.find(',', at);
        o.binding_keys.push_back(v.substr(at, comma == std::string::npos ? comma : comma - at));
        if (comma == std::string::npos) break;
        at = comma + 1;
      }
    } else if (arg == "--extra-bindings") {
      if (!number(o.extra_bindings) || o.extra_bindings < 0) return bad("bad count");
    } else if (arg == "--stomp") {
      o.stomp = true;
    } else if (arg == "--tls") {
      o.tls = true;
    } else if (arg == "--tls-ca") {
      if (!need(o.tls_ca) || o.tls_ca.empty()) return bad("missing file");
    } else if (arg == "--destination") {
      if (!need(o.destination) || o.destination.empty()) return bad("missing destination");
    } else if (arg == "--amqp-uri") {
      std::string err;
      options probe;
      if (!need(o.amqp_uri)) return bad("missing value");
      if (!parse_uri(o.amqp_uri, probe, err)) return bad(err);
    } else if (arg == "--queues") {
      if (!number(o.queues) || o.queues < 1) return bad("bad count");
    } else if (arg == "--no-declare") {
      o.declare = false;
    } else if (arg == "--keep-queues") {
      o.keep_queues = true;
    } else if (arg == "--queue-type") {
      if (!need(o.queue_type) || o.queue_type.empty()) return bad("missing type");
    } else if (arg == "--stream-offset") {
      if (!need(o.stream_offset) || o.stream_offset.empty()) return bad("missing offset");
    } else if (arg == "-f" || arg == "--flag") {
      std::string v;
      if (!need(v)) return bad("missing value");
      if (v == "persistent") o.persistent = true;
      else if (v == "mandatory") o.mandatory = true;
      else return bad("unknown flag '" + v + "'");
    } else if (arg == "-c" || arg == "--confirm") {
      if (!number(o.confirm_window) || o.confirm_window > (1u << 20)) return bad("bad window");
    } else if (arg == "-q" || arg == "--qos") {
      if (!number(o.prefetch)) return bad("bad prefetch");
      qos_given = true;
    } else if (arg == "-a" || arg == "--autoack") {
      o.auto_ack = true;
    } else if (arg == "--manual-ack") {
      o.auto_ack = false;
    } else if (arg == "--multi-ack-every") {
      if (!number(o.multi_ack_every)) return bad("bad count");
      if (o.multi_ack_every == 0) o.multi_ack_every = 1;
      o.auto_ack = false;
    } else if (arg == "-r" || arg == "--rate") {
      if (!number(o.rate)) return bad("bad rate");
    } else if (arg == "-z" || arg == "--time") {
      if (!number(o.duration_s)) return bad("bad duration");
    } else if (arg == "-C" || arg == "--pmessages") {
      if (!number(o.count)) return bad("bad count");
    } else if (arg == "--batch") {
      if (!number(o.batch) || o.batch < 1) return bad("bad batch size");
    } else if (arg == "--idle-connections") {
      if (!number(o.idle_connections) || o.idle_connections < 0) return bad("bad count");
    } else if (arg == "--frame-max") {
      if (!number(o.frame_max) || o.frame_max < 4096) return bad("frame-max must be >= 4096");
    } else if (arg == "--progress") {
      o.progress = true;
    } else if (arg == "--json") {
      o.json = true;
    } else {
      std::fprintf(stderr, "warren-perf: unknown option %s (see --help)\n", arg.c_str());
      return 1;
    }
  }
  if (!o.auto_ack && qos_given && o.prefetch != 0 && o.multi_ack_every > o.prefetch) {
    std::fprintf(stderr, "warren-perf: --multi-ack-every %u exceeds the prefetch %u; using %u\n",
                 o.multi_ack_every, o.prefetch, o.prefetch);
    o.multi_ack_every = o.prefetch;
  }
  if (o.port.empty()) o.port = o.stomp ? (o.tls ? "61614" : "61613") : (o.tls ? "5671" : "5672");
  if (o.stomp && !o.exchange.empty()) {
    std::fprintf(stderr, "warren-perf: -e is AMQP only; with --stomp use --destination "
                         "/exchange/NAME/KEY\n");
    return 1;
  }
  if (!o.stomp && (!o.destination.empty() || !o.amqp_uri.empty())) {
    std::fprintf(stderr, "warren-perf: --destination and --amqp-uri need --stomp\n");
    return 1;
  }
  if (o.routing_key.empty() && o.exchange.empty()) o.routing_key = o.queue;
  if (o.extra_bindings && (o.exchange.empty() || o.exchange_type == "fanout")) {
    std::fprintf(stderr, "warren-perf: --extra-bindings needs a direct or topic exchange (-e, -t)\n");
    return 1;
  }
  if (o.duration_s == 0 && o.count == 0 && o.producers > 0)
    std::fprintf(stderr, "warren-perf: no -z or -C given; running until interrupted\n");
  if (o.tls) {
    std::string err;
    if (!init_tls(o.tls_ca, err)) {
      std::fprintf(stderr, "warren-perf: %s\n", err.c_str());
      return 1;
    }
  }
  return 0;
}

amqp::field_value stream_offset_argument(const std::string& spec) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(spec.data(), spec.data() + spec.size(), n);
  if (!spec.empty() && ec == std::errc{} && end == spec.data() + spec.size())
    return amqp::field_value{n};
  return amqp::field_value{spec};
}

}  // namespace warren::perf
