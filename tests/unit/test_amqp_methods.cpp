// Unit tests for the generated AMQP 0-9-1 method codecs (AMQP 0-9-1 §4.2.5 argument encoding,
// §4.2.5.2 bit packing): every alternative of `method` round-trips with non-default values,
// truncations are malformed, unknown ids are reported.
#include <catch2/catch.hpp>

#include <set>
#include <utility>

#include "protocol/amqp091/frame.hpp"
#include "protocol/amqp091/methods.hpp"

using namespace warren::amqp;

namespace {

// Fills every field with a distinct non-default value. Bits follow `pattern`: 0 and 1 give
// complementary alternating bits, 2 sets them all.
struct filler {
  int pattern;
  int idx = 0;
  void operator()(bool& b) { b = pattern == 2 || (idx++ + pattern) % 2 == 0; }
  void operator()(uint8_t& x) { x = static_cast<uint8_t>(0x80 + idx++); }
  void operator()(uint16_t& x) { x = static_cast<uint16_t>(0x8100 + idx++); }
  void operator()(uint32_t& x) { x = 0x82000000u + static_cast<uint32_t>(idx++); }
  void operator()(uint64_t& x) { x = 0x8300000000000000ull + static_cast<uint64_t>(idx++); }
  void operator()(std::string& s, shortstr_tag) {
    s = "short-" + std::to_string(idx++) + std::string(240, 'z');
  }
  void operator()(std::string& s, longstr_tag) {
    s = std::string("long\0", 5) + std::string(300, 'L') + std::to_string(idx++);
  }
  void operator()(field_table& t) {
    t = {{"k", int32_t{idx++}},
         {"nested", field_table{{"a", field_array{"x", 1.5, field_value{}}}}},
         {"x-max-length", int64_t{1} << 40}};
  }
};

struct field_counter {
  int n = 0;
  template <class... A> void operator()(A&&...) { ++n; }
};

template <class T>
void check_method(int pattern) {
  INFO(T::name << " pattern " << pattern);
  T m;
  T::fields(m, filler{pattern});
  field_counter count;
  T::fields(m, count);
  if (count.n > 0 && pattern == 2) CHECK_FALSE(m == T{});

  std::string out;
  encode_method(out, 7, m);
  std::string via_variant;
  encode_method(via_variant, 7, method{m});
  CHECK(via_variant == out);

  frame_view f{};
  size_t consumed = 0;
  REQUIRE(parse_frame(out, 0, f, consumed) == frame_status::ok);
  CHECK(consumed == out.size());
  CHECK(f.type == frame_type::method);
  CHECK(f.channel == 7);

  method decoded;
  uint16_t cls = 0, mth = 0;
  REQUIRE(decode_method(f.payload, decoded, cls, mth) == decode_status::ok);
  CHECK(cls == T::class_index);
  CHECK(mth == T::method_index);
  REQUIRE(std::holds_alternative<T>(decoded));
  CHECK(std::get<T>(decoded) == m);

  CHECK(method_name(decoded) == T::name);
  CHECK(method_name(cls, mth) == T::name);
  CHECK(method_has_content(decoded) == T::has_content);
  CHECK(method_class_id(decoded) == T::class_index);
  CHECK(method_method_id(decoded) == T::method_index);

  // Trailing bytes after the arguments are accepted.
  std::string longer(f.payload);
  longer += "trailing";
  REQUIRE(decode_method(longer, decoded, cls, mth) == decode_status::ok);
  CHECK(std::get<T>(decoded) == m);

  // Every field takes at least one octet, so every shorter payload is malformed.
  if (pattern == 0) {
    for (size_t n = 4; n < f.payload.size(); ++n) {
      decoded = T{};
      const auto st = decode_method(f.payload.substr(0, n), decoded, cls, mth);
      if (st != decode_status::malformed) FAIL_CHECK("truncated to " << n << " bytes decoded");
      CHECK(cls == T::class_index);
      CHECK(std::holds_alternative<std::monostate>(decoded));
    }
  }
}

template <size_t... I>
void check_all(int pattern, std::index_sequence<I...>) {
  (check_method<std::variant_alternative_t<I + 1, method>>(pattern), ...);
}

template <size_t... I>
std::vector<std::tuple<std::string_view, uint16_t, uint16_t, bool, bool>> describe_all(
    std::index_sequence<I...>) {
  return {{std::variant_alternative_t<I + 1, method>::name,
           std::variant_alternative_t<I + 1, method>::class_index,
           std::variant_alternative_t<I + 1, method>::method_index,
           std::variant_alternative_t<I + 1, method>::has_content,
           std::variant_alternative_t<I + 1, method>::synchronous}...};
}

constexpr auto all_methods = std::make_index_sequence<std::variant_size_v<method> - 1>{};

}  // namespace

