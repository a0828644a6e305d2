// warren-console-producer: each line of a file (or standard input) becomes one message,
// published to a queue or an exchange, as Kafka's kafka-console-producer does for a topic.
// Publisher confirms and the mandatory flag make the exit status say whether every line was
// taken: 0 all confirmed, 3 some returned (unroutable) or nacked, 1 no connection.
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <string>

#include "protocol/amqp091/properties.hpp"
#include "tools/console/console_common.hpp"

namespace {

using namespace warren;
constexpr const char* tool = "warren-console-producer";
constexpr size_t window = 1000;  // unconfirmed messages before the producer waits
constexpr size_t write_batch = 256 << 10;

const char* usage_text = R"(Usage: warren-console-producer [options] (--queue NAME | --exchange NAME)

Publishes each line of the input (without its line end) as one message and waits until the
broker confirmed them all.

  -h, --uri URI          HOST:PORT, amqp://USER:PASS@HOST:PORT/VHOST or amqps://... (default
                         127.0.0.1:5672, guest/guest, vhost /)
      --tls              connect over TLS (default port 5671)
      --tls-ca FILE      verify the broker's certificate against these CAs
  -q, --queue NAME       publish to this queue (the default exchange, routing key NAME)
  -e, --exchange NAME    publish to this exchange
  -k, --routing-key KEY  routing key with --exchange (default "")
      --key-separator SEP  each line is KEY SEP BODY: KEY is the routing key of that line's
                         message (with --exchange; Kafka's parse.key / key.separator), so
                         that a super stream puts the lines of one key in one partition
      --declare          declare the queue first (durable), as Kafka creates a topic
  -f, --file FILE        read the lines from FILE (default: standard input)
      --persistent       delivery mode 2: the broker keeps the messages on disk
      --content-type T   the content_type property (default text/plain)
      --help             show this text

On standard error: `published=N confirmed=N returned=N nacked=N`. Exit status: 0 every
message confirmed, 1 usage or connection error, 3 the broker returned (no queue for the
routing key), nacked or refused messages.
)";

struct counts {
  uint64_t published = 0, confirmed = 0, returned = 0, nacked = 0;
  std::set<uint64_t> pending;  // delivery tags not confirmed yet
};

// Settles `tag` (and every pending tag below it with `multiple`); returns how many.
uint64_t settle(counts& n, uint64_t tag, bool multiple) {
  uint64_t done = 0;
  if (multiple) {
    auto end = n.pending.upper_bound(tag);
    done = static_cast<uint64_t>(std::distance(n.pending.begin(), end));
    n.pending.erase(n.pending.begin(), end);
  } else {
    done = n.pending.erase(tag);
  }
  return done;
}

// Handles what the broker sent: confirms, returns, control methods. False when it closed
// the connection or the channel.
bool take_input(perf::connection& c, counts& n) {
  if (c.read_available() < 0)
    return false;
  amqp::frame_view f;
  while (c.next_frame(f)) {
    if (f.type != amqp::frame_type::method)
      continue;  // a returned message's header and body
    amqp::method m;
    auto ctl = c.handle_control(f, m);
    if (ctl == perf::control::fatal || c.failed())
      return false;
    if (ctl == perf::control::handled)
      continue;
    if (auto* a = std::get_if<amqp::basic_ack>(&m))
      n.confirmed += settle(n, a->delivery_tag, a->multiple);
    else if (auto* k = std::get_if<amqp::basic_nack>(&m))
      n.nacked += settle(n, k->delivery_tag, k->multiple);
    else if (auto* r = std::get_if<amqp::basic_return>(&m)) {
      ++n.returned;
      std::fprintf(stderr, "%s: message returned: %u %s\n", tool, r->reply_code,
                   r->reply_text.c_str());
    }
  }
  return !c.failed();
}

// Writes what is buffered and takes what came back, waiting (bounded) while more than
// `max_pending` are unconfirmed.
bool drain(perf::connection& c, counts& n, size_t max_pending, int timeout_ms) {
  auto deadline = perf::clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (!c.flush() || !take_input(c, n))
      return false;
    if (!c.has_pending_output() && n.pending.size() <= max_pending)
      return true;
    if (perf::clock::now() >= deadline) {
      std::fprintf(stderr, "%s: the broker confirmed nothing for %d ms\n", tool, timeout_ms);
      return false;
    }
    c.wait(c.has_pending_output(), perf::ms_until(deadline));
  }
}

}  // namespace

