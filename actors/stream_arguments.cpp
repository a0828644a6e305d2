// Stream arguments: RabbitMQ 3.10's checks (rabbit_stream_queue, rabbit_amqqueue) and its
// error terms.
#include "actors/stream_arguments.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <limits>

namespace warren {
namespace {

// The arguments a stream takes; any other x- argument of a queue is refused.
constexpr std::array<std::string_view, 6> stream_keys = {
  "x-queue-type",           "x-max-length-bytes",     "x-max-age",
  "x-stream-max-segment-size-bytes", "x-queue-leader-locator", "x-initial-cluster-size"};

// The queue arguments RabbitMQ knows for other queue types: refused on a stream.
constexpr std::array<std::string_view, 11> other_keys = {
  "x-message-ttl",         "x-expires",        "x-max-length",
  "x-overflow",            "x-dead-letter-exchange", "x-dead-letter-routing-key",
  "x-max-priority",        "x-single-active-consumer", "x-queue-mode",
  "x-delivery-limit",      "x-quorum-initial-group-size"};

template <size_t N>
bool one_of(const std::array<std::string_view, N>& keys, std::string_view k) {
  for (auto key : keys)
    if (key == k)
      return true;
  return false;
}

std::optional<int64_t> positive_int(const amqp::field_value& v, std::string& reason) {
  auto n = v.as_int();
  if (!n) {
    reason = unacceptable_type(v);
    return std::nullopt;
  }
  if (*n < 0) {
    reason = "{value_negative," + std::to_string(*n) + "}";
    return std::nullopt;
  }
  return n;
}

int64_t wall_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

bool is_stream(const amqp::field_table& args) {
  auto v = amqp::find_field(args, "x-queue-type");
  auto s = v ? v->as_string() : nullptr;
  return s && *s == "stream";
}

std::string queue_type(const amqp::field_table& args) {
  return is_stream(args) ? "stream" : is_quorum(args) ? "quorum" : "classic";
}

std::string nack_refusal(const std::string& queue, const std::string& vhost) {
  return "basic.nack and basic.reject not supported by stream queues queue '" + queue +
         "' in vhost '" + vhost + "'";
}

std::optional<int64_t> parse_max_age(const std::string& text) {
  if (text.size() < 2)
    return std::nullopt;
  int64_t n = 0;
  auto last = text.data() + text.size() - 1;
  auto [ptr, ec] = std::from_chars(text.data(), last, n);
  if (ec != std::errc{} || ptr != last || n <= 0)
    return std::nullopt;
  int64_t unit = 0;
  switch (*last) {
    case 'Y': unit = 365LL * 24 * 3600 * 1000; break;
    case 'M': unit = 30LL * 24 * 3600 * 1000; break;
    case 'D': unit = 24LL * 3600 * 1000; break;
    case 'h': unit = 3600LL * 1000; break;
    case 'm': unit = 60LL * 1000; break;
    case 's': unit = 1000; break;
    default: return std::nullopt;
  }
  if (n > std::numeric_limits<int64_t>::max() / unit)
    return std::nullopt;
  return n * unit;
}

std::optional<stream_options> parse_stream_options(const amqp::field_table& args,
                                                   argument_error& error) {
  stream_options o;
  auto fail = [&](const std::string& key, std::string reason) {
    error = argument_error{key, std::move(reason), {}};
    return std::nullopt;
  };
  for (auto& [key, value] : args) {
    std::string reason;
    if (!one_of(stream_keys, key)) {
      if (one_of(other_keys, key)) {
        error = argument_error{key, {}, "invalid arg '" + key + "' for", true};
        return std::nullopt;
      }
      continue;  // unknown keys are kept without meaning, as for other queues
    }
    if (key == "x-max-length-bytes") {
      if (!(o.max_length_bytes = positive_int(value, reason)))
        return fail(key, reason);
    } else if (key == "x-stream-max-segment-size-bytes") {
      auto n = positive_int(value, reason);
      if (!n)
        return fail(key, reason);
      if (*n == 0)
        return fail(key, "{value_zero,0}");
      o.max_segment_bytes = *n;
    } else if (key == "x-max-age") {
      auto s = std::get_if<std::string>(&value.v);
      if (!s)
        return fail(key, unacceptable_type(value));
      if (!(o.max_age_ms = parse_max_age(*s)))
        return fail(key, "invalid_max_age");
    } else if (key == "x-initial-cluster-size") {
      if (!positive_int(value, reason))
        return fail(key, reason);
    } else if (key == "x-queue-leader-locator") {
      if (!std::get_if<std::string>(&value.v))
        return fail(key, unacceptable_type(value));
    }
  }
  return o;
}

std::optional<stream_offset> parse_stream_offset(const amqp::field_value* v, std::string& error) {
  stream_offset o;
  if (!v)
    return o;  // next
  if (auto n = v->as_int()) {
    o.k = stream_offset::kind::offset;
    o.value = *n;
    return o;
  }
  if (auto t = std::get_if<amqp::timestamp_value>(&v->v)) {
    o.k = stream_offset::kind::timestamp;
    o.value = static_cast<int64_t>(std::min<uint64_t>(t->seconds, INT64_MAX / 1000)) * 1000;
    return o;
  }
  auto s = std::get_if<std::string>(&v->v);
  if (s && *s == "first") {
    o.k = stream_offset::kind::first;
  } else if (s && *s == "last") {
    o.k = stream_offset::kind::last;
  } else if (s && *s == "next") {
    o.k = stream_offset::kind::next;
  } else if (auto age = s ? parse_max_age(*s) : std::nullopt) {
    // An interval ("10m"): what the stream took within it.
    o.k = stream_offset::kind::timestamp;
    o.value = wall_now_ms() - *age;
  } else {
    std::string shown = s                                   ? "<<\"" + *s + "\">>"
                        : std::get_if<bool>(&v->v)          ? (std::get<bool>(v->v) ? "true" : "false")
                                                            : "_";
    error = "{invalid_stream_offset_arg,{" + std::string{type_name(*v)} + "," + shown + "}}";
    return std::nullopt;
  }
  return o;
}

}  // namespace warren
