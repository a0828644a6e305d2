#include "net/amqp_session.hpp"

#include "actors/messages.hpp"
#include "protocol/amqp091/constants.hpp"
#include "protocol/amqp091/methods.hpp"

namespace warren::net {

namespace {

// basic.publish, basic.ack, basic.reject and basic.nack, from a method frame's payload.
bool is_per_message(std::string_view payload) {
  auto u16 = [&](size_t at) {
    return static_cast<uint16_t>(static_cast<uint8_t>(payload[at]) << 8 |
                                 static_cast<uint8_t>(payload[at + 1]));
  };
  if (u16(0) != amqp::basic_publish::class_index)
    return false;
  auto m = u16(2);
  return m == amqp::basic_publish::method_index || m == amqp::basic_ack::method_index ||
         m == amqp::basic_reject::method_index || m == amqp::basic_nack::method_index;
}

}  // namespace

size_t amqp_session::parse(std::string_view in) {
  size_t used = 0;
  if (!header_seen_) {
    switch (amqp::check_protocol_header(in)) {
      case amqp::header_status::need_more:
        return 0;
      case amqp::header_status::mismatch:
        // AMQP 0-9-1 §4.2.2: answer with the header we speak, then close.
        stop_reading();
        write_on_strand(std::string{amqp::protocol_header});
        close_on_strand();
        return in.size();
      case amqp::header_status::ok:
        header_seen_ = true;
        used = amqp::protocol_header.size();
        caf::anon_send(conn_, start_atom::value);
        break;
    }
  }
  inbound_batch batch;
  // A read is hot (see deliver()) when its methods are all publishes, acks, nacks or rejects
  // and there are few of them; the method's class and method ids lead its payload.
  bool hot = true;
  size_t methods = 0;
  const size_t first = used;
  auto frame_max = frame_max_.load(std::memory_order_relaxed);
  while (used < in.size()) {
    amqp::frame_view f;
    size_t consumed = 0;
    auto st = amqp::parse_frame(in.substr(used), frame_max, f, consumed);
    if (st == amqp::frame_status::need_more)
      break;
    if (st != amqp::frame_status::ok) {
      batch.error_code = amqp::frame_error;
      batch.error_text = st == amqp::frame_status::bad_frame_end ? "FRAME_ERROR - bad frame end"
                         : st == amqp::frame_status::too_large
                           ? "FRAME_ERROR - frame size exceeds frame_max " + std::to_string(frame_max)
                           : "FRAME_ERROR - unknown frame type";
      stop_reading();
      break;
    }
    used += consumed;
    if (f.type == amqp::frame_type::method) {
      ++methods;
      hot = hot && f.payload.size() >= 4 && is_per_message(f.payload);
    }
  }
  if (used > first || batch.error_code) {
    batch.frames.assign(in.data() + first, used - first);
    batch.bytes = used;  // the protocol header too, if this read had it
    note_inflight(used);
    hot = hot && methods <= inline_read_max;
    deliver(caf::make_message(inbound_atom::value, std::move(batch)), hot);
  }
  return used;
}

void amqp_session::set_limits(uint32_t frame_max, uint16_t heartbeat_seconds) {
  frame_max_.store(frame_max, std::memory_order_relaxed);
  std::chrono::milliseconds interval{heartbeat_seconds * 1000};
  std::string beat;
  amqp::encode_heartbeat(beat);
  set_heartbeat(interval, 2 * interval, std::move(beat));
}

}  // namespace warren::net
