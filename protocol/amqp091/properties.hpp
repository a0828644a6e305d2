// Content header frames and basic-class properties (AMQP 0-9-1 §4.2.6.1, basic class fields).
// The broker keeps a message's property bytes as received and re-sends them verbatim; it
// decodes them fully only when it needs them (headers exchange, mapping to STOMP, ...).
// scan_properties finds the few fields the hot path needs without allocating.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/amqp091/field_table.hpp"

namespace warren::amqp {

struct basic_properties {
  std::optional<std::string> content_type;      // flag bit 15
  std::optional<std::string> content_encoding;  // 14
  std::optional<field_table> headers;           // 13
  std::optional<uint8_t> delivery_mode;         // 12
  std::optional<uint8_t> priority;              // 11
  std::optional<std::string> correlation_id;    // 10
  std::optional<std::string> reply_to;          // 9
  std::optional<std::string> expiration;        // 8
  std::optional<std::string> message_id;        // 7
  std::optional<uint64_t> timestamp;            // 6
  std::optional<std::string> type;              // 5
  std::optional<std::string> user_id;           // 4
  std::optional<std::string> app_id;            // 3
  std::optional<std::string> cluster_id;        // 2
  friend bool operator==(const basic_properties&, const basic_properties&) = default;
};

// Property bytes = property flags (one or more 16-bit words, bit 0 = continuation) followed by
// the property list. Returns false when malformed.
bool decode_properties(std::string_view raw, basic_properties& out);
void encode_properties(const basic_properties& p, std::string& out);

// Fields the broker needs on every message, found without allocating. Views point into `raw`.
struct property_scan {
  uint8_t delivery_mode = 0;  // 0 when absent
  bool has_headers = false;
  std::string_view headers_raw;  // the encoded table including its 4-byte length
  std::optional<std::string_view> reply_to;
  std::optional<std::string_view> expiration;
  std::optional<uint8_t> priority;
};
bool scan_properties(std::string_view raw, property_scan& out);

struct content_header {
  uint16_t class_id = 60;
  uint16_t weight = 0;
  uint64_t body_size = 0;
  std::string_view properties;  // flags + list, views into the frame payload
};
bool decode_content_header(std::string_view payload, content_header& out);

// Appends a whole header frame (type 2) with the given raw property bytes.
void encode_header_frame(std::string& out, uint16_t channel, uint64_t body_size,
                         std::string_view raw_properties, uint16_t class_id = 60);
// Appends body frames (type 3), splitting at frame_max; nothing for an empty body.
void encode_body_frames(std::string& out, uint16_t channel, std::string_view body,
                        uint32_t frame_max);

}  // namespace warren::amqp
