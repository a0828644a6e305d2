// POST /api/exchanges/{vhost}/{name}/publish and POST /api/queues/{vhost}/{name}/get, meant
// for testing as in RabbitMQ. The HTTP request's scoped actor stands in for a connection:
// it publishes a tracked message and waits until all of its weight came back (messages.hpp),
// or fetches with basic.get semantics and acks or requeues what it fetched before answering.
#include <algorithm>

#include "actors/queue_arguments.hpp"
#include "management/api.hpp"
#include "management/json_amqp.hpp"
#include "persistence/password_hash.hpp"
#include "protocol/amqp091/header_routes.hpp"
#include "protocol/amqp091/properties.hpp"

namespace warren::mgmt {

namespace {

constexpr auto publish_timeout = std::chrono::seconds(5);

void add_returns(const std::vector<weight_return>& rs, uint64_t& returned, bool& routed) {
  for (auto& w : rs) {
    returned += w.weight;
    routed = routed || (w.enqueued && !w.rejected);
  }
}

json message_json(const get_result& g, bool base64_only, std::optional<size_t> truncate) {
  auto& m = *g.d.msg;
  amqp::basic_properties props;
  amqp::decode_properties(m.properties(), props);
  std::string payload{m.body()};
  if (truncate && payload.size() > *truncate)
    payload.resize(*truncate);
  bool as_string = !base64_only && valid_utf8(payload);
  return json{{"payload_bytes", m.body().size()},
              {"redelivered", g.d.redelivered},
              {"exchange", m.exchange()},
              {"routing_key", m.routing_key()},
              {"message_count", g.message_count},
              {"properties", to_json(props)},
              {"payload", as_string ? payload : persistence::base64_encode(payload)},
              {"payload_encoding", as_string ? "string" : "base64"}};
}

}  // namespace

reply publish(call& c, const caf::actor& vhost, const std::string& exchange) {
  auto body = c.parsed_body();
  auto key = body.value("routing_key", std::string{});
  auto encoding = body.value("payload_encoding", std::string{"string"});
  auto payload = body.value("payload", std::string{});
  if (encoding == "base64") {
    auto raw = persistence::base64_decode(payload);
    if (!raw)
      return bad_request("payload is not valid base64");
    payload = std::move(*raw);
  } else if (encoding != "string") {
    return bad_request("payload_encoding must be string or base64");
  }
  std::string error;
  auto props = properties_from_json(body.value("properties", json::object()), error);
  if (!props)
    return bad_request(error);
  std::string why;
  if (props->expiration && !parse_expiration(*props->expiration, why))
    return bad_request("invalid expiration '" + *props->expiration + "': " + why);
  if (props->user_id && *props->user_id != c.user)  // as basic.publish checks it
    return bad_request("406 PRECONDITION_FAILED - user_id property set to '" + *props->user_id +
                       "' but authenticated user was '" + c.user + "'");
  amqp::header_routes routes;  // CC and BCC, as basic.publish takes them
  if (props->headers) {
    routes = amqp::read_header_routes(*props->headers);
    if (routes.error)
      return bad_request("406 PRECONDITION_FAILED - invalid message: " + *routes.error);
    amqp::erase_field(*props->headers, "BCC");
  }
  std::string properties;
  amqp::encode_properties(*props, properties);
  auto extra = amqp::encode_routes(routes.keys);
  message::fields f{exchange,
                    key,
                    properties,
                    props->delivery_mode.value_or(uint8_t{0}),
                    props->headers.has_value(),
                    props->expiration.has_value(),
                    false,
                    extra};
  auto msg = message::make(f, std::move(payload));

  std::vector<caf::actor> targets;  // an exchange, or the queues the keys name
  if (exchange.empty()) {
    std::vector<std::string> keys{key};
    keys.insert(keys.end(), routes.keys.begin(), routes.keys.end());
    for (auto& k : keys) {
      auto r = ask<lookup_result>(c.self, vhost, error, lookup_atom::value, queue_atom::value, k,
                                  caf::actor{});
      if (r && r->code == 0 &&
          std::find(targets.begin(), targets.end(), r->target) == targets.end())
        targets.push_back(r->target);
    }
    if (targets.empty())
      return ok(json{{"routed", false}});
  } else {
    auto r = ask<lookup_result>(c.self, vhost, error, lookup_atom::value, exchange_atom::value,
                                exchange);
    if (!r || r->code != 0)
      return not_found();
    targets.push_back(r->target);
  }
  uint64_t share = full_weight / targets.size();
  uint64_t returned = full_weight - share * targets.size();
  for (auto& target : targets) {
    publish_batch b;
    b.publisher = caf::actor_cast<caf::actor>(c.self);
    b.channel = 1;
    b.items.push_back(publish_item{msg, 1, share});
    c.self->send(target, publish_atom::value, std::move(b));
  }
  bool routed = false;
  auto deadline = std::chrono::steady_clock::now() + publish_timeout;
  while (returned < full_weight) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero())
      break;
    bool timed_out = false;
    c.self->receive(
      [&](routed_atom, route_report& r) { add_returns(r.returns, returned, routed); },
      [&](confirm_atom, confirm_report& r) { add_returns(r.returns, returned, routed); },
      [&](flow_atom, bool) {},
      caf::after(std::chrono::duration_cast<std::chrono::milliseconds>(left)) >>
        [&] { timed_out = true; });
    if (timed_out)
      break;
  }
  if (exchange.empty())
    for (auto& target : targets)
      refresh_stats(c, target);
  return ok(json{{"routed", routed}});
}

reply get_messages(call& c, const caf::actor& queue) {
  auto body = c.parsed_body();
  auto count = body_int(body, "count", 1);
  auto ackmode = body.value("ackmode", std::string{"ack_requeue_true"});
  auto encoding = body.value("encoding", std::string{"auto"});
  std::optional<size_t> truncate;
  if (auto t = body_int(body, "truncate", -1); t >= 0)
    truncate = static_cast<size_t>(t);
  bool requeue;
  if (ackmode == "ack_requeue_true" || ackmode == "reject_requeue_true")
    requeue = true;
  else if (ackmode == "ack_requeue_false" || ackmode == "reject_requeue_false")
    requeue = false;
  else
    return bad_request("ackmode must be ack_requeue_true, ack_requeue_false, "
                       "reject_requeue_true or reject_requeue_false");
  if (encoding != "auto" && encoding != "base64")
    return bad_request("encoding must be auto or base64");
  json out = json::array();
  std::vector<uint64_t> fetched;
  std::string error;
  auto me = caf::actor_cast<caf::actor>(c.self);
  for (int64_t i = 0; i < count; ++i) {
    // Requeued messages are fetched without ack and handed back at the end, so that the
    // next get in this loop sees the next message.
    auto g = ask<get_result>(c.self, queue, error, get_atom::value, me, !requeue);
    if (!g || g->empty)
      break;
    out.push_back(message_json(*g, encoding == "base64", truncate));
    if (requeue)
      fetched.push_back(g->d.msg_id);
  }
  if (!fetched.empty())
    c.self->send(queue, requeue_atom::value, std::move(fetched), true);
  refresh_stats(c, queue);
  return ok(out);
}

}  // namespace warren::mgmt
