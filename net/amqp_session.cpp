#include "net/amqp_session.hpp"

#include "actors/messages.hpp"
#include "protocol/amqp091/constants.hpp"

namespace warren::net {

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
  bool hot = true;  // see deliver()
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
    amqp::command cmd;
    auto r = assembler_.feed(f, cmd);
    if (r == amqp::assemble_status::command) {
      hot = hot && (std::holds_alternative<amqp::basic_publish>(cmd.m)
                    || std::holds_alternative<amqp::basic_ack>(cmd.m)
                    || std::holds_alternative<amqp::basic_nack>(cmd.m)
                    || std::holds_alternative<amqp::basic_reject>(cmd.m));
      batch.commands.push_back(std::move(cmd));
    } else if (r == amqp::assemble_status::error) {
      batch.error_code = assembler_.error_code();
      batch.error_text = assembler_.error_text();
      batch.error_class = assembler_.error_class_id();
      batch.error_method = assembler_.error_method_id();
      stop_reading();
      break;
    }
  }
  batch.bytes = used;
  if (!batch.commands.empty() || batch.error_code) {
    note_inflight(used);
    hot = hot && batch.commands.size() <= inline_read_max;
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
