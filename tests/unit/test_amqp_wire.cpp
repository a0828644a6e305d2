// Unit tests for the AMQP 0-9-1 wire layer: golden bytes of representative frames (AMQP 0-9-1
// §2.3.5, §4.2.3, §4.2.6.1), field table values (§4.2.5.5, RabbitMQ errata type letters),
// frame parsing and the protocol header (§4.2.2), and decoding of hostile input.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "protocol/amqp091/frame.hpp"
#include "protocol/amqp091/methods.hpp"
#include "protocol/amqp091/properties.hpp"
#include "protocol/amqp091/wire.hpp"

using namespace warren::amqp;

namespace {

// "01 0a ff" -> bytes; whitespace ignored.
std::string hex(std::string_view h) {
  std::string out;
  int nibble = -1;
  for (char c : h) {
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else continue;
    if (nibble < 0) {
      nibble = v;
    } else {
      out.push_back(static_cast<char>(nibble * 16 + v));
      nibble = -1;
    }
  }
  return out;
}

std::string encode_table(const field_table& t) {
  std::string out;
  writer(out).table(t);
  return out;
}

bool decodes(std::string_view raw, field_table& t) {
  reader r(raw);
  t = r.table();
  return !r.failed();
}

field_table nested_tables(int depth) {
  field_table t{{"leaf", int32_t{1}}};
  for (int i = 1; i < depth; ++i) t = field_table{{"t", field_value(std::move(t))}};
  return t;
}

}  // namespace

TEST_CASE("heartbeat frame golden bytes", "[codec]") {
  std::string out;
  encode_heartbeat(out);
  CHECK(out == hex("08 0000 00000000 CE"));
}

TEST_CASE("connection.start golden bytes", "[codec]") {
  connection_start m;
  m.version_major = 0;
  m.version_minor = 9;
  m.server_properties = {{"product", "Warren"}};
  m.mechanisms = "PLAIN";
  m.locales = "en_US";
  std::string out;
  encode_method(out, 0, m);
  const std::string expected = hex("01 0000 0000002F  000A 000A  00 09  00000013 07") + "product" +
                               hex("53 00000006") + "Warren" + hex("00000005") + "PLAIN" +
                               hex("00000005") + "en_US" + hex("CE");
  CHECK(out == expected);

  frame_view f{};
  size_t consumed = 0;
  REQUIRE(parse_frame(out, 4096, f, consumed) == frame_status::ok);
  CHECK(consumed == out.size());
  method decoded;
  uint16_t cls = 0, mth = 0;
  REQUIRE(decode_method(f.payload, decoded, cls, mth) == decode_status::ok);
  CHECK(cls == 10);
  CHECK(mth == 10);
  CHECK(std::get<connection_start>(decoded) == m);
}

TEST_CASE("basic.publish golden bytes, bits packed low bit first", "[codec]") {
  basic_publish m;
  m.exchange = "ex";
  m.routing_key = "rk";
  m.mandatory = true;
  std::string out;
  encode_method(out, 1, m);
  CHECK(out == hex("01 0001 0000000D 003C 0028 0000 02") + "ex" + hex("02") + "rk" + hex("01 CE"));

  m.mandatory = false;
  m.immediate = true;
  out.clear();
  encode_method(out, 1, method{m});
  CHECK(out == hex("01 0001 0000000D 003C 0028 0000 02") + "ex" + hex("02") + "rk" + hex("02 CE"));
}

TEST_CASE("queue.declare packs five bits into one octet", "[codec]") {
  queue_declare m;
  m.queue = "q";
  m.durable = true;
  m.auto_delete = true;
  m.no_wait = true;
  std::string out;
  encode_method(out, 2, m);
  CHECK(out == hex("01 0002 0000000D 0032 000A 0000 01") + "q" + hex("1A 00000000 CE"));
}

