// Accessors for AMQP 0-9-1 field values and tables (AMQP 0-9-1 §4.2.5.5). The wire codec for
// them lives in wire.cpp.
#include "protocol/amqp091/field_table.hpp"

namespace warren::amqp {

std::optional<int64_t> field_value::as_int() const {
  return std::visit(
      [](const auto& x) -> std::optional<int64_t> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
          return static_cast<int64_t>(x);
        else
          return std::nullopt;
      },
      v);
}

const std::string* field_value::as_string() const {
  if (const auto* s = std::get_if<std::string>(&v)) return s;
  if (const auto* b = std::get_if<byte_array>(&v)) return &b->bytes;
  return nullptr;
}

const field_table* field_value::as_table() const { return std::get_if<field_table>(&v); }

const field_value* find_field(const field_table& t, std::string_view key) {
  for (const auto& [k, val] : t)
    if (k == key) return &val;
  return nullptr;
}

void erase_field(field_table& t, std::string_view key) {
  std::erase_if(t, [&](const auto& kv) { return kv.first == key; });
}

}  // namespace warren::amqp
