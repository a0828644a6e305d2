// Big-endian primitives of the AMQP 0-9-1 wire format (AMQP 0-9-1 §4.2.5): a bounds-checked
// reader over a byte range and an appending writer. Decoding never reads past the end: a
// short or malformed input sets the reader's failed flag and every later read returns zero.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/amqp091/field_table.hpp"

namespace warren::amqp {

class reader {
public:
  explicit reader(std::string_view in) : p_(in.data()), end_(in.data() + in.size()) {}

  uint8_t u8();
  uint16_t u16();
  uint32_t u32();
  uint64_t u64();
  std::string_view shortstr();  // views into the input
  std::string_view longstr();
  std::string_view bytes(size_t n);
  field_table table();
  field_array array();
  field_value value();  // one typed value: type letter then payload

  bool failed() const { return failed_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }

private:
  const char* p_;
  const char* end_;
  bool failed_ = false;
  int depth_ = 0;  // nesting guard for tables within tables
};

class writer {
public:
  explicit writer(std::string& out) : out_(out) {}

  void u8(uint8_t x);
  void u16(uint16_t x);
  void u32(uint32_t x);
  void u64(uint64_t x);
  void shortstr(std::string_view s);  // truncated to 255 bytes
  void longstr(std::string_view s);
  void raw(std::string_view s);
  void table(const field_table& t);
  void array(const field_array& a);
  void value(const field_value& v);

  std::string& buffer() { return out_; }

private:
  std::string& out_;
};

// The primitives are inline: a delivery's frames are written, and a publish's read, a few
// bytes at a time.

inline uint8_t reader::u8() {
  if (failed_ || p_ == end_) {
    failed_ = true;
    return 0;
  }
  return static_cast<uint8_t>(*p_++);
}

inline uint16_t reader::u16() {
  if (failed_ || remaining() < 2) {
    failed_ = true;
    return 0;
  }
  const auto* b = reinterpret_cast<const unsigned char*>(p_);
  p_ += 2;
  return static_cast<uint16_t>((b[0] << 8) | b[1]);
}

inline uint32_t reader::u32() {
  if (failed_ || remaining() < 4) {
    failed_ = true;
    return 0;
  }
  const auto* b = reinterpret_cast<const unsigned char*>(p_);
  p_ += 4;
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

inline uint64_t reader::u64() {
  const uint64_t hi = u32();
  const uint64_t lo = u32();
  return failed_ ? 0 : (hi << 32) | lo;
}

inline std::string_view reader::bytes(size_t n) {
  if (failed_ || remaining() < n) {
    failed_ = true;
    return {};
  }
  std::string_view out(p_, n);
  p_ += n;
  return out;
}

inline std::string_view reader::shortstr() {
  const uint8_t n = u8();
  return bytes(n);
}

inline std::string_view reader::longstr() {
  const uint32_t n = u32();
  return bytes(n);
}

inline void writer::u8(uint8_t x) { out_.push_back(static_cast<char>(x)); }

inline void writer::u16(uint16_t x) {
  const char b[2] = {static_cast<char>(x >> 8), static_cast<char>(x)};
  out_.append(b, 2);
}

inline void writer::u32(uint32_t x) {
  const char b[4] = {static_cast<char>(x >> 24), static_cast<char>(x >> 16),
                     static_cast<char>(x >> 8), static_cast<char>(x)};
  out_.append(b, 4);
}

inline void writer::u64(uint64_t x) {
  u32(static_cast<uint32_t>(x >> 32));
  u32(static_cast<uint32_t>(x));
}

inline void writer::shortstr(std::string_view s) {
  if (s.size() > 255) s = s.substr(0, 255);
  u8(static_cast<uint8_t>(s.size()));
  out_.append(s);
}

inline void writer::longstr(std::string_view s) {
  u32(static_cast<uint32_t>(s.size()));
  out_.append(s);
}

inline void writer::raw(std::string_view s) { out_.append(s); }

}  // namespace warren::amqp