TEST_CASE("content header golden bytes: delivery_mode=2 and a headers table", "[codec]") {
  basic_properties p;
  p.delivery_mode = 2;
  p.headers = field_table{{"x", int32_t{5}}};
  std::string props;
  encode_properties(p, props);
  const std::string table_bytes = hex("00000007 01 78 49 00000005");
  CHECK(props == hex("3000") + table_bytes + hex("02"));

  std::string out;
  encode_header_frame(out, 1, 10, props);
  CHECK(out == hex("02 0001 0000001A 003C 0000 000000000000000A") + props + hex("CE"));

  frame_view f{};
  size_t consumed = 0;
  REQUIRE(parse_frame(out, 0, f, consumed) == frame_status::ok);
  CHECK(f.type == frame_type::header);
  content_header h;
  REQUIRE(decode_content_header(f.payload, h));
  CHECK(h.class_id == 60);
  CHECK(h.weight == 0);
  CHECK(h.body_size == 10);
  CHECK(h.properties == props);

  property_scan scan;
  REQUIRE(scan_properties(h.properties, scan));
  CHECK(scan.delivery_mode == 2);
  CHECK(scan.has_headers);
  CHECK(scan.headers_raw == table_bytes);
  CHECK_FALSE(scan.reply_to);
  CHECK_FALSE(scan.priority);

  basic_properties back;
  REQUIRE(decode_properties(h.properties, back));
  CHECK(back == p);
}

TEST_CASE("field values: golden bytes of every type letter", "[codec]") {
  const std::vector<std::pair<field_value, std::string>> cases = {
      {field_value{}, hex("56")},
      {true, hex("74 01")},
      {false, hex("74 00")},
      {int8_t{-2}, hex("62 FE")},
      {uint8_t{200}, hex("42 C8")},
      {int16_t{-300}, hex("73 FED4")},
      {uint16_t{65000}, hex("75 FDE8")},
      {int32_t{-70000}, hex("49 FFFEEE90")},
      {uint32_t{4000000000u}, hex("69 EE6B2800")},
      {int64_t{-5}, hex("6C FFFFFFFFFFFFFFFB")},
      {1.5f, hex("66 3FC00000")},
      {2.5, hex("64 4004000000000000")},
      {decimal_value{2, -5}, hex("44 02 FFFFFFFB")},
      {std::string("hi"), hex("53 00000002 6869")},
      {byte_array{std::string("\x00\x01", 2)}, hex("78 00000002 0001")},
      {timestamp_value{1700000000}, hex("54 000000006553F100")},
      {field_table{}, hex("46 00000000")},
      {field_array{int32_t{1}, "a"}, hex("41 0000000B 49 00000001 53 00000001 61")},
  };
  for (const auto& [v, bytes] : cases) {
    INFO("expected " << bytes.size() << " bytes, type letter " << bytes[0]);
    std::string out;
    writer(out).value(v);
    CHECK(out == bytes);
    reader r(bytes);
    const field_value back = r.value();
    CHECK_FALSE(r.failed());
    CHECK(r.remaining() == 0);
    CHECK(back == v);
  }
}

TEST_CASE("field tables round trip every value type, nested", "[codec]") {
  field_table inner{{"n", int64_t{-1}}, {"arr", field_array{field_table{{"deep", "yes"}}, field_value{}}}};
  field_table t{
      {"void", field_value{}},
      {"bool", true},
      {"i8", int8_t{-128}},
      {"u8", uint8_t{255}},
      {"i16", int16_t{-32768}},
      {"u16", uint16_t{65535}},
      {"i32", int32_t{-2147483647 - 1}},
      {"u32", uint32_t{4294967295u}},
      {"i64", int64_t{-9223372036854775807 - 1}},
      {"f", -0.25f},
      {"d", 1e300},
      {"dec", decimal_value{3, 12345}},
      {"str", std::string("with\0nul", 8)},
      {"bytes", byte_array{std::string(300, '\xff')}},
      {"ts", timestamp_value{~uint64_t{0}}},
      {"table", inner},
      {"array", field_array{uint8_t{1}, int16_t{2}, std::string("three")}},
      {"", "empty key"},
      {"dup", 1.0},
      {"dup", 2.0},
  };
  const std::string raw = encode_table(t);
  field_table back;
  REQUIRE(decodes(raw, back));
  CHECK(back == t);
  CHECK(encode_table(back) == raw);

  REQUIRE(find_field(back, "dup"));
  CHECK(*find_field(back, "dup") == field_value(1.0));
  CHECK(find_field(back, "absent") == nullptr);
  CHECK(find_field(back, "u32")->as_int() == int64_t{4294967295u});
  CHECK(find_field(back, "i8")->as_int() == -128);
  CHECK_FALSE(find_field(back, "bool")->as_int());
  CHECK_FALSE(find_field(back, "d")->as_int());
  CHECK(*find_field(back, "str")->as_string() == std::string("with\0nul", 8));
  CHECK(find_field(back, "bytes")->as_string()->size() == 300);
  CHECK(find_field(back, "i8")->as_string() == nullptr);
  REQUIRE(find_field(back, "table")->as_table());
  CHECK(*find_field(back, "table")->as_table() == inner);
  CHECK(find_field(back, "array")->as_table() == nullptr);
}

