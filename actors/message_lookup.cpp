#include "actors/message_lookup.hpp"

#include <cstdio>

namespace warren {

std::optional<std::string> field_text(const amqp::field_value& v) {
  return std::visit(
    [](const auto& x) -> std::optional<std::string> {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<T, std::monostate>) {
        return std::nullopt;
      } else if constexpr (std::is_same_v<T, bool>) {
        return std::string{x ? "true" : "false"};
      } else if constexpr (std::is_same_v<T, std::string>) {
        return x;
      } else if constexpr (std::is_same_v<T, amqp::byte_array>) {
        return x.bytes;
      } else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", static_cast<double>(x));
        return std::string{buf};
      } else if constexpr (std::is_integral_v<T>) {
        return std::to_string(x);
      } else if constexpr (std::is_same_v<T, amqp::timestamp_value>) {
        return std::to_string(x.seconds);
      } else {
        return std::nullopt;  // tables, arrays, decimals: not comparable in selectors
      }
    },
    v.v);
}

std::optional<std::string> message_lookup::operator()(std::string_view name) {
  if (!decoded_) {
    decoded_ = true;
    if (!amqp::decode_properties(msg_.properties(), props_))
      props_ = {};
  }
  auto& p = props_;
  auto opt = [](const std::optional<std::string>& s) { return s; };
  if (p.headers)
    if (auto v = amqp::find_field(*p.headers, name))
      return field_text(*v);
  if (name == "content-type")
    return opt(p.content_type);
  if (name == "content-encoding")
    return opt(p.content_encoding);
  if (name == "correlation-id" || name == "JMSCorrelationID")
    return opt(p.correlation_id);
  if (name == "reply-to" || name == "JMSReplyTo")
    return opt(p.reply_to);
  if (name == "message-id" || name == "JMSMessageID" || name == "amqp-message-id")
    return opt(p.message_id);
  if (name == "type" || name == "JMSType")
    return opt(p.type);
  if (name == "app-id")
    return opt(p.app_id);
  if (name == "user-id")
    return opt(p.user_id);
  if (name == "expiration" || name == "expires")
    return opt(p.expiration);
  if (name == "priority" || name == "JMSPriority")
    return p.priority ? std::optional<std::string>{std::to_string(*p.priority)}
                      : (name == "JMSPriority" ? std::optional<std::string>{"4"} : std::nullopt);
  if (name == "timestamp" || name == "JMSTimestamp")
    return p.timestamp ? std::optional<std::string>{std::to_string(*p.timestamp * 1000)}
                       : std::nullopt;
  if (name == "persistent")
    return std::string{msg_.delivery_mode() == 2 ? "true" : "false"};
  if (name == "JMSDeliveryMode")
    return std::string{msg_.delivery_mode() == 2 ? "PERSISTENT" : "NON_PERSISTENT"};
  return std::nullopt;
}

}  // namespace warren
