#include "actors/trace.hpp"

#include <algorithm>

#include "protocol/amqp091/properties.hpp"

namespace warren::trace {

namespace {

// The message's properties as a table, those it has only, in RabbitMQ's order (last first).
amqp::field_table properties_table(const message& m) {
  amqp::field_table t;
  amqp::basic_properties p;
  if (!amqp::decode_properties(m.properties(), p))
    return t;
  auto text = [&](const char* key, const std::optional<std::string>& v) {
    if (v)
      t.emplace_back(key, *v);
  };
  text("cluster_id", p.cluster_id);
  text("app_id", p.app_id);
  text("user_id", p.user_id);
  text("type", p.type);
  if (p.timestamp)
    t.emplace_back("timestamp", static_cast<int64_t>(*p.timestamp));
  text("message_id", p.message_id);
  text("expiration", p.expiration);
  text("reply_to", p.reply_to);
  text("correlation_id", p.correlation_id);
  if (p.priority)
    t.emplace_back("priority", static_cast<int32_t>(*p.priority));
  if (p.delivery_mode)
    t.emplace_back("delivery_mode", static_cast<int32_t>(*p.delivery_mode));
  if (p.headers)
    t.emplace_back("headers", std::move(*p.headers));
  text("content_encoding", p.content_encoding);
  text("content_type", p.content_type);
  return t;
}

// The headers every trace starts with.
amqp::field_table common_headers(const message& m, const trace_origin& o) {
  amqp::field_array keys;
  keys.emplace_back(std::string{m.routing_key()});
  m.each_extra_route([&](std::string_view k) { keys.emplace_back(std::string{k}); });
  amqp::field_table h;
  h.emplace_back("exchange_name", std::string{m.exchange()});
  h.emplace_back("routing_keys", std::move(keys));
  h.emplace_back("properties", properties_table(m));
  h.emplace_back("node", o.node);
  return h;
}

void add_origin(amqp::field_table& h, const trace_origin& o) {
  h.emplace_back("vhost", o.vhost);
  h.emplace_back("connection", o.connection);
  h.emplace_back("channel", static_cast<int32_t>(o.channel));
  h.emplace_back("user", o.user);
}

message_ptr make(const message& m, std::string routing_key, amqp::field_table headers) {
  amqp::basic_properties p;
  p.headers = std::move(headers);
  std::string props;
  amqp::encode_properties(p, props);
  return message::make({exchange_name, routing_key, props, 0, true, false}, m.body());
}

}  // namespace

message_ptr publish(const message& m, const trace_origin& o,
                    const std::vector<std::string_view>& routed_queues) {
  auto h = common_headers(m, o);
  add_origin(h, o);
  amqp::field_array queues;
  for (auto q : routed_queues)
    queues.emplace_back(std::string{q});
  h.emplace_back("routed_queues", std::move(queues));
  return make(m, "publish." + std::string{m.exchange()}, std::move(h));
}

message_ptr deliver(const message& m, std::string_view queue, bool redelivered,
                    const trace_origin& o) {
  auto h = common_headers(m, o);
  h.emplace_back("redelivered", int32_t{redelivered ? 1 : 0});
  add_origin(h, o);
  return make(m, "deliver." + std::string{queue}, std::move(h));
}

void add_deliveries(std::vector<publish_item>& out, const delivery_batch& b,
                    std::string_view queue, const trace_origin& o) {
  for (auto& d : b.items)
    if (traced(*d.msg))
      out.push_back(publish_item{deliver(*d.msg, queue, d.redelivered, o)});
}

std::vector<std::string_view> default_exchange_queues(const message& m) {
  std::vector<std::string_view> keys{m.routing_key()};
  m.each_extra_route([&](std::string_view k) { keys.push_back(k); });
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

}  // namespace warren::trace