TEST_CASE("hostile field tables fail without crashing", "[codec]") {
  field_table t;

  SECTION("every truncation of a valid table fails") {
    const std::string raw = encode_table({{"a", "b"}, {"t", field_table{{"x", 1.0}}},
                                          {"arr", field_array{int32_t{7}}}});
    for (size_t n = 0; n < raw.size(); ++n) CHECK_FALSE(decodes(raw.substr(0, n), t));
    CHECK(decodes(raw, t));
  }
  SECTION("a table whose content is cut inside an entry fails") {
    // Declared length covers a key but not its value.
    CHECK_FALSE(decodes(hex("00000002 01 61"), t));
    CHECK_FALSE(decodes(hex("00000003 01 61 49"), t));
  }
  SECTION("huge lengths are refused before allocating") {
    CHECK_FALSE(decodes(hex("FFFFFFFF 01 61 56"), t));
    CHECK_FALSE(decodes(hex("0000000A 01 61 56"), t));  // table longer than the input
    // Value lengths inside a well-formed table exceed what is left.
    CHECK_FALSE(decodes(hex("00000007 01 61 53 FFFFFFFF"), t));
    CHECK_FALSE(decodes(hex("00000007 01 61 78 7FFFFFFF"), t));
    CHECK_FALSE(decodes(hex("00000007 01 61 41 FFFFFFF0"), t));
    CHECK_FALSE(decodes(hex("00000007 01 61 46 FFFFFFF0"), t));
    CHECK_FALSE(decodes(hex("00000008 01 61 53 00000002 78"), t));
    CHECK_FALSE(decodes(hex("00000003 FF 61 56"), t));  // key longer than the table
  }
  SECTION("unknown type letters fail") {
    for (char letter : std::string("ZULcn\x00\xff", 7)) {
      INFO("letter " << int(letter));
      CHECK_FALSE(decodes(hex("00000003 01 61") + std::string(1, letter), t));
    }
  }
  SECTION("nesting is limited to 32 levels") {
    CHECK(decodes(encode_table(nested_tables(32)), t));
    CHECK_FALSE(decodes(encode_table(nested_tables(33)), t));
    CHECK_FALSE(decodes(encode_table(nested_tables(1000)), t));

    field_value v = field_array{};
    for (int i = 0; i < 40; ++i) v = field_array{v};
    std::string raw;
    writer(raw).value(v);
    reader r(raw);
    r.value();
    CHECK(r.failed());
  }
  SECTION("a failed reader returns zeros from then on") {
    reader r(hex("0102"));
    CHECK(r.u32() == 0);
    CHECK(r.failed());
    CHECK(r.u8() == 0);
    CHECK(r.shortstr().empty());
    CHECK(r.table().empty());
  }
}

