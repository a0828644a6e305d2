// How the messages of messages.hpp cross from one node to another (CAF's inspect protocol,
// used by the middleman's BASP). Within a node nothing is serialized: these run only for
// messages to an actor of another node (cluster/cluster_actor.hpp registers the types).
//
// A message crosses as its parts and is built anew on the other side; field tables as their
// AMQP encoding; a STOMP selector as its source text, compiled again where it arrives.
// Included by messages.hpp only: every translation unit that sends these types must see the
// same inspect() (CAF picks serialization up at compile time).
#pragma once

namespace warren {

std::string encode_arguments(const amqp::field_table& t);
amqp::field_table decode_arguments(const std::string& bytes);

// A field table member of a struct: its AMQP encoding on the wire.
struct encoded_table {
  amqp::field_table& table;
  std::string bytes;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, encoded_table& x) {
  if constexpr (Inspector::reads_state)
    x.bytes = encode_arguments(x.table);
  return f(x.bytes, caf::meta::load_callback([&]() -> caf::error {
             x.table = decode_arguments(x.bytes);
             return caf::none;
           }));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, message_ptr& x) {
  std::string exchange, key, properties, body, routes;
  uint8_t mode = 0;
  bool headers = false, expiration = false, dead_lettered = false;
  if constexpr (Inspector::reads_state) {
    if (x) {
      exchange = x->exchange();
      key = x->routing_key();
      properties = x->properties();
      body = x->body();
      mode = x->delivery_mode();
      headers = x->has_headers();
      expiration = x->has_expiration();
      dead_lettered = x->dead_lettered();
      routes = x->extra_routes();
    }
  }
  return f(caf::meta::type_name("message"), exchange, key, properties, mode, headers,
           expiration, dead_lettered, routes, body,
           caf::meta::load_callback([&]() -> caf::error {
             message::fields fl{exchange, key,           properties, mode,
                                headers,  expiration,    dead_lettered, routes};
             x = message::make(fl, std::move(body));
             return caf::none;
           }));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, publish_item& x) {
  return f(caf::meta::type_name("publish_item"), x.msg, x.seq, x.weight);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, trace_origin& x) {
  return f(caf::meta::type_name("trace_origin"), x.node, x.vhost, x.connection, x.user,
           x.channel);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, publish_batch& x) {
  return f(caf::meta::type_name("publish_batch"), x.publisher, x.channel, x.hops, x.credited,
           x.credited_bytes, x.redelivered, x.items, x.trace);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, weight_return& x) {
  return f(caf::meta::type_name("weight_return"), x.seq, x.weight, x.enqueued, x.rejected);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, route_report& x) {
  return f(caf::meta::type_name("route_report"), x.channel, x.forwarded_batches, x.returns);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, confirm_report& x) {
  return f(caf::meta::type_name("confirm_report"), x.channel, x.returns);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, delivery& x) {
  return f(caf::meta::type_name("delivery"), x.msg, x.msg_id, x.redelivered);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, delivery_batch& x) {
  return f(caf::meta::type_name("delivery_batch"), x.queue, x.consumer_id, x.items);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, consumer_spec& x) {
  encoded_table args{x.arguments, {}};
  return f(caf::meta::type_name("consumer_spec"), x.conn, x.channel, x.consumer_id, x.tag,
           x.no_ack, x.exclusive, x.priority, x.credit, x.prefetch, x.global_qos, args,
           x.selector_text,
           x.connection_name, x.user, x.node,
           caf::meta::load_callback([&]() -> caf::error {
             x.selector = nullptr;
             if (!x.selector_text.empty())
               x.selector = stomp::selector::parse(x.selector_text).expr;
             return caf::none;
           }));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_result& x) {
  return f(caf::meta::type_name("get_result"), x.code, x.text, x.empty, x.d, x.message_count);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, op_result& x) {
  return f(caf::meta::type_name("op_result"), x.code, x.text, x.count, x.stream);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_declared& x) {
  return f(caf::meta::type_name("queue_declared"), x.code, x.text, x.name, x.messages,
           x.consumers, x.queue);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lookup_result& x) {
  return f(caf::meta::type_name("lookup_result"), x.code, x.text, x.target, x.internal, x.topic);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, exchange_spec& x) {
  encoded_table args{x.arguments, {}};
  return f(caf::meta::type_name("exchange_spec"), x.name, x.type, x.passive, x.durable,
           x.auto_delete, x.internal, args, x.refused_if_new, x.stamp);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_spec& x) {
  encoded_table args{x.arguments, {}};
  return f(caf::meta::type_name("queue_spec"), x.name, x.passive, x.durable, x.exclusive,
           x.auto_delete, args, x.owner, x.server_named, x.refused_if_new, x.stamp);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, binding_spec& x) {
  encoded_table args{x.arguments, {}};
  return f(caf::meta::type_name("binding_spec"), x.source, x.destination, x.to_exchange, x.key,
           args, x.conn, x.topic_refused, x.stamp);
}

}  // namespace warren
