// AMQP 0-9-1 field tables and field values (AMQP 0-9-1 §4.2.5.5, with RabbitMQ's errata
// type letters: t b B s u I i l f d D S x A T F V).
// Pure value types: the codec decodes into them and encodes from them; actors use them for
// queue/exchange arguments, binding arguments and message headers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace warren::amqp {

struct field_value;
using field_table = std::vector<std::pair<std::string, field_value>>;  // wire order kept
using field_array = std::vector<field_value>;

struct decimal_value {
  uint8_t scale = 0;
  int32_t value = 0;  // RabbitMQ encodes the value as a signed long
  friend bool operator==(const decimal_value&, const decimal_value&) = default;
};

struct timestamp_value {
  uint64_t seconds = 0;
  friend bool operator==(const timestamp_value&, const timestamp_value&) = default;
};

struct byte_array {  // 'x'
  std::string bytes;
  friend bool operator==(const byte_array&, const byte_array&) = default;
};

struct field_value {
  using storage = std::variant<std::monostate,  // 'V' void
                               bool,            // 't'
                               int8_t,          // 'b'
                               uint8_t,         // 'B'
                               int16_t,         // 's'
                               uint16_t,        // 'u'
                               int32_t,         // 'I'
                               uint32_t,        // 'i'
                               int64_t,         // 'l'
                               float,           // 'f'
                               double,          // 'd'
                               decimal_value,   // 'D'
                               std::string,     // 'S' long string
                               byte_array,      // 'x'
                               timestamp_value, // 'T'
                               field_table,     // 'F'
                               field_array>;    // 'A'
  storage v;

  field_value() = default;
  template <class T>
    requires std::is_constructible_v<storage, T&&> &&
             (!std::is_same_v<std::remove_cvref_t<T>, field_value>)
  field_value(T&& x) : v(std::forward<T>(x)) {}
  field_value(const char* s) : v(std::string{s}) {}

  friend bool operator==(const field_value&, const field_value&) = default;

  // Numeric view of any integer type (for x-max-length style arguments); nullopt otherwise.
  std::optional<int64_t> as_int() const;
  // The string, for 'S' and 'x' values; nullptr otherwise.
  const std::string* as_string() const;
  const field_table* as_table() const;
};

// Looks a key up in a table (first match); nullptr when absent.
const field_value* find_field(const field_table& t, std::string_view key);
// Takes every entry of that key out of a table.
void erase_field(field_table& t, std::string_view key);

}  // namespace warren::amqp