TEST_CASE("random and mutated input never crashes the decoders", "[codec]") {
  std::mt19937 rng(12345);
  basic_properties p;
  p.content_type = "text/plain";
  p.headers = field_table{{"a", field_array{int32_t{1}, field_table{{"b", "c"}}}}, {"d", 2.0}};
  p.delivery_mode = 2;
  p.reply_to = "r";
  p.timestamp = 9;
  std::string props;
  encode_properties(p, props);
  exchange_declare decl;
  decl.exchange = "e";
  decl.type = "topic";
  decl.arguments = *p.headers;
  std::string frame;
  encode_method(frame, 1, decl);
  const std::string payload = frame.substr(7, frame.size() - 8);

  for (int i = 0; i < 20000; ++i) {
    std::string a = (i % 2) ? props : payload;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) a[rng() % a.size()] = static_cast<char>(rng());
    if (rng() % 3 == 0) a.resize(rng() % (a.size() + 1));
    basic_properties bp;
    property_scan scan;
    decode_properties(a, bp);
    scan_properties(a, scan);
    method m;
    uint16_t c = 0, mm = 0;
    decode_method(a, m, c, mm);
    field_table t;
    decodes(a, t);
    frame_view f{};
    size_t consumed = 0;
    parse_frame(a, 4096, f, consumed);
  }
  SUCCEED();
}

TEST_CASE("basic properties round trip and scanning", "[codec]") {
  basic_properties p;
  p.content_type = "application/json";
  p.content_encoding = "gzip";
  p.headers = field_table{{"h", "v"}};
  p.delivery_mode = 1;
  p.priority = 9;
  p.correlation_id = "corr";
  p.reply_to = "amq.rabbitmq.reply-to";
  p.expiration = "60000";
  p.message_id = "m1";
  p.timestamp = 1700000000;
  p.type = "t";
  p.user_id = "guest";
  p.app_id = "app";
  p.cluster_id = "c";
  std::string raw;
  encode_properties(p, raw);
  CHECK(static_cast<uint8_t>(raw[0]) == 0xFF);
  CHECK(static_cast<uint8_t>(raw[1]) == 0xFC);
  basic_properties back;
  REQUIRE(decode_properties(raw, back));
  CHECK(back == p);

  property_scan scan;
  REQUIRE(scan_properties(raw, scan));
  CHECK(scan.delivery_mode == 1);
  CHECK(scan.priority == uint8_t{9});
  CHECK(scan.reply_to == std::string_view("amq.rabbitmq.reply-to"));
  CHECK(scan.expiration == std::string_view("60000"));
  CHECK(scan.has_headers);
  field_table h;
  REQUIRE(decodes(scan.headers_raw, h));
  CHECK(h == *p.headers);

  for (size_t n = 0; n < raw.size(); ++n) {
    CHECK_FALSE(decode_properties(raw.substr(0, n), back));
    CHECK_FALSE(scan_properties(raw.substr(0, n), scan));
  }

  basic_properties empty;
  raw.clear();
  encode_properties(empty, raw);
  CHECK(raw == hex("0000"));
  REQUIRE(decode_properties(raw, back));
  CHECK(back == empty);
  REQUIRE(scan_properties(raw, scan));
  CHECK(scan.delivery_mode == 0);
  CHECK_FALSE(scan.has_headers);
}

TEST_CASE("property flag continuation words are accepted and skipped", "[codec]") {
  // delivery_mode + continuation; a second word with continuation; a last word; then the list.
  const std::string raw = hex("1001 0003 0000 02");
  basic_properties p;
  REQUIRE(decode_properties(raw, p));
  CHECK(p.delivery_mode == uint8_t{2});
  property_scan scan;
  REQUIRE(scan_properties(raw, scan));
  CHECK(scan.delivery_mode == 2);
  CHECK_FALSE(decode_properties(hex("1001"), p));
  CHECK_FALSE(scan_properties(hex("1001 00"), scan));
}

