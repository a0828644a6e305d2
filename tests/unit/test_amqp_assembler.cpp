// Unit tests for command assembly (AMQP 0-9-1 §4.2.6): content split over header and body
// frames, partial reads through parse_frame, interleaved channels, and every connection
// error the assembler reports with its reply code.
#include <catch2/catch.hpp>

#include "protocol/amqp091/assembler.hpp"
#include "protocol/amqp091/constants.hpp"
#include "protocol/amqp091/properties.hpp"

using namespace warren::amqp;

namespace {

basic_publish publish(std::string rk) {
  basic_publish p;
  p.exchange = "amq.direct";
  p.routing_key = std::move(rk);
  p.mandatory = true;
  return p;
}

std::string props_with_delivery_mode(uint8_t mode) {
  basic_properties p;
  p.delivery_mode = mode;
  p.content_type = "text/plain";
  std::string raw;
  encode_properties(p, raw);
  return raw;
}

const std::string no_props("\0\0", 2);  // property flags with nothing set

std::string header(uint16_t channel, uint64_t body_size, std::string_view props = no_props,
                   uint16_t class_id = 60) {
  std::string out;
  encode_header_frame(out, channel, body_size, props, class_id);
  return out;
}

std::string body(uint16_t channel, std::string_view b) {
  std::string out;
  encode_frame(out, frame_type::body, channel, b);
  return out;
}

template <class T>
std::string meth(uint16_t channel, const T& m) {
  std::string out;
  encode_method(out, channel, m);
  return out;
}

struct result {
  assemble_status last = assemble_status::none;
  std::vector<command> commands;
  size_t frames = 0;
};

// Feeds every frame of `stream` until an error; the stream must hold whole frames.
result feed_stream(assembler& a, std::string_view stream) {
  result r;
  while (!stream.empty()) {
    frame_view f{};
    size_t consumed = 0;
    REQUIRE(parse_frame(stream, 0, f, consumed) == frame_status::ok);
    stream.remove_prefix(consumed);
    command c;
    r.last = a.feed(f, c);
    ++r.frames;
    if (r.last == assemble_status::command) r.commands.push_back(std::move(c));
    if (r.last == assemble_status::error) break;
  }
  return r;
}

void expect_error(std::string_view stream, uint16_t code, uint16_t cls = 0, uint16_t mth = 0,
                  uint64_t body_limit = 1024) {
  assembler a(body_limit);
  const result r = feed_stream(a, stream);
  REQUIRE(r.last == assemble_status::error);
  CHECK(a.error_code() == code);
  CHECK(a.error_class_id() == cls);
  CHECK(a.error_method_id() == mth);
  CHECK_FALSE(a.error_text().empty());
}

}  // namespace

TEST_CASE("publish split across a header and several body frames", "[codec]") {
  const std::string props = props_with_delivery_mode(2);
  const std::string stream = meth(1, publish("rk")) + header(1, 10, props) + body(1, "0123") +
                             body(1, "") + body(1, "4567") + body(1, "89");
  assembler a;
  const result r = feed_stream(a, stream);
  CHECK(r.frames == 6);
  CHECK(r.last == assemble_status::command);
  REQUIRE(r.commands.size() == 1);
  const command& c = r.commands[0];
  CHECK(c.channel == 1);
  CHECK(c.has_content);
  CHECK(std::get<basic_publish>(c.m) == publish("rk"));
  CHECK(c.properties == props);
  CHECK(c.body == "0123456789");
  property_scan scan;
  REQUIRE(scan_properties(c.properties, scan));
  CHECK(scan.delivery_mode == 2);
}

TEST_CASE("a non-content method is a command at once and an empty body completes at the header",
          "[codec]") {
  assembler a;
  basic_qos q;
  q.prefetch_count = 10;
  result r = feed_stream(a, meth(3, q));
  REQUIRE(r.commands.size() == 1);
  CHECK(r.commands[0].channel == 3);
  CHECK_FALSE(r.commands[0].has_content);
  CHECK(std::get<basic_qos>(r.commands[0].m) == q);

  r = feed_stream(a, meth(3, publish("empty")) + header(3, 0));
  REQUIRE(r.commands.size() == 1);
  CHECK(r.commands[0].has_content);
  CHECK(r.commands[0].body.empty());
  CHECK(r.commands[0].properties == no_props);
}

