// Message selectors for the `selector` header of SUBSCRIBE: the SQL-92 conditional
// expression subset of JMS 1.1 §3.8.1 (as in ActiveMQ), evaluated against STOMP headers.
// parse() compiles a selector once; matches() evaluates it per message with SQL three-valued
// logic, UNKNOWN counting as no match. The grammar and the typing of header strings are
// described at the top of selector.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace warren::stomp::selector {

// A selector value; std::monostate is NULL (for a condition: UNKNOWN).
struct value {
  std::variant<std::monostate, bool, int64_t, double, std::string> v;
};

// Returns the value of the named header, or nullopt when the message lacks it (NULL).
using lookup_fn = std::function<std::optional<std::string>(std::string_view name)>;

class expression;  // a compiled selector

struct parse_error {
  size_t position;  // 0-based byte offset into the selector text
  std::string message;
};

struct parse_result {
  std::shared_ptr<const expression> expr;  // null on error
  std::optional<parse_error> error;
};

// Bounds that keep parsing and evaluation safe on hostile input.
inline constexpr size_t max_selector_bytes = 8 << 10;
inline constexpr size_t max_nesting = 100;  // parentheses, NOT and unary signs, together

parse_result parse(std::string_view text);

// True when the selector evaluates to TRUE; FALSE and UNKNOWN are both false.
bool matches(const expression& e, const lookup_fn& lookup);

// The selector's value: bool for a condition, monostate for NULL/UNKNOWN. A bare numeric
// or string expression yields its number or string.
value evaluate(const expression& e, const lookup_fn& lookup);

}  // namespace warren::stomp::selector
