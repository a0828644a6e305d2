// libFuzzer target: bytes as a client sends them after the protocol header. Frames are cut
// with the connection's frame_max, fed to the command assembler, and every method and every
// content header that decodes is checked to survive a round trip: encode(decode(x)) decodes
// again to the same bytes, and scan_properties (the hot path) agrees with decode_properties.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/amqp091/assembler.hpp"
#include "protocol/amqp091/frame.hpp"
#include "protocol/amqp091/properties.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace warren::amqp;

namespace {

std::string encode_any(const method& m) {
  std::string out;
  std::visit([&](const auto& x) { encode_method(out, 1, x); }, m);
  return out;
}

// A method's payload from a whole frame written by encode_method.
std::string_view payload_of(std::string_view frame) {
  frame_view v;
  size_t used = 0;
  check(parse_frame(frame, 1 << 20, v, used) == frame_status::ok);
  check(used == frame.size());
  return v.payload;
}

void round_trip_method(const method& m) {
  const std::string once = encode_any(m);
  method again;
  uint16_t cls = 0, mth = 0;
  check(decode_method(payload_of(once), again, cls, mth) == decode_status::ok);
  check(again.index() == m.index());
  check(encode_any(again) == once);
}

void round_trip_properties(std::string_view raw) {
  basic_properties p;
  property_scan scan;
  const bool decoded = decode_properties(raw, p);
  const bool scanned = scan_properties(raw, scan);
  if (!decoded)
    return;
  check(scanned);
  check(scan.delivery_mode == p.delivery_mode.value_or(0));
  check(scan.has_headers == p.headers.has_value());
  check(scan.priority == p.priority);
  check(scan.reply_to.has_value() == p.reply_to.has_value());
  if (p.reply_to)
    check(*scan.reply_to == *p.reply_to);
  check(scan.expiration.has_value() == p.expiration.has_value());
  if (p.expiration)
    check(*scan.expiration == *p.expiration);
  std::string once;
  encode_properties(p, once);
  basic_properties again;
  check(decode_properties(once, again));
  std::string twice;
  encode_properties(again, twice);
  check(once == twice);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const uint32_t frame_max = 4096;
  assembler a(64 << 10);
  while (!in.empty()) {
    frame_view f;
    size_t used = 0;
    if (parse_frame(in, frame_max, f, used) != frame_status::ok)
      break;
    check(used > 0 && used <= in.size());
    if (f.type == frame_type::method) {
      method m;
      uint16_t cls = 0, mth = 0;
      if (decode_method(f.payload, m, cls, mth) == decode_status::ok)
        round_trip_method(m);
    } else if (f.type == frame_type::header) {
      content_header h;
      if (decode_content_header(f.payload, h))
        round_trip_properties(h.properties);
    }
    command c;
    const auto st = a.feed(f, c);
    if (st == assemble_status::error)
      break;
    if (st == assemble_status::command && c.has_content)
      round_trip_properties(c.properties);
    in.remove_prefix(used);
  }
  return 0;
}
