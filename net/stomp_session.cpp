#include "net/stomp_session.hpp"

#include <sstream>

#include "actors/messages.hpp"

namespace warren::net {

std::optional<stomp::version> negotiate_version(const stomp::frame& connect) {
  auto accept = connect.header("accept-version");
  if (!accept)
    return stomp::version::v1_0;
  bool v10 = false, v11 = false, v12 = false;
  std::stringstream ss{*accept};
  std::string v;
  while (std::getline(ss, v, ',')) {
    auto b = v.find_first_not_of(' ');
    auto e = v.find_last_not_of(' ');
    v = b == std::string::npos ? "" : v.substr(b, e - b + 1);
    v10 |= v == "1.0";
    v11 |= v == "1.1";
    v12 |= v == "1.2";
  }
  if (v12)
    return stomp::version::v1_2;
  if (v11)
    return stomp::version::v1_1;
  if (v10)
    return stomp::version::v1_0;
  return std::nullopt;
}

size_t stomp_session::parse(std::string_view in) {
  stomp_batch batch;
  size_t used = 0;
  while (used < in.size()) {
    stomp::frame f;
    size_t consumed = 0;
    auto st = parser_.parse(in.substr(used), consumed, f);
    if (st == stomp::parse_status::need_more)
      break;
    if (st == stomp::parse_status::error) {
      batch.error = parser_.error();
      stop_reading();
      break;
    }
    used += consumed;
    if (st == stomp::parse_status::heartbeat)
      continue;
    if (!connected_ && (f.command == "CONNECT" || f.command == "STOMP")) {
      connected_ = true;
      if (auto v = negotiate_version(f))
        parser_.set_version(*v);
    }
    batch.frames.push_back(std::move(f));
  }
  batch.bytes = used;
  if (!batch.frames.empty() || !batch.error.empty()) {
    note_inflight(used);
    bool hot = batch.frames.size() <= inline_read_max;  // see deliver()
    for (auto& f : batch.frames)
      hot = hot && (f.command == "SEND" || f.command == "ACK" || f.command == "NACK");
    deliver(caf::make_message(stomp_atom::value, std::move(batch)), hot);
  }
  return used;
}

}  // namespace warren::net
