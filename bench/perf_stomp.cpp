// One client STOMP 1.2 connection for warren-perf (see perf_stomp.hpp): the in-place frame
// scanner used on the hot path, the CONNECT handshake, receipts during set-up, ERROR frames
// and DISCONNECT.
#include "bench/perf_stomp.hpp"

#include <charconv>

namespace warren::perf {

namespace {

constexpr auto call_timeout_ms = 15000;

// One line without its EOL (LF or CRLF); npos when the LF has not arrived.
size_t line_end(std::string_view in, size_t from, std::string_view& line) {
  const size_t nl = in.find('\n', from);
  if (nl == std::string_view::npos) return nl;
  size_t end = nl;
  if (end > from && in[end - 1] == '\r') --end;
  line = in.substr(from, end - from);
  return nl + 1;
}

}  // namespace

scan_status scan_stomp_frame(std::string_view in, size_t max_frame, stomp_view& f, size_t& used) {
  size_t p = 0;
  while (p < in.size() && (in[p] == '\n' || in[p] == '\r')) {  // heart-beats
    if (in[p] == '\r' && (p + 1 == in.size() || in[p + 1] != '\n')) break;
    p += in[p] == '\r' ? 2 : 1;
  }
  used = p;
  if (p == in.size()) return scan_status::need_more;
  if (in[p] == '\r') return p + 1 == in.size() ? scan_status::need_more : scan_status::error;
  const size_t start = p;
  auto more = [&] { return in.size() - start > max_frame ? scan_status::error : scan_status::need_more; };

  f = {};
  std::string_view line;
  p = line_end(in, p, line);
  if (p == std::string_view::npos) return more();
  if (line.empty()) return scan_status::error;
  f.command = line;
  bool has_length = false, has_ack = false, has_receipt = false, has_message = false;
  size_t length = 0;
  for (;;) {
    p = line_end(in, p, line);
    if (p == std::string_view::npos) return more();
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return scan_status::error;
    const std::string_view name = line.substr(0, colon), value = line.substr(colon + 1);
    if (name == "content-length") {
      if (has_length) continue;  // the first occurrence wins
      auto [e, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (ec != std::errc{} || e != value.data() + value.size()) return scan_status::error;
      has_length = true;
    } else if (name == "ack" && !has_ack) {
      f.ack = value, has_ack = true;
    } else if (name == "receipt-id" && !has_receipt) {
      f.receipt_id = value, has_receipt = true;
    } else if (name == "message" && !has_message) {
      f.message = value, has_message = true;
    }
  }
  size_t end = 0;
  if (has_length) {
    if (length > max_frame) return scan_status::error;
    if (in.size() - p < length + 1) return scan_status::need_more;
    end = p + length;
    if (in[end] != '\0') return scan_status::error;
  } else {
    end = in.find('\0', p);
    if (end == std::string_view::npos) return more();
  }
  f.body = in.substr(p, end - p);
  used = end + 1;
  return scan_status::frame;
}

stomp_connection::stomp_connection(std::string name) : tcp_stream(std::move(name)) {}

bool stomp_connection::open(const options& o) {
  max_frame_ = static_cast<size_t>(o.body_size) + (64 << 10);
  if (!connect_to(o.host, o.port, max_frame_, o.tls)) return false;
  stomp::frame c;
  c.command = "CONNECT";
  c.headers = {{"accept-version", "1.2"}, {"host", o.vhost},     {"login", o.user},
               {"passcode", o.pass},      {"heart-beat", "0,0"}};
  send(c);
  const auto deadline = clock::now() + std::chrono::milliseconds(call_timeout_ms);
  if (!flush_blocking(deadline)) return false;
  for (;;) {
    stomp_view f;
    if (next_frame(f)) {
      if (f.command == "CONNECTED") return true;
      continue;
    }
    if (failed()) return false;
    const long n = read_available();
    if (n < 0) return false;
    if (n == 0) {
      if (clock::now() >= deadline) {
        fail("timed out waiting for CONNECTED");
        return false;
      }
      wait(false, ms_until(deadline));
    }
  }
}

void stomp_connection::send(const stomp::frame& f) {
  out() += stomp::encode(f, stomp::version::v1_2);
}

bool stomp_connection::call(stomp::frame f) {
  const std::string id = "warren-perf-" + std::to_string(++receipts_);
  f.set("receipt", id);
  send(f);
  return wait_for_receipt(id, call_timeout_ms);
}

bool stomp_connection::wait_for_receipt(std::string_view id, int timeout_ms) {
  const auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms);
  if (!flush_blocking(deadline)) return false;
  for (;;) {
    for (;;) {
      const std::string_view in = input();
      stomp_view f;
      size_t used = 0;
      const auto st = scan_stomp_frame(in, max_frame_, f, used);
      if (st != scan_status::frame) break;
      if (f.command == "MESSAGE") return true;  // left in the input for the consumer loop
      stomp_view g;
      if (!next_frame(g)) return false;  // an ERROR
      if (g.command == "RECEIPT" && g.receipt_id == id) return true;
    }
    if (failed()) return false;
    const long n = read_available();
    if (n < 0) return false;
    if (n == 0) {
      if (clock::now() >= deadline) {
        fail("timed out waiting for RECEIPT " + std::string(id));
        return false;
      }
      wait(false, ms_until(deadline));
    }
  }
}

bool stomp_connection::next_frame(stomp_view& f) {
  if (failed()) return false;
  if (input().substr(0, 5) == std::string_view("AMQP\0", 5)) {
    fail("the broker does not speak STOMP (it answered with an AMQP protocol header)");
    return false;
  }
  size_t used = 0;
  const auto st = scan_stomp_frame(input(), max_frame_, f, used);
  if (st == scan_status::error) {
    fail("malformed frame from the broker");
    return false;
  }
  consume(used);
  if (st == scan_status::need_more) return false;
  if (f.command == "ERROR") {
    std::string message;
    if (!stomp::unescape(f.message, stomp::version::v1_2, message)) message = f.message;
    std::string body(f.body.substr(0, 200));
    while (!body.empty() && (body.back() == '\n' || body.back() == '\0')) body.pop_back();
    for (char& ch : body)
      if (ch == '\n') ch = ' ';
    closed_by_broker_ = true;
    fail("ERROR from the broker: " + message + (body.empty() ? "" : " (" + body + ")"));
    return false;
  }
  return true;
}

std::string stomp_connection::send_disconnect() {
  disconnect_sent_ = true;
  stomp::frame d;
  d.command = "DISCONNECT";
  const std::string id = "warren-perf-disconnect";
  d.headers = {{"receipt", id}};
  send(d);
  return id;
}

void stomp_connection::close(int timeout_ms) {
  if (!connected()) return;
  if (!failed() && !disconnect_sent_) {
    const std::string id = send_disconnect();
    // Whatever arrives before the RECEIPT (deliveries, receipts) no longer matters.
    const auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms);
    bool done = !flush_blocking(deadline);
    while (!done && clock::now() < deadline) {
      stomp_view f;
      while (!done && next_frame(f)) done = f.command == "RECEIPT" && f.receipt_id == id;
      if (done || failed()) break;
      const long n = read_available();
      if (n < 0) break;
      if (n == 0) wait(false, ms_until(deadline));
    }
  }
  close_socket();
}

}  // namespace warren::perf
