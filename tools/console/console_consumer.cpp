// warren-console-consumer: writes the messages of a queue to standard output, one per line,
// as Kafka's kafka-console-consumer does for a topic; with --exchange it reads what is
// published to an exchange from now on, through a queue of its own bound there. A message is
// acknowledged once it is written, so stopping early (--max-messages, --timeout-ms, Ctrl-C)
// leaves the rest in the queue.
#include <csignal>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "protocol/amqp091/properties.hpp"
#include "tools/console/console_common.hpp"

namespace {

using namespace warren;
constexpr const char* tool = "warren-console-consumer";

const char* usage_text = R"(Usage: warren-console-consumer [options] (--queue NAME | --exchange NAME)

Writes each message's body to standard output, followed by a line end.

  -h, --uri URI          HOST:PORT, amqp://USER:PASS@HOST:PORT/VHOST or amqps://... (default
                         127.0.0.1:5672, guest/guest, vhost /)
      --tls              connect over TLS (default port 5671)
      --tls-ca FILE      verify the broker's certificate against these CAs
  -q, --queue NAME       consume from this queue
  -e, --exchange NAME    read what is published to this exchange from now on (an exclusive
                         queue of the consumer's own, bound with --routing-key)
  -k, --routing-key KEY  binding key with --exchange (default "#": everything on a topic
                         exchange; any key on a fanout exchange)
      --max-messages N   stop after N messages
      --timeout-ms MS    stop when no message came for MS milliseconds
      --prefetch N       unacknowledged messages the broker may send ahead (default 100)
      --from-beginning   a stream queue: read it from its first message (the consumer
                         argument x-stream-offset = first; without it a stream is read from
                         the next message published)
      --offset SPEC      a stream queue: where to start reading: first, last, next, an
                         offset (a number) or an age such as 10m, 1h, 7D
      --super-stream NAME  read every partition of a partitioned stream (warrenctl
                         add_super_stream): the streams NAME-0, NAME-1, ... as far as they go
      --print-key        write the routing key and a tab before each body
      --help             show this text

Stops on SIGINT or SIGTERM too. On standard error: `Processed a total of N messages`. Exit
status: 0, 1 usage or connection error, 3 the broker refused (no such queue, access) or
cancelled the consumer.
)";

volatile std::sig_atomic_t stop_requested = 0;

void on_signal(int) { stop_requested = 1; }

// The message being assembled from its deliver, header and body frames.
struct incoming {
  uint64_t tag = 0;
  std::string key, body;
  uint64_t left = 0;
  bool want_header = false, in_body = false;
};

}  // namespace

