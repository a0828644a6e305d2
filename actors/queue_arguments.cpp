// Queue arguments: RabbitMQ 3.10's checks (rabbit_amqqueue declare_args) and its equivalence
// rule for redeclares (rabbit_misc assert_args_equivalence), with its error terms.
#include "actors/queue_arguments.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>

namespace warren {
namespace {

std::string value_text(const amqp::field_value& v) {
  if (auto n = v.as_int())
    return std::to_string(*n);
  if (auto s = v.as_string())
    return *s;
  if (auto b = std::get_if<bool>(&v.v))
    return *b ? "true" : "false";
  return type_name(v);
}

std::string term(const char* what, int64_t n) {
  return "{" + std::string{what} + "," + std::to_string(n) + "}";
}

// The integer checks: a type of integer, then the range (`limit`: the largest allowed).
std::optional<int64_t> int_arg(const amqp::field_value& v, bool zero_allowed,
                               std::string& reason,
                               int64_t limit = std::numeric_limits<int64_t>::max()) {
  auto n = v.as_int();
  if (!n) {
    reason = "\"expected integer, got " + std::string{type_name(v)} + "\"";
    return std::nullopt;
  }
  if (!zero_allowed && *n == 0) {
    reason = term("value_zero", *n);
    return std::nullopt;
  }
  if (*n < 0) {
    reason = term("value_negative", *n);
    return std::nullopt;
  }
  if (*n > limit) {
    reason = term("value_too_large", *n);
    return std::nullopt;
  }
  return n;
}

// The string arguments; RabbitMQ words a wrong type for these differently.
const std::string* string_arg(const amqp::field_value& v, std::string_view key,
                              argument_error& error) {
  auto s = std::get_if<std::string>(&v.v);
  if (!s)
    error = argument_error{std::string{key}, {},
                           "invalid type '" + std::string{type_name(v)} + "' for arg '" +
                             std::string{key} + "'"};
  return s;
}

// The arguments RabbitMQ checks on declare, in the order it checks them (rabbit_amqqueue
// declare_args; read off RabbitMQ 3.10.8 by declaring with several faults at once), so that
// the fault reported is the same. A redeclare compares them per type (below).
constexpr std::array<const char*, 20> option_keys = {
  "x-expires",          "x-message-ttl",          "x-dead-letter-exchange",
  "x-dead-letter-routing-key", "x-max-length",    "x-max-length-bytes",
  "x-max-in-memory-length", "x-max-in-memory-bytes", "x-max-priority",
  "x-overflow",         "x-queue-mode",           "x-queue-version",
  "x-single-active-consumer", "x-queue-type",     "x-quorum-initial-group-size",
  "x-max-age",          "x-stream-max-segment-size-bytes", "x-queue-leader-locator",
  "x-delivery-limit",   "x-dead-letter-strategy"};
// A redeclare compares only the arguments of the queue's type, in the order of the type's
// list (the queue_arguments of rabbit_classic_queue, rabbit_quorum_queue and
// rabbit_stream_queue: a stream ignores x-message-ttl, a classic queue x-delivery-limit).
constexpr std::array<std::string_view, 13> classic_keys = {
  "x-expires",          "x-message-ttl",          "x-dead-letter-exchange",
  "x-dead-letter-routing-key", "x-max-length",    "x-max-length-bytes",
  "x-max-priority",     "x-overflow",             "x-queue-mode",
  "x-queue-version",    "x-single-active-consumer", "x-queue-type",
  "x-queue-master-locator"};
constexpr std::array<std::string_view, 15> quorum_keys = {
  "x-dead-letter-exchange", "x-dead-letter-routing-key", "x-dead-letter-strategy",
  "x-expires",          "x-max-length",           "x-max-length-bytes",
  "x-max-in-memory-length", "x-max-in-memory-bytes", "x-overflow",
  "x-single-active-consumer", "x-queue-type",     "x-quorum-initial-group-size",
  "x-delivery-limit",   "x-message-ttl",          "x-queue-leader-locator"};
constexpr std::array<std::string_view, 6> stream_keys = {
  "x-max-length-bytes", "x-queue-type",           "x-max-age",
  "x-stream-max-segment-size-bytes", "x-initial-cluster-size", "x-queue-leader-locator"};

// What RabbitMQ 3.10 refuses for one queue type because it belongs to others
// (rabbit_classic_queue and rabbit_quorum_queue capabilities).
constexpr std::array<std::string_view, 9> not_classic = {
  "x-delivery-limit",       "x-dead-letter-strategy", "x-quorum-initial-group-size",
  "x-queue-leader-locator", "x-max-in-memory-length", "x-max-in-memory-bytes",
  "x-initial-cluster-size", "x-max-age",              "x-stream-max-segment-size-bytes"};
constexpr std::array<std::string_view, 7> not_quorum = {
  "x-max-priority",  "x-queue-mode",           "x-queue-master-locator",
  "x-queue-version", "x-initial-cluster-size", "x-max-age",
  "x-stream-max-segment-size-bytes"};

template <size_t N>
bool listed(const std::array<std::string_view, N>& keys, std::string_view k) {
  return std::find(keys.begin(), keys.end(), k) != keys.end();
}

// A string argument with a fixed set of values: RabbitMQ's `bad` term for another value.
const std::string* choice_arg(const amqp::field_value& v, std::initializer_list<const char*> ok,
                              const char* bad, std::string& reason) {
  auto s = std::get_if<std::string>(&v.v);
  if (!s) {
    reason = unacceptable_type(v);
    return nullptr;
  }
  for (auto o : ok)
    if (*s == o)
      return s;
  reason = bad;
  return nullptr;
}

// x-queue-type "classic" is what a queue without one is.
bool default_type(const amqp::field_value* v) {
  auto s = v ? v->as_string() : nullptr;
  return s && *s == "classic";
}

// RabbitMQ's limit for x-max-priority.
constexpr int64_t max_supported_priority = 255;

}  // namespace

bool foreign_queue_argument(const amqp::field_table& args, argument_error& error) {
  bool quorum = is_quorum(args);
  for (auto& [key, value] : args)
    if (quorum ? listed(not_quorum, key) : listed(not_classic, key)) {
      error = argument_error{key, {}, "invalid arg '" + key + "' for", true};
      return true;
    }
  return false;
}

std::string argument_error_text(const argument_error& bad, const std::string& desc,
                                const char* type) {
  if (bad.other_type)
    return bad.text + " " + desc + " of queue type " + type;
  if (bad.text.empty())
    return "invalid arg '" + bad.argument + "' for " + desc + ": " + bad.reason;
  return bad.text + " in " + desc;
}

bool refused_consumer_argument(const amqp::field_table& args, queue_kind kind,
                               argument_error& error) {
  for (auto& [key, value] : args) {
    bool foreign = key == "x-stream-offset"           ? kind != queue_kind::stream
                   : key == "x-cancel-on-ha-failover" ? kind != queue_kind::classic
                   : key == "x-priority"              ? kind == queue_kind::stream
                                                      : false;
    if (foreign) {
      error = argument_error{key, {}, "invalid arg '" + key + "' for", true};
      return true;
    }
    if (key == "x-priority" && !value.as_int()) {
      error = argument_error{key, "\"expected integer, got " + std::string{type_name(value)} + "\"",
                             {}};
      return true;
    }
    if (key == "x-cancel-on-ha-failover" && !std::holds_alternative<bool>(value.v)) {
      error = argument_error{key, unacceptable_type(value), {}};
      return true;
    }
  }
  return false;
}

bool is_quorum(const amqp::field_table& args) {
  auto v = amqp::find_field(args, "x-queue-type");
  auto s = v ? v->as_string() : nullptr;
  return s && *s == "quorum";
}

const char* type_name(const amqp::field_value& v) {
  static constexpr std::array<const char*, 17> names = {
    "void",   "bool",   "byte",    "unsignedbyte", "short",  "unsignedshort",
    "signedint", "unsignedint", "long", "float",   "double", "decimal",
    "longstr", "binary", "timestamp", "table",     "array"};
  return names[v.v.index()];
}

std::string unacceptable_type(const amqp::field_value& v) {
  return "{unacceptable_type," + std::string{type_name(v)} + "}";
}

std::optional<queue_options> parse_queue_options(const amqp::field_table& args,
                                                 argument_error& error) {
  queue_options o;
  o.quorum = is_quorum(args);
  auto fail = [&](const std::string& key, std::string reason) {
    error = argument_error{key, std::move(reason), {}};
    return std::nullopt;
  };
  for (std::string_view name : option_keys) {
    auto* found = amqp::find_field(args, name);
    if (!found)
      continue;
    const std::string key{name};
    const auto& value = *found;
    std::string reason;
    if (key == "x-delivery-limit") {
      o.delivery_limit = value.as_int();
    } else if (key == "x-dead-letter-strategy") {
      if (!choice_arg(value, {"at-most-once", "at-least-once"}, "invalid_dlx_strategy", reason))
        return fail(key, reason);
    } else if (key == "x-quorum-initial-group-size") {
      if (!int_arg(value, false, reason))
        return fail(key, reason);
    } else if (key == "x-max-in-memory-length" || key == "x-max-in-memory-bytes") {
      if (!int_arg(value, true, reason))
        return fail(key, reason);
    } else if (key == "x-queue-leader-locator") {
      if (!choice_arg(value, {"client-local", "balanced", "random", "least-leaders"},
                      "invalid_queue_locator_arg", reason))
        return fail(key, reason);
    } else if (key == "x-message-ttl") {
      if (!(o.message_ttl = int_arg(value, true, reason, max_expiry_ms)))
        return fail(key, reason);
    } else if (key == "x-expires") {
      if (!(o.expires = int_arg(value, false, reason, max_expiry_ms)))
        return fail(key, reason);
    } else if (key == "x-max-length") {
      if (!(o.max_length = int_arg(value, true, reason)))
        return fail(key, reason);
    } else if (key == "x-max-length-bytes") {
      if (!(o.max_length_bytes = int_arg(value, true, reason)))
        return fail(key, reason);
    } else if (key == "x-overflow") {
      auto s = string_arg(value, key, error);
      if (!s)
        return std::nullopt;
      if (*s == "drop-head")
        o.overflow = overflow_mode::drop_head;
      else if (*s == "reject-publish")
        o.overflow = overflow_mode::reject_publish;
      else if (*s == "reject-publish-dlx")  // a quorum queue has none: RabbitMQ 3.10 logs it
        o.overflow = o.quorum ? overflow_mode::drop_head : overflow_mode::reject_publish_dlx;
      else
        return fail(key, "invalid_overflow");
    } else if (key == "x-dead-letter-exchange") {
      auto s = string_arg(value, key, error);
      if (!s)
        return std::nullopt;
      o.dead_letter_exchange = *s;
    } else if (key == "x-dead-letter-routing-key") {
      auto s = string_arg(value, key, error);
      if (!s)
        return std::nullopt;
      if (!amqp::find_field(args, "x-dead-letter-exchange"))
        return fail(key, "routing_key_but_no_dlx_defined");
      o.dead_letter_routing_key = *s;
    } else if (key == "x-max-priority") {
      auto n = int_arg(value, true, reason);
      if (!n)
        return fail(key, reason);
      if (*n > max_supported_priority)
        return fail(key, term("max_value_exceeded", *n));
      o.max_priority = static_cast<uint8_t>(*n);
    } else if (key == "x-queue-mode") {
      // Lazy or not, a classic queue here keeps what queue_memory_mb allows in memory.
      auto s = std::get_if<std::string>(&value.v);
      if (!s)
        return fail(key, unacceptable_type(value));
      if (*s != "default" && *s != "lazy")
        return fail(key, "\"unsupported queue mode '" + *s + "'\"");
    } else if (key == "x-queue-version") {
      // Both of RabbitMQ's classic queue index versions are the one store here.
      auto n = int_arg(value, true, reason);
      if (!n)
        return fail(key, reason);
      if (*n != 1 && *n != 2)
        return fail(key, "\"unsupported queue version '" + std::to_string(*n) + "'\"");
    } else if (key == "x-single-active-consumer") {
      auto b = std::get_if<bool>(&value.v);
      if (!b)
        return fail(key, unacceptable_type(value));
      o.single_active_consumer = *b;
    }
  }
  return o;
}

std::string argument_difference(const amqp::field_value* a, const amqp::field_value* b) {
  auto describe = [](const amqp::field_value* v) {
    if (!v)
      return std::string{"none"};
    return "the value '" + value_text(*v) + "' of type '" + type_name(*v) + "'";
  };
  if (!a && !b)
    return {};
  if (a && b) {
    auto x = a->as_int(), y = b->as_int();
    if (x && y ? *x == *y : *a == *b)
      return {};
    return "received '" + value_text(*b) + "' but current is '" + value_text(*a) + "'";
  }
  return "received " + describe(b) + " but current is " + describe(a);
}

std::string inequivalent_queue_argument(const amqp::field_table& current,
                                        const amqp::field_table& received, std::string& detail) {
  auto compare = [&](auto& keys) -> std::string {
    for (std::string_view key : keys) {
      auto a = amqp::find_field(current, key);
      auto b = amqp::find_field(received, key);
      if (key == "x-queue-type" && (a || b) && (a ? default_type(a) : default_type(b)) &&
          (!a || !b))
        continue;
      detail = argument_difference(a, b);
      if (!detail.empty())
        return std::string{key};
    }
    return {};
  };
  if (is_quorum(current))
    return compare(quorum_keys);
  auto type = amqp::find_field(current, "x-queue-type");
  auto name = type ? type->as_string() : nullptr;
  return name && *name == "stream" ? compare(stream_keys) : compare(classic_keys);
}

std::optional<int64_t> parse_expiration(std::string_view text, std::string& reason) {
  // Erlang's string:to_integer: an optional sign, then digits; anything after is left over.
  size_t digits_at = !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
  size_t end = digits_at;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9')
    ++end;
  if (end == digits_at) {
    reason = "no_integer";
    return std::nullopt;
  }
  if (end != text.size()) {
    reason = "{leftover_string,\"" + std::string{text.substr(end)} + "\"}";
    return std::nullopt;
  }
  int64_t n = 0;
  auto first = text.data() + digits_at;
  auto [ptr, ec] = std::from_chars(first, text.data() + end, n);
  bool negative = digits_at == 1 && text[0] == '-';
  if (negative && (n != 0 || ec != std::errc{})) {
    reason = "{value_negative," + std::string{text} + "}";
    return std::nullopt;
  }
  if (ec != std::errc{} || n > max_expiry_ms) {
    reason = "{value_too_large," + std::string{text.substr(digits_at)} + "}";
    return std::nullopt;
  }
  return n;
}

}  // namespace warren