TEST_CASE("frames fed byte by byte through parse_frame", "[codec]") {
  connection_tune_ok tune;
  tune.channel_max = 2047;
  tune.frame_max = 4096;
  tune.heartbeat = 60;
  channel_open open;
  std::string hb;
  encode_heartbeat(hb);
  const std::string big(5000, 'b');
  std::string bodies;
  encode_body_frames(bodies, 1, big, 4096);
  const std::string stream = meth(0, tune) + hb + meth(1, open) + meth(1, publish("a")) +
                             header(1, 3) + body(1, "abc") + meth(1, publish("b")) +
                             header(1, big.size()) + bodies + hb;

  assembler a;
  std::string buffer;
  std::vector<command> commands;
  size_t frames = 0, need_more = 0;
  for (char byte : stream) {
    buffer.push_back(byte);
    for (;;) {
      frame_view f{};
      size_t consumed = 0;
      const frame_status st = parse_frame(buffer, 4096, f, consumed);
      if (st == frame_status::need_more) {
        ++need_more;
        break;
      }
      REQUIRE(st == frame_status::ok);
      ++frames;
      command c;
      const assemble_status as = a.feed(f, c);
      REQUIRE(as != assemble_status::error);
      if (as == assemble_status::command) commands.push_back(std::move(c));
      buffer.erase(0, consumed);
    }
  }
  CHECK(buffer.empty());
  CHECK(frames == 11);
  CHECK(need_more == stream.size());  // every byte ends with a parse that wants more
  REQUIRE(commands.size() == 4);
  CHECK(std::get<connection_tune_ok>(commands[0].m) == tune);
  CHECK(commands[0].channel == 0);
  CHECK(std::holds_alternative<channel_open>(commands[1].m));
  CHECK(std::get<basic_publish>(commands[2].m).routing_key == "a");
  CHECK(commands[2].body == "abc");
  CHECK(std::get<basic_publish>(commands[3].m).routing_key == "b");
  CHECK(commands[3].body == big);
}

TEST_CASE("content on different channels interleaves", "[codec]") {
  const std::string stream = meth(1, publish("one")) + meth(2, publish("two")) +
                             header(2, 4) + meth(3, basic_ack{}) + header(1, 6) +
                             body(1, "abc") + body(2, "wx") + body(1, "def") + body(2, "yz");
  assembler a;
  const result r = feed_stream(a, stream);
  CHECK(r.last == assemble_status::command);
  REQUIRE(r.commands.size() == 3);
  CHECK(r.commands[0].channel == 3);
  CHECK(std::holds_alternative<basic_ack>(r.commands[0].m));
  CHECK(r.commands[1].channel == 1);
  CHECK(std::get<basic_publish>(r.commands[1].m).routing_key == "one");
  CHECK(r.commands[1].body == "abcdef");
  CHECK(r.commands[2].channel == 2);
  CHECK(std::get<basic_publish>(r.commands[2].m).routing_key == "two");
  CHECK(r.commands[2].body == "wxyz");

  // The channels are free again afterwards.
  const result again = feed_stream(a, meth(1, basic_ack{}) + meth(2, basic_ack{}));
  CHECK(again.commands.size() == 2);
}

TEST_CASE("heartbeats", "[codec]") {
  std::string hb;
  encode_heartbeat(hb);
  assembler a;
  const result r = feed_stream(a, meth(1, publish("x")) + hb + header(1, 1) + hb + body(1, "z"));
  CHECK(r.commands.size() == 1);

  std::string bad;
  encode_frame(bad, frame_type::heartbeat, 1, "");
  expect_error(bad, frame_error);
}