TEST_CASE("every method round-trips with non-default values", "[codec]") {
  for (int pattern : {0, 1, 2}) check_all(pattern, all_methods);
}

TEST_CASE("the method set matches the spec", "[codec]") {
  const auto all = describe_all(all_methods);
  // 0-9-1 plus RabbitMQ's extensions in the extended spec XML, plus connection.blocked and
  // connection.unblocked, which the codegen adds when the XML leaves them out.
  CHECK(all.size() == 62);
  std::set<std::string_view> content, names;
  std::set<std::pair<uint16_t, uint16_t>> ids;
  for (const auto& [name, cls, mth, has_content, sync] : all) {
    names.insert(name);
    ids.insert({cls, mth});
    if (has_content) content.insert(name);
  }
  CHECK(names.size() == all.size());
  CHECK(ids.size() == all.size());
  CHECK(content == std::set<std::string_view>{"basic.publish", "basic.return", "basic.deliver",
                                              "basic.get-ok"});
  CHECK(basic_get_ok::synchronous);
  CHECK_FALSE(basic_publish::synchronous);
  CHECK(exchange_unbind_ok::method_index == 51);
  CHECK(confirm_select::class_index == 85);
  CHECK(basic_recover_async::method_index == 100);
  CHECK((connection_blocked::class_index == 10 && connection_blocked::method_index == 60));
  CHECK((connection_unblocked::class_index == 10 && connection_unblocked::method_index == 61));
}

// Mostly a compile-time check of the generated member names.
TEST_CASE("field naming: no-wait and nowait both become no_wait, reserved kept", "[codec]") {
  confirm_select c;
  c.no_wait = true;
  queue_bind q;
  q.no_wait = true;
  q.reserved_1 = 1;
  connection_open o;
  o.reserved_1 = "r";
  o.reserved_2 = true;
  channel_open_ok ok;
  ok.reserved_1 = "x";
  basic_get_empty e;
  e.reserved_1 = "y";
  tx_commit_ok t;
  CHECK(t == tx_commit_ok{});
}

TEST_CASE("bits share octets and fields after them start a new octet", "[codec]") {
  basic_nack n;
  n.delivery_tag = 1;
  n.multiple = true;
  n.requeue = true;
  std::string out;
  encode_method(out, 1, n);
  CHECK(out == std::string("\x01\x00\x01\x00\x00\x00\x0D\x00\x3C\x00\x78"
                           "\x00\x00\x00\x00\x00\x00\x00\x01\x03\xCE",
                           21));

  basic_consume c;
  c.queue = "q";
  c.no_ack = true;
  c.arguments = {{"a", "b"}};
  out.clear();
  encode_method(out, 1, c);
  const std::string payload = out.substr(7, out.size() - 8);
  // reserved-1, queue, consumer-tag, one octet of bits (no-ack = bit 1), arguments.
  CHECK(payload.substr(4) == std::string("\x00\x00\x01q\x00\x02\x00\x00\x00\x08\x01"
                                         "a" "S\x00\x00\x00\x01" "b",
                                         18));
}

TEST_CASE("unknown and short method payloads", "[codec]") {
  method m = basic_ack{};
  uint16_t cls = 1, mth = 1;
  CHECK(decode_method(std::string("\x00\x3C\x03\xE7", 4), m, cls, mth) ==
        decode_status::unknown_method);
  CHECK(cls == 60);
  CHECK(mth == 999);
  CHECK(std::holds_alternative<std::monostate>(m));
  CHECK(decode_method(std::string("\x00\x46\x00\x0A", 4), m, cls, mth) ==
        decode_status::unknown_method);
  CHECK(cls == 70);

  cls = mth = 1234;
  CHECK(decode_method(std::string("\x00\x3C\x00", 3), m, cls, mth) == decode_status::malformed);
  CHECK(cls == 1234);
  CHECK(decode_method("", m, cls, mth) == decode_status::malformed);

  CHECK(method_name(70, 10) == "unknown");
  CHECK(method_name(method{}) == "unknown");
  CHECK_FALSE(method_has_content(method{}));
  CHECK(method_class_id(method{}) == 0);
  CHECK(method_method_id(method{}) == 0);
  std::string out;
  encode_method(out, 1, method{});
  CHECK(out.empty());
}

TEST_CASE("long short strings are truncated to 255 octets on encoding", "[codec]") {
  queue_declare q;
  q.queue = std::string(300, 'q');
  std::string out;
  encode_method(out, 1, q);
  frame_view f{};
  size_t consumed = 0;
  REQUIRE(parse_frame(out, 0, f, consumed) == frame_status::ok);
  method m;
  uint16_t cls = 0, mth = 0;
  REQUIRE(decode_method(f.payload, m, cls, mth) == decode_status::ok);
  CHECK(std::get<queue_declare>(m).queue == std::string(255, 'q'));
}