int main(int argc, char** argv) {
  perf::options o;
  console::target to;
  std::string file, content_type = "text/plain", key_separator;
  bool declare = false, persistent = false;
  auto option = [&](std::string_view arg, auto& value, std::string&) {
    auto take = [&](std::string& out) {
      if (auto v = value())
        out = v;
    };
    if (to.option(arg, value))
      return true;
    if (arg == "-f" || arg == "--file")
      take(file);
    else if (arg == "--content-type")
      take(content_type);
    else if (arg == "--key-separator")
      take(key_separator);
    else if (arg == "--declare")
      declare = true;
    else if (arg == "--persistent")
      persistent = true;
    else
      return false;
    return true;
  };
  if (int rc = console::parse_command_line(argc, argv, tool, usage_text, o, option); rc >= 0)
    return rc;
  if (!to.valid())
    return console::usage_error(tool, "give either --queue or --exchange");
  auto& queue = to.queue;
  if (declare && queue.empty())
    return console::usage_error(tool, "--declare needs --queue");
  if (!key_separator.empty() && queue.size())
    return console::usage_error(tool, "--key-separator needs --exchange");
  std::ifstream in_file;
  if (!file.empty()) {
    in_file.open(file, std::ios::binary);
    if (!in_file) {
      std::fprintf(stderr, "%s: cannot read %s\n", tool, file.c_str());
      return console::exit_error;
    }
  }
  std::istream& in = file.empty() ? std::cin : in_file;

  perf::connection c(tool, tool);
  if (!console::connect(c, o, tool))
    return console::exit_error;
  if (declare) {
    amqp::queue_declare d;
    d.queue = queue;
    d.durable = true;
    if (c.call<amqp::queue_declare_ok>(1, d) != perf::call_result::ok) {
      std::fprintf(stderr, "%s: %s\n", tool, c.error().c_str());
      return console::exit_refused;
    }
  }
  if (c.call<amqp::confirm_select_ok>(1, amqp::confirm_select{}) != perf::call_result::ok) {
    std::fprintf(stderr, "%s: %s\n", tool, c.error().c_str());
    return console::exit_error;
  }

  amqp::basic_properties props;
  props.content_type = content_type;
  if (persistent)
    props.delivery_mode = 2;
  std::string raw_props;
  amqp::encode_properties(props, raw_props);
  amqp::basic_publish pub;
  pub.exchange = queue.empty() ? to.exchange : std::string{};
  pub.routing_key = queue.empty() ? to.key : queue;
  pub.mandatory = true;

  counts n;
  bool ok = true;
  std::string line;
  while (ok && std::getline(in, line)) {
    std::string_view body = line;
    if (!key_separator.empty()) {
      auto at = line.find(key_separator);  // a line without one has no key
      pub.routing_key = at == std::string::npos ? std::string{} : line.substr(0, at);
      if (at != std::string::npos)
        body.remove_prefix(at + key_separator.size());
    }
    amqp::encode_method(c.out(), 1, pub);
    amqp::encode_header_frame(c.out(), 1, body.size(), raw_props);
    amqp::encode_body_frames(c.out(), 1, body, c.frame_max());
    n.pending.insert(++n.published);
    if (c.pending_output() >= write_batch || n.pending.size() >= window)
      ok = drain(c, n, window / 2, 30000);
  }
  if (ok)
    ok = drain(c, n, 0, 30000);
  std::fprintf(stderr, "published=%llu confirmed=%llu returned=%llu nacked=%llu\n",
               static_cast<unsigned long long>(n.published),
               static_cast<unsigned long long>(n.confirmed),
               static_cast<unsigned long long>(n.returned),
               static_cast<unsigned long long>(n.nacked));
  if (!ok) {
    if (!c.error().empty())
      std::fprintf(stderr, "%s: %s\n", tool, c.error().c_str());
    return c.closed_by_broker() ? console::exit_refused : console::exit_error;
  }
  c.close();
  return n.returned || n.nacked ? console::exit_refused : console::exit_ok;
}