int main(int argc, char** argv) {
  perf::options o;
  console::target from;
  from.key = "#";
  bool print_key = false;
  long long max_messages = -1, timeout_ms = -1, prefetch = 100;
  std::optional<std::string> offset;  // x-stream-offset
  std::string super_stream;
  auto option = [&](std::string_view arg, auto& value, std::string& error) {
    auto count = [&](long long& out) {
      if (auto v = value(); v && !console::to_count(v, out))
        error = "bad number for " + std::string(arg);
    };
    if (from.option(arg, value))
      return true;
    if (arg == "--max-messages")
      count(max_messages);
    else if (arg == "--timeout-ms")
      count(timeout_ms);
    else if (arg == "--prefetch")
      count(prefetch);
    else if (arg == "--super-stream") {
      if (auto v = value())
        super_stream = v;
    } else if (arg == "--from-beginning")
      offset = "first";
    else if (arg == "--offset") {
      if (auto v = value())
        offset = v;
    } else if (arg == "--print-key")
      print_key = true;
    else
      return false;
    return true;
  };
  if (int rc = console::parse_command_line(argc, argv, tool, usage_text, o, option); rc >= 0)
    return rc;
  if (super_stream.empty() ? !from.valid() : !from.queue.empty() || from.exchange_given)
    return console::usage_error(tool, "give one of --queue, --exchange and --super-stream");
  auto& queue = from.queue;
  if (prefetch < 1 || prefetch > 65535)
    return console::usage_error(tool, "--prefetch must be 1 to 65535");
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  perf::connection c(tool, tool);
  if (!console::connect(c, o, tool))
    return console::exit_error;
  auto refused = [&](perf::call_result r) {
    std::fprintf(stderr, "%s: %s\n", tool, c.error().c_str());
    return r == perf::call_result::channel_closed || c.closed_by_broker() ? console::exit_refused
                                                                          : console::exit_error;
  };
  if (from.exchange_given) {
    amqp::queue_declare d;
    d.exclusive = true;
    d.auto_delete = true;
    amqp::queue_declare_ok ok;
    if (auto r = c.call(1, d, &ok); r != perf::call_result::ok)
      return refused(r);
    queue = ok.queue;
    amqp::queue_bind b;
    b.queue = queue;
    b.exchange = from.exchange;
    b.routing_key = from.key;
    if (auto r = c.call<amqp::queue_bind_ok>(1, b); r != perf::call_result::ok)
      return refused(r);
  }
  amqp::basic_qos qos;
  qos.prefetch_count = static_cast<uint16_t>(prefetch);
  if (auto r = c.call<amqp::basic_qos_ok>(1, qos); r != perf::call_result::ok)
    return refused(r);
  // The queues to read: one, or the partitions of a super stream, found by declaring
  // NAME-0, NAME-1, ... passively (on a channel of their own) until one is missing.
  std::vector<std::string> queues{queue};
  if (!super_stream.empty()) {
    queues.clear();
    if (auto r = c.open_channel(2); r != perf::call_result::ok)
      return refused(r);
    for (;;) {
      amqp::queue_declare d;
      d.queue = super_stream + "-" + std::to_string(queues.size());
      d.passive = true;
      if (c.call<amqp::queue_declare_ok>(2, d) != perf::call_result::ok)
        break;
      queues.push_back(d.queue);
    }
    if (queues.empty()) {
      std::fprintf(stderr, "%s: no super stream '%s' (no stream %s-0)\n", tool,
                   super_stream.c_str(), super_stream.c_str());
      return console::exit_refused;
    }
  }
  // Several consumers: without waiting for each consume-ok, as deliveries for the first one
  // would arrive (and be skipped) while waiting for the next one's.
  bool many = queues.size() > 1;
  for (auto& name : queues) {
    amqp::basic_consume consume;
    consume.queue = name;
    consume.no_wait = many;
    if (offset)
      consume.arguments.emplace_back("x-stream-offset", perf::stream_offset_argument(*offset));
    if (many)
      amqp::encode_method(c.out(), 1, consume);
    else if (auto r = c.call<amqp::basic_consume_ok>(1, consume); r != perf::call_result::ok)
      return refused(r);
  }

  long long received = 0;
  int status = console::exit_ok;
  incoming msg;
  auto last_message = perf::clock::now();
  uint64_t ack_up_to = 0;  // the last tag written and not acknowledged yet
  auto done = [&] { return stop_requested || (max_messages >= 0 && received >= max_messages); };
  while (!done()) {
    // One socket read's worth of frames, then the bodies out and one acknowledgement.
    if (c.read_available() < 0) {
      status = c.closed_by_broker() ? console::exit_refused : console::exit_error;
      break;
    }
    amqp::frame_view f;
    bool stop = false;
    while (!stop && !done() && c.next_frame(f)) {
      if (f.type == amqp::frame_type::method) {
        amqp::method m;
        auto ctl = c.handle_control(f, m);
        if (ctl == perf::control::fatal) {
          stop = true;
        } else if (auto* d = std::get_if<amqp::basic_deliver>(&m)) {
          msg = incoming{d->delivery_tag, d->routing_key, {}, 0, true, false};
        } else if (std::holds_alternative<amqp::basic_cancel>(m)) {
          std::fprintf(stderr, "%s: the broker cancelled the consumer (queue deleted?)\n",
                       tool);
          status = console::exit_refused;
          stop = true;
        }
        continue;
      }
      if (f.type == amqp::frame_type::header && msg.want_header) {
        amqp::content_header h;
        if (!amqp::decode_content_header(f.payload, h))
          continue;
        msg.want_header = false;
        msg.left = h.body_size;
        msg.in_body = msg.left > 0;
      } else if (f.type == amqp::frame_type::body && msg.in_body) {
        msg.body.append(f.payload.data(), f.payload.size());
        msg.left -= std::min<uint64_t>(msg.left, f.payload.size());
        msg.in_body = msg.left > 0;
      } else {
        continue;
      }
      if (msg.want_header || msg.in_body)
        continue;
      if (print_key)
        std::fwrite(msg.key.data(), 1, msg.key.size(), stdout), std::fputc('\t', stdout);
      std::fwrite(msg.body.data(), 1, msg.body.size(), stdout);
      std::fputc('\n', stdout);
      ack_up_to = msg.tag;
      ++received;
      last_message = perf::clock::now();
    }
    if (ack_up_to != 0) {  // written first, then acknowledged
      std::fflush(stdout);
      amqp::basic_ack ack;
      ack.delivery_tag = ack_up_to;
      ack.multiple = true;
      amqp::encode_method(c.out(), 1, ack);
      ack_up_to = 0;
    }
    if (!c.flush() || stop || c.failed()) {
      if (status == console::exit_ok && c.failed())
        status = c.closed_by_broker() ? console::exit_refused : console::exit_error;
      if (c.failed())
        std::fprintf(stderr, "%s: %s\n", tool, c.error().c_str());
      break;
    }
    if (timeout_ms >= 0 &&
        perf::clock::now() - last_message >= std::chrono::milliseconds(timeout_ms))
      break;
    if (!done())
      c.wait(c.has_pending_output(), 200);
  }
  std::fflush(stdout);
  std::fprintf(stderr, "Processed a total of %lld messages\n", received);
  c.close();
  return status;
}
