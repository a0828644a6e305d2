// Content header frames (AMQP 0-9-1 §4.2.6.1) and the basic class's property list: property
// flags (16-bit words, bit 15 first, bit 0 = another flags word follows; no properties are
// defined past the first word, so continuation words are read and ignored) followed by the
// present properties in flag order.
#include "protocol/amqp091/properties.hpp"

#include "protocol/amqp091/frame.hpp"
#include "protocol/amqp091/wire.hpp"

namespace warren::amqp {

namespace {

enum : uint16_t {
  f_content_type = 1u << 15,
  f_content_encoding = 1u << 14,
  f_headers = 1u << 13,
  f_delivery_mode = 1u << 12,
  f_priority = 1u << 11,
  f_correlation_id = 1u << 10,
  f_reply_to = 1u << 9,
  f_expiration = 1u << 8,
  f_message_id = 1u << 7,
  f_timestamp = 1u << 6,
  f_type = 1u << 5,
  f_user_id = 1u << 4,
  f_app_id = 1u << 3,
  f_cluster_id = 1u << 2,
};

// Reads the flag words; returns the first one (the only one with defined bits).
uint16_t read_flags(reader& r) {
  const uint16_t flags = r.u16();
  uint16_t word = flags;
  while ((word & 1) && !r.failed()) word = r.u16();
  return flags;
}

void read_opt(reader& r, std::optional<std::string>& dst) { dst.emplace(r.shortstr()); }

}  // namespace

bool decode_properties(std::string_view raw, basic_properties& out) {
  out = basic_properties{};
  reader r(raw);
  const uint16_t f = read_flags(r);
  if (r.failed()) return false;
  if (f & f_content_type) read_opt(r, out.content_type);
  if (f & f_content_encoding) read_opt(r, out.content_encoding);
  if (f & f_headers) out.headers = r.table();
  if (f & f_delivery_mode) out.delivery_mode = r.u8();
  if (f & f_priority) out.priority = r.u8();
  if (f & f_correlation_id) read_opt(r, out.correlation_id);
  if (f & f_reply_to) read_opt(r, out.reply_to);
  if (f & f_expiration) read_opt(r, out.expiration);
  if (f & f_message_id) read_opt(r, out.message_id);
  if (f & f_timestamp) out.timestamp = r.u64();
  if (f & f_type) read_opt(r, out.type);
  if (f & f_user_id) read_opt(r, out.user_id);
  if (f & f_app_id) read_opt(r, out.app_id);
  if (f & f_cluster_id) read_opt(r, out.cluster_id);
  if (r.failed()) {
    out = basic_properties{};
    return false;
  }
  return true;
}

void encode_properties(const basic_properties& p, std::string& out) {
  uint16_t f = 0;
  if (p.content_type) f |= f_content_type;
  if (p.content_encoding) f |= f_content_encoding;
  if (p.headers) f |= f_headers;
  if (p.delivery_mode) f |= f_delivery_mode;
  if (p.priority) f |= f_priority;
  if (p.correlation_id) f |= f_correlation_id;
  if (p.reply_to) f |= f_reply_to;
  if (p.expiration) f |= f_expiration;
  if (p.message_id) f |= f_message_id;
  if (p.timestamp) f |= f_timestamp;
  if (p.type) f |= f_type;
  if (p.user_id) f |= f_user_id;
  if (p.app_id) f |= f_app_id;
  if (p.cluster_id) f |= f_cluster_id;
  writer w(out);
  w.u16(f);
  if (p.content_type) w.shortstr(*p.content_type);
  if (p.content_encoding) w.shortstr(*p.content_encoding);
  if (p.headers) w.table(*p.headers);
  if (p.delivery_mode) w.u8(*p.delivery_mode);
  if (p.priority) w.u8(*p.priority);
  if (p.correlation_id) w.shortstr(*p.correlation_id);
  if (p.reply_to) w.shortstr(*p.reply_to);
  if (p.expiration) w.shortstr(*p.expiration);
  if (p.message_id) w.shortstr(*p.message_id);
  if (p.timestamp) w.u64(*p.timestamp);
  if (p.type) w.shortstr(*p.type);
  if (p.user_id) w.shortstr(*p.user_id);
  if (p.app_id) w.shortstr(*p.app_id);
  if (p.cluster_id) w.shortstr(*p.cluster_id);
}

bool scan_properties(std::string_view raw, property_scan& out) {
  out = property_scan{};
  reader r(raw);
  const uint16_t f = read_flags(r);
  if (f & f_content_type) r.shortstr();
  if (f & f_content_encoding) r.shortstr();
  if (f & f_headers) {
    const size_t at = raw.size() - r.remaining();
    const uint32_t n = r.u32();
    r.bytes(n);
    if (!r.failed()) {
      out.has_headers = true;
      out.headers_raw = raw.substr(at, size_t{4} + n);
    }
  }
  if (f & f_delivery_mode) out.delivery_mode = r.u8();
  if (f & f_priority) out.priority = r.u8();
  if (f & f_correlation_id) r.shortstr();
  if (f & f_reply_to) out.reply_to = r.shortstr();
  if (f & f_expiration) out.expiration = r.shortstr();
  if (f & f_message_id) r.shortstr();
  if (f & f_timestamp) r.u64();
  if (f & f_type) r.shortstr();
  if (f & f_user_id) r.shortstr();
  if (f & f_app_id) r.shortstr();
  if (f & f_cluster_id) r.shortstr();
  if (r.failed()) {
    out = property_scan{};
    return false;
  }
  return true;
}

bool decode_content_header(std::string_view payload, content_header& out) {
  reader r(payload);
  content_header h;
  h.class_id = r.u16();
  h.weight = r.u16();
  h.body_size = r.u64();
  if (r.failed()) return false;
  h.properties = payload.substr(payload.size() - r.remaining());
  out = h;
  return true;
}

void encode_header_frame(std::string& out, uint16_t channel, uint64_t body_size,
                         std::string_view raw_properties, uint16_t class_id) {
  writer w(out);
  w.u8(static_cast<uint8_t>(frame_type::header));
  w.u16(channel);
  w.u32(static_cast<uint32_t>(12 + raw_properties.size()));
  w.u16(class_id);
  w.u16(0);  // weight
  w.u64(body_size);
  w.raw(raw_properties);
  w.u8(frame_end);
}

void encode_body_frames(std::string& out, uint16_t channel, std::string_view body,
                        uint32_t frame_max) {
  size_t chunk = body.size();
  if (frame_max != 0) chunk = frame_max > frame_overhead ? frame_max - frame_overhead : 1;
  while (!body.empty()) {
    const size_t n = body.size() < chunk ? body.size() : chunk;
    encode_frame(out, frame_type::body, channel, body.substr(0, n));
    body.remove_prefix(n);
  }
}

}  // namespace warren::amqp