TEST_CASE("assembler errors and their reply codes", "[codec]") {
  constexpr uint16_t basic = 60, publish_id = 40;

  SECTION("unknown class or method: 540 NOT_IMPLEMENTED") {
    std::string f;
    encode_frame(f, frame_type::method, 1, std::string("\x00\x3C\x03\xE7", 4));
    expect_error(f, not_implemented, 60, 999);
    f.clear();
    encode_frame(f, frame_type::method, 1, std::string("\x00\x0B\x00\x0A", 4));
    expect_error(f, not_implemented, 11, 10);
  }
  SECTION("malformed arguments: 502 SYNTAX_ERROR") {
    std::string f;
    const std::string good = meth(1, publish("rk"));
    encode_frame(f, frame_type::method, 1, good.substr(7, good.size() - 10));
    expect_error(f, syntax_error, basic, publish_id);
    f.clear();
    encode_frame(f, frame_type::method, 1, std::string("\x00\x3C", 2));
    expect_error(f, syntax_error);
  }
  SECTION("method while a header is expected: 505") {
    assembler a;
    const result r = feed_stream(a, meth(1, publish("a")) + meth(1, basic_ack{}));
    REQUIRE(r.last == assemble_status::error);
    CHECK(a.error_code() == unexpected_frame);
    CHECK(a.error_text() ==
          "UNEXPECTED_FRAME - expected content header for class 60, got non content header "
          "frame instead");
    CHECK(a.error_class_id() == 60);
    CHECK(a.error_method_id() == 40);  // the publish waiting for its header
  }
  SECTION("method while body is expected: 505") {
    assembler a;
    const result r = feed_stream(a, meth(1, publish("a")) + header(1, 5) + body(1, "ab") +
                                        meth(1, publish("b")));
    REQUIRE(r.last == assemble_status::error);
    CHECK(a.error_code() == unexpected_frame);
    CHECK(a.error_text() ==
          "UNEXPECTED_FRAME - expected content body, got non content body frame instead");
  }
  SECTION("header without a content method: 505") {
    expect_error(header(1, 5), unexpected_frame);
    expect_error(meth(1, basic_ack{}) + header(1, 5), unexpected_frame);
    expect_error(meth(2, publish("a")) + header(1, 5), unexpected_frame);
  }
  SECTION("second header: 505") {
    expect_error(meth(1, publish("a")) + header(1, 5) + header(1, 5), unexpected_frame, basic,
                 publish_id);
  }
  SECTION("undecodable header: 502") {
    std::string f;
    encode_frame(f, frame_type::header, 1, std::string("\x00\x3C\x00\x00\x00", 5));
    expect_error(meth(1, publish("a")) + f, syntax_error, basic, publish_id);
    // Property list says content-type is present but it is cut short.
    expect_error(meth(1, publish("a")) + header(1, 5, std::string("\x80\x00\x05" "ab", 5)),
                 syntax_error, basic, publish_id);
  }
  SECTION("header for another class: 505") {
    assembler a;
    const result r = feed_stream(a, meth(1, publish("a")) + header(1, 5, no_props, 50));
    REQUIRE(r.last == assemble_status::error);
    CHECK(a.error_code() == unexpected_frame);
    CHECK(a.error_text() ==
          "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead");
  }
  SECTION("announced body over the limit: 501, before any body arrives") {
    expect_error(meth(1, publish("a")) + header(1, 1025), frame_error, basic, publish_id, 1024);
    expect_error(meth(1, publish("a")) + header(1, ~uint64_t{0}), frame_error, basic,
                 publish_id, 1024);
    assembler a(1024);
    CHECK(feed_stream(a, meth(1, publish("a")) + header(1, 1024) + body(1, std::string(1024, 'x')))
              .commands.size() == 1);
  }
  SECTION("body without a header: 505") {
    expect_error(body(1, "x"), unexpected_frame);
    expect_error(meth(1, publish("a")) + body(1, "x"), unexpected_frame, basic, publish_id);
  }
  SECTION("body larger than announced: 501") {
    expect_error(meth(1, publish("a")) + header(1, 3) + body(1, "abcd"), frame_error, basic,
                 publish_id);
    expect_error(meth(1, publish("a")) + header(1, 3) + body(1, "ab") + body(1, "cd"),
                 frame_error, basic, publish_id);
  }
  SECTION("non-connection method on channel 0: 503") {
    expect_error(meth(0, basic_qos{}), command_invalid, 60, 10);
    expect_error(meth(0, publish("a")), command_invalid, basic, publish_id);
    expect_error(meth(0, channel_open{}), command_invalid, 20, 10);
  }
  SECTION("connection method on another channel: 503") {
    expect_error(meth(1, connection_close_ok{}), command_invalid, 10, 51);
  }
  SECTION("content frames on channel 0: 505") {
    expect_error(header(0, 1), unexpected_frame);
    expect_error(body(0, "x"), unexpected_frame);
  }
}

TEST_CASE("mutated frame streams never crash the assembler", "[codec]") {
  basic_properties p;
  p.headers = field_table{{"k", field_array{int32_t{1}, "v"}}};
  p.delivery_mode = 2;
  std::string props;
  encode_properties(p, props);
  const std::string valid = meth(1, publish("a")) + header(1, 6, props) + body(1, "abc") +
                            meth(2, publish("b")) + body(1, "def") + header(2, 0) +
                            meth(0, connection_close_ok{});
  uint32_t seed = 7;
  const auto next = [&seed] { return seed = seed * 1103515245u + 12345u, seed >> 8; };
  for (int i = 0; i < 5000; ++i) {
    std::string s = valid;
    for (int k = 0; k < 3; ++k) s[next() % s.size()] = static_cast<char>(next());
    assembler a(64);
    std::string_view in = s;
    for (;;) {
      frame_view f{};
      size_t consumed = 0;
      if (parse_frame(in, 4096, f, consumed) != frame_status::ok) break;
      in.remove_prefix(consumed);
      command c;
      if (a.feed(f, c) == assemble_status::error) {
        CHECK(is_hard_error(a.error_code()));
        break;
      }
    }
  }
}
