// libFuzzer target: bytes as a client sends them to the STOMP port. The first byte picks the
// protocol version and the read sizes; the rest is parsed twice, once whole and once arriving
// in pieces as a socket would deliver it, and both must give the same frames and the same
// error. Each STOMP 1.2 frame must survive encode and parse unchanged.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/stomp/frame.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace warren::stomp;

namespace {

struct outcome {
  std::vector<frame> frames;
  size_t heartbeats = 0;
  bool error = false;
  std::string error_text;
};

bool same(const frame& a, const frame& b) {
  return a.command == b.command && a.headers == b.headers && a.body == b.body;
}

// Feeds `in` to one parser `step` bytes at a time (all of it when step is 0), keeping the
// unconsumed tail at the front of the buffer as the STOMP session does.
outcome parse_in_pieces(std::string_view in, version v, size_t step) {
  outcome o;
  parser p;
  p.set_version(v);
  std::string buffer;
  size_t fed = 0;
  while (true) {
    if (fed < in.size()) {
      const size_t n = step == 0 ? in.size() - fed : std::min(step, in.size() - fed);
      buffer.append(in.substr(fed, n));
      fed += n;
    }
    while (true) {
      frame f;
      size_t used = 0;
      const auto st = p.parse(buffer, used, f);
      if (st == parse_status::error) {
        check(used == 0);
        o.error = true;
        o.error_text = p.error();
        return o;
      }
      if (st == parse_status::need_more) {
        check(used == 0);
        break;
      }
      check(used > 0 && used <= buffer.size());
      buffer.erase(0, used);
      if (st == parse_status::heartbeat)
        ++o.heartbeats;
      else
        o.frames.push_back(std::move(f));
    }
    if (fed == in.size())
      return o;
  }
}

void round_trip(const frame& f) {
  const std::string wire = encode(f, version::v1_2);
  parser p;
  p.set_version(version::v1_2);
  frame again;
  size_t used = 0;
  check(p.parse(wire, used, again) == parse_status::frame);
  check(used == wire.size());
  check(again.command == f.command && again.body == f.body);
  // encode() writes the body's real content-length; everything else comes back as it was.
  std::vector<std::pair<std::string, std::string>> expected, got;
  for (auto& h : f.headers)
    if (h.first != "content-length")
      expected.push_back(h);
  for (auto& h : again.headers)
    if (h.first != "content-length")
      got.push_back(h);
  check(expected == got);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1)
    return 0;
  const version v = static_cast<version>(data[0] % 3);
  const size_t step = 1 + (data[0] >> 2);  // 1..64 bytes per read
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const outcome whole = parse_in_pieces(in, v, 0);
  const outcome pieces = parse_in_pieces(in, v, step);
  check(whole.error == pieces.error);
  check(whole.error_text == pieces.error_text);
  check(whole.heartbeats == pieces.heartbeats);
  check(whole.frames.size() == pieces.frames.size());
  for (size_t i = 0; i < whole.frames.size(); ++i)
    check(same(whole.frames[i], pieces.frames[i]));
  if (v == version::v1_2)
    for (auto& f : whole.frames)
      if (f.command != "CONNECT" && f.command != "STOMP" && f.command != "CONNECTED")
        round_trip(f);
  return 0;
}
