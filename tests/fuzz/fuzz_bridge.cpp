// libFuzzer target: messages crossing between the protocols (actors/stomp_mapping). The first
// byte picks the STOMP version, the next two the length of the rest's first part.
//  - AMQP to STOMP: the first part as a publisher's raw property bytes; when they decode, the
//    MESSAGE frame a subscriber gets must parse back as one frame with the body intact, one
//    content-length (the body's) and, for 1.1 and 1.2, the other headers in order, each as
//    sent but for the octets STOMP cannot carry (for 1.0, which has no escapes, no more
//    headers than were sent).
//  - STOMP to AMQP: the second part as a SEND frame; the property bytes made from its headers
//    must decode, and the destination parse must not fail silently.
//  - Dead-lettering (actors/dead_letter): the first part's properties, whatever headers a
//    publisher put there (x-death included), give a copy whose properties decode, without an
//    expiration, with an x-death entry for the queue first; a second death there counts one
//    more, and the cycle check reads any of them.
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <variant>

#include "actors/dead_letter.hpp"
#include "actors/messages.hpp"
#include "actors/stomp_mapping.hpp"
#include "protocol/amqp091/properties.hpp"
#include "protocol/stomp/frame.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace warren;

namespace {

// What a header keeps on the wire: STOMP cannot carry NUL, nor CR before 1.2 (the encoder
// drops them).
std::string representable(std::string_view s, stomp::version v) {
  std::string out;
  for (char c : s)
    if (c != '\0' && (c != '\r' || v == stomp::version::v1_2))
      out += c;
  return out;
}

// The first x-death entry of a dead-lettered copy: its queue, reason and count.
const amqp::field_table& first_death(const message& m, amqp::basic_properties& p) {
  check(amqp::decode_properties(m.properties(), p));
  check(!p.expiration && p.headers);
  auto deaths = amqp::find_field(*p.headers, "x-death");
  check(deaths && std::holds_alternative<amqp::field_array>(deaths->v));
  auto& list = std::get<amqp::field_array>(deaths->v);
  check(!list.empty() && list.front().as_table());
  return *list.front().as_table();
}

void dead_lettering(std::string_view properties, std::string_view body) {
  amqp::basic_properties p;
  if (!amqp::decode_properties(properties, p))
    return;
  message::fields f{"ex", "rk", properties, 2, p.headers.has_value(), p.expiration.has_value()};
  auto m = message::make(f, body);
  (void) dead_letter_cycle(*m, "q");
  auto once = dead_letter(*m, death_reason::expired, "q", "dlx", std::nullopt, 1);
  check(once && once->body() == body && once->exchange() == "dlx" && once->routing_key() == "rk");
  amqp::basic_properties a, b;
  auto& first = first_death(*once, a);
  check(*amqp::find_field(first, "queue")->as_string() == "q");
  auto n = amqp::find_field(first, "count")->as_int();
  check(n.has_value());
  (void) dead_letter_cycle(*once, "q");
  auto twice = dead_letter(*once, death_reason::expired, "q", "dlx", std::string{"k"}, 2);
  check(twice && twice->routing_key() == "k");
  auto m2 = amqp::find_field(first_death(*twice, b), "count")->as_int();
  check(m2 && *m2 == (*n == std::numeric_limits<int64_t>::max() ? *n : *n + 1));
}

void amqp_to_stomp(std::string_view properties, std::string_view body, stomp::version v) {
  amqp::basic_properties p;
  if (!amqp::decode_properties(properties, p))
    return;
  message::fields f;
  f.exchange = "amq.topic";
  f.routing_key = "a.b";
  f.properties = properties;
  auto m = message::make(f, body);
  stomp::frame out;
  out.command = "MESSAGE";
  out.headers.emplace_back("subscription", "s");
  out.headers.emplace_back("destination", stomp_map::destination_of(*m));
  out.headers.emplace_back("message-id", "T_s@@1");
  stomp_map::add_message_headers(*m, out);
  out.body = std::string{body};
  const std::string wire = stomp::encode(out, v);
  stomp::parser parser;
  parser.set_version(v);
  stomp::frame back;
  size_t used = 0;
  const auto st = parser.parse(wire, used, back);
  if (st != stomp::parse_status::frame)
    std::fprintf(stderr, "unparsable MESSAGE (%s): %s\n", parser.error().c_str(), wire.c_str());
  check(st == stomp::parse_status::frame);
  check(used == wire.size());
  check(back.command == "MESSAGE" && back.body == body);
  // One content-length, the body's: a header of the publisher's must never pass for it.
  size_t lengths = 0;
  for (auto& h : back.headers)
    if (h.first == "content-length") {
      ++lengths;
      check(h.second == std::to_string(body.size()));
    }
  check(lengths == (body.empty() ? 0u : 1u));
  // The rest in order, each as sent but for the octets STOMP cannot carry; names that
  // cannot be written at all are left out (and with 1.0, which escapes nothing, a header
  // must at least not turn into two).
  size_t j = 0;
  for (auto& h : back.headers) {
    if (h.first == "content-length")
      continue;
    check(!h.first.empty());
    if (v == stomp::version::v1_0) {
      ++j;
      continue;
    }
    while (j < out.headers.size() && (representable(out.headers[j].first, v) != h.first ||
                                      representable(out.headers[j].second, v) != h.second))
      ++j;
    check(j < out.headers.size());
    ++j;
  }
  check(j <= out.headers.size());
}

void stomp_to_amqp(std::string_view in, stomp::version v) {
  stomp::parser parser;
  parser.set_version(v);
  stomp::frame send;
  size_t used = 0;
  if (parser.parse(in, used, send) != stomp::parse_status::frame)
    return;
  uint8_t delivery_mode = 0;
  const std::string raw = stomp_map::properties_from_send(send, delivery_mode);
  amqp::basic_properties p;
  check(amqp::decode_properties(raw, p));
  check(delivery_mode == p.delivery_mode.value_or(0));
  if (auto d = send.header("destination")) {
    stomp_map::destination_error error;
    auto dest = stomp_map::parse_destination(*d, error);
    check(dest.has_value() != !error.message.empty());
    if (dest)
      stomp_map::publish_target(*dest);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3)
    return 0;
  const auto v = static_cast<stomp::version>(data[0] % 3);
  const size_t first = (size_t{data[1]} << 8 | data[2]) % (size - 2);
  std::string_view rest(reinterpret_cast<const char*>(data) + 3, size - 3);
  std::string_view a = rest.substr(0, first), b = rest.substr(first);
  amqp_to_stomp(a, b.substr(0, 64), v);
  dead_lettering(a, b.substr(0, 64));
  stomp_to_amqp(b, v);
  return 0;
}
