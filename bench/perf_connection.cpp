// One client AMQP 0-9-1 connection for warren-perf on a tcp_stream: handshake, frame parsing
// in place, bounded request/response calls and the broker-initiated control methods.
#include "bench/perf_connection.hpp"

#include <algorithm>
#include <cstdio>

#include "protocol/amqp091/wire.hpp"

namespace warren::perf {

namespace {
constexpr auto call_timeout = std::chrono::seconds(15);

std::string describe_close(uint16_t code, const std::string& text, uint16_t cls, uint16_t mth) {
  std::string s = std::to_string(code) + " " + text;
  if (cls != 0) s += " (in reply to " + std::string(amqp::method_name(cls, mth)) + ")";
  return s;
}
}  // namespace

connection::connection(std::string name, std::string product)
  : tcp_stream(std::move(name)), product_(std::move(product)) {}

bool connection::open(const options& o, bool open_channel) {
  if (!connect_to(o.host, o.port, o.frame_max, o.tls)) return false;
  frame_max_ = o.frame_max;

  out().append(amqp::protocol_header);
  amqp::method got;
  if (wait_for(0, 10, 10, got) != call_result::ok) return false;

  amqp::field_table caps{{"publisher_confirms", true}, {"basic.nack", true},
                         {"consumer_cancel_notify", true}, {"connection.blocked", true},
                         {"authentication_failure_close", true}};
  amqp::connection_start_ok ok;
  ok.client_properties = {{"product", product_},
                          {"platform", std::string("C++20")},
                          {"connection_name", name()},
                          {"capabilities", caps}};
  ok.mechanism = "PLAIN";
  ok.response = std::string(1, '\0') + o.user + std::string(1, '\0') + o.pass;
  ok.locale = "en_US";
  amqp::connection_tune tune;
  if (call(0, ok, &tune) != call_result::ok) return false;

  amqp::connection_tune_ok tune_ok;
  tune_ok.channel_max = tune.channel_max;
  tune_ok.frame_max = tune.frame_max == 0 ? o.frame_max : std::min(o.frame_max, tune.frame_max);
  tune_ok.heartbeat = 0;  // runs are short; idle connections must not need a timer
  amqp::encode_method(out(), 0, tune_ok);
  frame_max_ = tune_ok.frame_max;

  amqp::connection_open op;
  op.virtual_host = o.vhost;
  if (call<amqp::connection_open_ok>(0, op) != call_result::ok) return false;
  if (open_channel && this->open_channel(1) != call_result::ok) return false;
  return true;
}

call_result connection::open_channel(uint16_t channel) {
  return call<amqp::channel_open_ok>(channel, amqp::channel_open{});
}

bool connection::next_frame(amqp::frame_view& f) {
  const std::string_view in = input();
  if (in.empty() || failed()) return false;
  size_t used = 0;
  const auto st = amqp::parse_frame(in, frame_max_, f, used);
  if (st == amqp::frame_status::ok) {
    consume(used);
    return true;
  }
  if (st == amqp::frame_status::need_more) return false;
  if (st == amqp::frame_status::bad_type && in.substr(0, 4) == "AMQP")
    fail("the broker does not speak AMQP 0-9-1 (it answered with its protocol header)");
  else
    fail("malformed frame from the broker");
  return false;
}

control connection::handle_control(const amqp::frame_view& f, amqp::method& decoded) {
  uint16_t cls = 0, mth = 0;
  method_ids(f.payload, cls, mth);
  if (cls == 10 && (mth == 60 || mth == 61)) {  // connection.blocked / unblocked (extension)
    blocked_ = mth == 60;
    amqp::reader r(f.payload.substr(4));
    const auto reason = mth == 60 ? r.shortstr() : std::string_view{};
    std::fprintf(stderr, "%s: %s %s by the broker%s%.*s\n", product_.c_str(), name().c_str(),
                 blocked_ ? "blocked" : "unblocked", reason.empty() ? "" : ": ",
                 static_cast<int>(reason.size()), reason.data());
    return control::handled;
  }
  const auto st = amqp::decode_method(f.payload, decoded, cls, mth);
  if (st != amqp::decode_status::ok) {
    if (st == amqp::decode_status::malformed) {
      fail("malformed " + std::string(amqp::method_name(cls, mth)) + " from the broker");
      return control::fatal;
    }
    return control::not_mine;
  }
  if (auto* c = std::get_if<amqp::connection_close>(&decoded)) {
    amqp::encode_method(out(), 0, amqp::connection_close_ok{});
    flush();
    closed_by_broker_ = true;
    fail("connection closed by the broker: " +
         describe_close(c->reply_code, c->reply_text, c->class_id, c->method_id));
    return control::fatal;
  }
  if (auto* c = std::get_if<amqp::channel_close>(&decoded)) {
    amqp::encode_method(out(), f.channel, amqp::channel_close_ok{});
    flush();
    closed_by_broker_ = true;
    channel_close_code_ = c->reply_code;
    fail("channel " + std::to_string(f.channel) + " closed by the broker: " +
         describe_close(c->reply_code, c->reply_text, c->class_id, c->method_id));
    return control::fatal;
  }
  if (auto* c = std::get_if<amqp::channel_flow>(&decoded)) {
    amqp::channel_flow_ok ok;
    ok.active = c->active;
    amqp::encode_method(out(), f.channel, ok);
    return control::handled;
  }
  if (std::holds_alternative<amqp::connection_close_ok>(decoded)) return control::handled;
  return control::not_mine;
}

call_result connection::wait_for(uint16_t channel, uint16_t cls, uint16_t mth,
                                 amqp::method& got) {
  const auto deadline = clock::now() + call_timeout;
  if (!flush_blocking(deadline)) return call_result::failed;
  for (;;) {
    amqp::frame_view f;
    while (next_frame(f)) {
      if (f.type != amqp::frame_type::method) continue;  // nothing else matters during setup
      uint16_t c = 0, m = 0;
      method_ids(f.payload, c, m);
      if (f.channel == channel && c == cls && m == mth) {
        if (amqp::decode_method(f.payload, got, c, m) != amqp::decode_status::ok) {
          fail("malformed " + std::string(amqp::method_name(c, m)) + " from the broker");
          return call_result::failed;
        }
        return call_result::ok;
      }
      if (f.channel == channel && channel != 0 && c == 20 && m == 40) {
        amqp::channel_close cc;
        amqp::method tmp;
        if (amqp::decode_method(f.payload, tmp, c, m) == amqp::decode_status::ok)
          cc = std::get<amqp::channel_close>(tmp);
        amqp::encode_method(out(), channel, amqp::channel_close_ok{});
        channel_close_code_ = cc.reply_code;
        set_error("channel " + std::to_string(channel) + " closed by the broker: " +
                  describe_close(cc.reply_code, cc.reply_text, cc.class_id, cc.method_id));
        flush_blocking(deadline);
        return call_result::channel_closed;
      }
      amqp::method other;
      if (handle_control(f, other) == control::fatal) return call_result::failed;
    }
    if (failed() || !flush_blocking(deadline)) return call_result::failed;
    const long n = read_available();
    if (n < 0) return call_result::failed;
    if (n == 0) {
      if (clock::now() >= deadline) {
        fail("timed out waiting for " + std::string(amqp::method_name(cls, mth)));
        return call_result::failed;
      }
      wait(false, ms_until(deadline));
    }
  }
}

void connection::close(int timeout_ms) {
  if (!connected()) return;
  if (!failed()) {
    const auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms);
    amqp::connection_close c;
    c.reply_code = 200;
    c.reply_text = "closing";
    amqp::encode_method(out(), 0, c);
    bool done = !flush_blocking(deadline);
    while (!done && clock::now() < deadline) {
      amqp::frame_view f;
      while (!done && next_frame(f)) {
        if (f.type != amqp::frame_type::method || f.channel != 0) continue;
        uint16_t cls = 0, mth = 0;
        method_ids(f.payload, cls, mth);
        if (cls == 10 && mth == 51) done = true;
        if (cls == 10 && mth == 50) {  // closing at the same time: answer and stop
          amqp::encode_method(out(), 0, amqp::connection_close_ok{});
          flush();
          done = true;
        }
      }
      if (done || failed()) break;
      const long n = read_available();
      if (n < 0) break;
      if (n == 0) wait(false, ms_until(deadline));
    }
  }
  close_socket();
}

}  // namespace warren::perf