TEST_CASE("parse_frame", "[codec]") {
  frame_view f{};
  size_t consumed = 99;
  std::string frame;
  encode_frame(frame, frame_type::body, 3, "hello");

  SECTION("ok, with trailing bytes left alone") {
    const std::string in = frame + "junk";
    REQUIRE(parse_frame(in, 4096, f, consumed) == frame_status::ok);
    CHECK(consumed == frame.size());
    CHECK(f.type == frame_type::body);
    CHECK(f.channel == 3);
    CHECK(f.payload == "hello");
  }
  SECTION("need_more for every prefix") {
    for (size_t n = 0; n < frame.size(); ++n)
      CHECK(parse_frame(std::string_view(frame).substr(0, n), 4096, f, consumed) ==
            frame_status::need_more);
  }
  SECTION("bad type is seen on the first byte") {
    for (int t : {0, 4, 5, 9, 65, 255})
      CHECK(parse_frame(std::string(1, static_cast<char>(t)), 4096, f, consumed) ==
            frame_status::bad_type);
  }
  SECTION("too_large is decided from the 7-byte header") {
    CHECK(parse_frame(hex("03 0001 00000FF9"), 4096, f, consumed) == frame_status::too_large);
    CHECK(parse_frame(hex("03 0001 00000FF8"), 4096, f, consumed) == frame_status::need_more);
    CHECK(parse_frame(hex("03 0001 FFFFFFFF"), 4096, f, consumed) == frame_status::too_large);
    CHECK(parse_frame(hex("03 0001 FFFFFFFF"), 0xFFFFFFFF, f, consumed) == frame_status::too_large);
    CHECK(parse_frame(hex("03 0001 FFFFFFFF"), 0, f, consumed) == frame_status::need_more);
  }
  SECTION("exactly frame_max is accepted") {
    std::string big;
    encode_frame(big, frame_type::body, 1, std::string(4096 - 8, 'x'));
    CHECK(parse_frame(big, 4096, f, consumed) == frame_status::ok);
    CHECK(parse_frame(big, 4095, f, consumed) == frame_status::too_large);
  }
  SECTION("bad frame end") {
    frame.back() = '\x00';
    CHECK(parse_frame(frame, 4096, f, consumed) == frame_status::bad_frame_end);
  }
}

TEST_CASE("check_protocol_header", "[codec]") {
  CHECK(check_protocol_header(std::string("AMQP\x00\x00\x09\x01", 8)) == header_status::ok);
  CHECK(check_protocol_header(std::string("AMQP\x00\x00\x09\x01rest", 12)) == header_status::ok);
  CHECK(check_protocol_header("") == header_status::need_more);
  CHECK(check_protocol_header("AMQ") == header_status::need_more);
  CHECK(check_protocol_header(std::string("AMQP\x00\x00\x09", 7)) == header_status::need_more);
  CHECK(check_protocol_header("G") == header_status::mismatch);
  CHECK(check_protocol_header("GET / HTTP/1.1") == header_status::mismatch);
  CHECK(check_protocol_header(std::string("AMQP\x00\x00\x08", 7)) == header_status::mismatch);
  // AMQP 0-9's header is taken as 0-9-1 (as RabbitMQ does); 0-8's is not.
  CHECK(check_protocol_header(std::string("AMQP\x01\x01\x00\x09", 8)) == header_status::ok);
  CHECK(check_protocol_header(std::string("AMQP\x01\x01", 6)) == header_status::need_more);
  CHECK(check_protocol_header(std::string("AMQP\x01\x01\x08\x00", 8)) == header_status::mismatch);
  CHECK(check_protocol_header(std::string("AMQP\x01\x01\x09\x01", 8)) == header_status::mismatch);
  CHECK(check_protocol_header(std::string("AMQP\x00\x01", 6)) == header_status::mismatch);
}

TEST_CASE("body frames split at frame_max", "[codec]") {
  std::string out;
  encode_body_frames(out, 5, "", 4096);
  CHECK(out.empty());
  encode_body_frames(out, 5, "0123456789", 12);
  CHECK(out == hex("03 0005 00000004") + "0123" + hex("CE 03 0005 00000004") + "4567" +
                   hex("CE 03 0005 00000002") + "89" + hex("CE"));
  out.clear();
  encode_body_frames(out, 5, "0123456789", 0);
  CHECK(out == hex("03 0005 0000000A") + "0123456789" + hex("CE"));
}
