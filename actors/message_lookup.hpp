// Looks up a named property of a stored message for STOMP selectors (ActiveMQ semantics):
// custom headers (the AMQP headers table), the STOMP names of the standard properties
// (content-type, correlation-id, reply-to, priority, persistent, type, ...), and the JMS names
// ActiveMQ users write (JMSPriority, JMSCorrelationID, JMSType, JMSMessageID, JMSTimestamp,
// JMSDeliveryMode). Properties are decoded once per lookup object, on first use.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "actors/messages.hpp"
#include "protocol/amqp091/properties.hpp"

namespace warren {

class message_lookup {
public:
  explicit message_lookup(const message& m) : msg_(m) {}
  std::optional<std::string> operator()(std::string_view name);

private:
  const message& msg_;
  bool decoded_ = false;
  amqp::basic_properties props_;
};

// The text form of a header value as a STOMP client would see it.
std::optional<std::string> field_text(const amqp::field_value& v);

}  // namespace warren
