// AMQP 0-9-1 framing (AMQP 0-9-1 §2.3.5 general frame format, §4.2.2 protocol header,
// §4.2.3 frame sizes): parsing frames off a contiguous input without copying, and encoding.
#include "protocol/amqp091/frame.hpp"

#include "protocol/amqp091/wire.hpp"

namespace warren::amqp {

frame_status parse_frame(std::string_view in, uint32_t frame_max, frame_view& out,
                         size_t& consumed) {
  consumed = 0;
  if (in.empty()) return frame_status::need_more;
  const auto type = static_cast<uint8_t>(in[0]);
  if (type != 1 && type != 2 && type != 3 && type != 8) return frame_status::bad_type;
  if (in.size() < 7) return frame_status::need_more;
  reader r(in.substr(1, 6));
  const uint16_t channel = r.u16();
  const uint64_t size = r.u32();
  const uint64_t total = size + frame_overhead;
  if (frame_max != 0 && total > frame_max) return frame_status::too_large;
  if (in.size() < total) return frame_status::need_more;
  if (static_cast<uint8_t>(in[total - 1]) != frame_end) return frame_status::bad_frame_end;
  out.type = static_cast<frame_type>(type);
  out.channel = channel;
  out.payload = in.substr(7, size);
  consumed = total;
  return frame_status::ok;
}

header_status check_protocol_header(std::string_view in) {
  const std::string_view start = in.substr(0, protocol_header.size());
  if (start != protocol_header.substr(0, start.size()) &&
      start != protocol_header_0_9.substr(0, start.size()))
    return header_status::mismatch;
  return start.size() < protocol_header.size() ? header_status::need_more : header_status::ok;
}

void encode_frame(std::string& out, frame_type type, uint16_t channel, std::string_view payload) {
  writer w(out);
  w.u8(static_cast<uint8_t>(type));
  w.u16(channel);
  w.u32(static_cast<uint32_t>(payload.size()));
  w.raw(payload);
  w.u8(frame_end);
}

void encode_heartbeat(std::string& out) { encode_frame(out, frame_type::heartbeat, 0, {}); }

}  // namespace warren::amqp
