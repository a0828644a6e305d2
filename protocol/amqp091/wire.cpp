// Big-endian primitives and field tables/arrays on the wire (AMQP 0-9-1 §4.2.5.1-§4.2.5.5,
// type letters per RabbitMQ's errata). Decoding is for untrusted input: every length is
// checked against the bytes actually present before anything is allocated, and nesting of
// tables/arrays is limited so a hostile peer cannot exhaust the stack.
#include "protocol/amqp091/wire.hpp"

#include <bit>

namespace warren::amqp {

namespace {
constexpr int max_nesting = 32;  // tables/arrays within tables/arrays, outermost included
}

field_table reader::table() {
  const std::string_view raw = longstr();
  if (failed_) return {};
  if (depth_ + 1 > max_nesting) {
    failed_ = true;
    return {};
  }
  reader sub(raw);
  sub.depth_ = depth_ + 1;
  field_table out;
  while (sub.remaining() > 0) {
    std::string_view key = sub.shortstr();
    field_value v = sub.value();
    if (sub.failed()) {
      failed_ = true;
      return {};
    }
    out.emplace_back(std::string(key), std::move(v));
  }
  return out;
}

field_array reader::array() {
  const std::string_view raw = longstr();
  if (failed_) return {};
  if (depth_ + 1 > max_nesting) {
    failed_ = true;
    return {};
  }
  reader sub(raw);
  sub.depth_ = depth_ + 1;
  field_array out;
  while (sub.remaining() > 0) {
    field_value v = sub.value();
    if (sub.failed()) {
      failed_ = true;
      return {};
    }
    out.push_back(std::move(v));
  }
  return out;
}

field_value reader::value() {
  const uint8_t type = u8();
  if (failed_) return {};
  field_value out;
  switch (type) {
    case 't': out = bool(u8() != 0); break;
    case 'b': out = static_cast<int8_t>(u8()); break;
    case 'B': out = u8(); break;
    case 's': out = static_cast<int16_t>(u16()); break;
    case 'u': out = u16(); break;
    case 'I': out = static_cast<int32_t>(u32()); break;
    case 'i': out = u32(); break;
    case 'l': out = static_cast<int64_t>(u64()); break;
    case 'f': out = std::bit_cast<float>(u32()); break;
    case 'd': out = std::bit_cast<double>(u64()); break;
    case 'D': {
      decimal_value d;
      d.scale = u8();
      d.value = static_cast<int32_t>(u32());
      out = d;
      break;
    }
    case 'S': out = std::string(longstr()); break;
    case 'x': out = byte_array{std::string(longstr())}; break;
    case 'A': out = array(); break;
    case 'T': out = timestamp_value{u64()}; break;
    case 'F': out = table(); break;
    case 'V': break;
    default: failed_ = true; break;
  }
  if (failed_) return {};
  return out;
}

namespace {
// Writes a 4-byte length placeholder; the returned position is patched by end_length.
size_t begin_length(writer& w) {
  const size_t at = w.buffer().size();
  w.u32(0);
  return at;
}
void end_length(std::string& out, size_t at) {
  const auto n = static_cast<uint32_t>(out.size() - at - 4);
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<char>((n >> (24 - 8 * i)) & 0xFF);
}
}  // namespace

void writer::table(const field_table& t) {
  const size_t at = begin_length(*this);
  for (const auto& [key, v] : t) {
    shortstr(key);
    value(v);
  }
  end_length(out_, at);
}

void writer::array(const field_array& a) {
  const size_t at = begin_length(*this);
  for (const auto& v : a) value(v);
  end_length(out_, at);
}

void writer::value(const field_value& fv) {
  std::visit(
      [this](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          u8('V');
        } else if constexpr (std::is_same_v<T, bool>) {
          u8('t');
          u8(x ? 1 : 0);
        } else if constexpr (std::is_same_v<T, int8_t>) {
          u8('b');
          u8(static_cast<uint8_t>(x));
        } else if constexpr (std::is_same_v<T, uint8_t>) {
          u8('B');
          u8(x);
        } else if constexpr (std::is_same_v<T, int16_t>) {
          u8('s');
          u16(static_cast<uint16_t>(x));
        } else if constexpr (std::is_same_v<T, uint16_t>) {
          u8('u');
          u16(x);
        } else if constexpr (std::is_same_v<T, int32_t>) {
          u8('I');
          u32(static_cast<uint32_t>(x));
        } else if constexpr (std::is_same_v<T, uint32_t>) {
          u8('i');
          u32(x);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          u8('l');
          u64(static_cast<uint64_t>(x));
        } else if constexpr (std::is_same_v<T, float>) {
          u8('f');
          u32(std::bit_cast<uint32_t>(x));
        } else if constexpr (std::is_same_v<T, double>) {
          u8('d');
          u64(std::bit_cast<uint64_t>(x));
        } else if constexpr (std::is_same_v<T, decimal_value>) {
          u8('D');
          u8(x.scale);
          u32(static_cast<uint32_t>(x.value));
        } else if constexpr (std::is_same_v<T, std::string>) {
          u8('S');
          longstr(x);
        } else if constexpr (std::is_same_v<T, byte_array>) {
          u8('x');
          longstr(x.bytes);
        } else if constexpr (std::is_same_v<T, timestamp_value>) {
          u8('T');
          u64(x.seconds);
        } else if constexpr (std::is_same_v<T, field_table>) {
          u8('F');
          table(x);
        } else {
          static_assert(std::is_same_v<T, field_array>);
          u8('A');
          array(x);
        }
      },
      fv.v);
}

}  // namespace warren::amqp
