// AMQP 0-9-1 framing (AMQP 0-9-1 §2.3.5, §4.2.3): the protocol header, and general frames
// `type:octet channel:short size:long payload frame-end(0xCE)`.
// parse_frame works on a contiguous input and never allocates: it returns a view of the
// payload, asks for more bytes, or reports the fault; limits are checked before anything is
// buffered.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace warren::amqp {

inline constexpr std::string_view protocol_header{"AMQP\x00\x00\x09\x01", 8};
// AMQP 0-9's header ("AMQP" 1 1 0 9), which aioamqp and other older clients still send. As
// RabbitMQ does, the connection goes on in 0-9-1: the methods such clients use are the same.
inline constexpr std::string_view protocol_header_0_9{"AMQP\x01\x01\x00\x09", 8};
inline constexpr uint8_t frame_end = 0xCE;
inline constexpr uint32_t frame_min_size = 4096;        // §4.2.3
inline constexpr size_t frame_overhead = 8;              // 7 header + 1 end octet

enum class frame_type : uint8_t { method = 1, header = 2, body = 3, heartbeat = 8 };

struct frame_view {
  frame_type type;
  uint16_t channel;
  std::string_view payload;
};

enum class frame_status {
  ok,
  need_more,
  bad_frame_end,    // 501 FRAME_ERROR
  too_large,        // 501 FRAME_ERROR: size + 8 > frame_max
  bad_type,         // 501 FRAME_ERROR: unknown frame type
};

// Parses one frame from the front of `in`. On ok, `out` views into `in` and `consumed` is the
// whole frame's length. frame_max counts the whole frame, header and end octet included.
frame_status parse_frame(std::string_view in, uint32_t frame_max, frame_view& out, size_t& consumed);

// Result of checking the 8-byte protocol header a client sends first: 0-9-1's or 0-9's.
enum class header_status { ok, need_more, mismatch };
header_status check_protocol_header(std::string_view in);

void encode_frame(std::string& out, frame_type type, uint16_t channel, std::string_view payload);
void encode_heartbeat(std::string& out);

}  // namespace warren::amqp
