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

}  // namespace warren::amqp
