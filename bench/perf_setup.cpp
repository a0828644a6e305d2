// Set-up and tear-down of one warren-perf run (see perf_setup.hpp): queue names, AMQP
// declarations and deletions, and the connections of each role in either protocol.
#include "bench/perf_setup.hpp"

#include <algorithm>
#include <cstdio>

#include "bench/perf_stomp.hpp"

namespace warren::perf {

namespace {

int open_failed(const tcp_stream& c, bool by_broker) {
  std::fprintf(stderr, "warren-perf: %s: %s\n", c.name().c_str(), c.error().c_str());
  return by_broker ? 3 : 1;
}
int open_failed(const connection& c) { return open_failed(c, c.closed_by_broker()); }
int open_failed(const stomp_connection& c) { return open_failed(c, c.closed_by_broker()); }

bool declares_exchange(const options& o) {
  return !o.exchange.empty() && o.exchange.rfind("amq.", 0) != 0;
}

// Deletes, then declares the queues (and the exchange, and the bindings) on channel 1.
// A delete of something absent may close the channel (404) on some brokers: reopen it.
bool declare_topology(connection& c, const options& o, const std::vector<std::string>& queues,
                      bool durable) {
  auto tolerate = [&](call_result r) {
    if (r == call_result::channel_closed) return c.open_channel(1) == call_result::ok;
    return r == call_result::ok;
  };
  for (const auto& q : queues) {
    amqp::queue_delete qd;
    qd.queue = q;
    if (!tolerate(c.call<amqp::queue_delete_ok>(1, qd))) return false;
  }
  if (declares_exchange(o)) {
    amqp::exchange_delete ed;
    ed.exchange = o.exchange;
    if (!tolerate(c.call<amqp::exchange_delete_ok>(1, ed))) return false;
    amqp::exchange_declare ex;
    ex.exchange = o.exchange;
    ex.type = o.exchange_type;
    ex.durable = durable;
    if (c.call<amqp::exchange_declare_ok>(1, ex) != call_result::ok) return false;
  }
  auto bind = [&](const std::string& q, const std::string& key) {
    amqp::queue_bind b;
    b.queue = q;
    b.exchange = o.exchange;
    b.routing_key = key;
    return c.call<amqp::queue_bind_ok>(1, b) == call_result::ok;
  };
  for (size_t i = 0; i < queues.size(); ++i) {
    amqp::queue_declare qd;
    qd.queue = queues[i];
    qd.durable = durable || o.queue_type == "stream" || o.queue_type == "quorum";
    if (!o.queue_type.empty())
      qd.arguments.emplace_back("x-queue-type", amqp::field_value{o.queue_type});
    if (c.call<amqp::queue_declare_ok>(1, qd) != call_result::ok) return false;
    if (o.exchange.empty()) continue;
    const auto& keys = o.binding_keys;
    if (!bind(queues[i], keys.empty() ? o.routing_key : keys[i % keys.size()])) return false;
  }
  for (int i = 0; i < o.extra_bindings; ++i)
    if (!bind(queues[static_cast<size_t>(i) % queues.size()], extra_binding_key(i))) return false;
  return true;
}

void delete_topology(connection& c, const options& o, const std::vector<std::string>& queues) {
  for (const auto& q : queues) {
    amqp::queue_delete qd;
    qd.queue = q;
    const auto r = c.call<amqp::queue_delete_ok>(1, qd);
    if (r == call_result::failed) return;
    if (r == call_result::channel_closed && c.open_channel(1) != call_result::ok) return;
  }
  if (declares_exchange(o)) {
    amqp::exchange_delete ed;
    ed.exchange = o.exchange;
    c.call<amqp::exchange_delete_ok>(1, ed);
  }
}

bool has_xb_word(const std::string& key) {
  for (size_t at = 0; at <= key.size();) {
    const size_t dot = std::min(key.find('.', at), key.size());
    if (key.compare(at, 2, "xb") == 0 && dot - at >= 2) return true;
    at = dot + 1;
  }
  return false;
}

int prepare_amqp(const options& o, run_state& rs, run_plan& p) {
  const size_t nq = p.queues.size();
  for (int i = 0; i < o.producers; ++i) {
    auto c = std::make_unique<connection>("warren-perf-producer-" + std::to_string(i));
    if (!c->open(o)) return open_failed(*c);
    if (o.confirm_window &&
        c->call<amqp::confirm_select_ok>(1, amqp::confirm_select{}) != call_result::ok)
      return open_failed(*c);
    producer_config cfg{o.exchange, o.routing_key, {}};
    if (o.exchange.empty() && nq > 1) cfg.routing_key = p.queues[static_cast<size_t>(i) % nq];
    auto* st = p.pstats.emplace_back(std::make_unique<producer_stats>()).get();
    auto* conn = c.get();
    p.workers.emplace_back([conn, cfg, &rs, st] { run_producer(*conn, cfg, rs, *st); });
    p.links.push_back(std::move(c));
  }
  p.subscribe_ns = now_ns();
  for (int j = 0; j < o.consumers; ++j) {
    auto c = std::make_unique<connection>("warren-perf-consumer-" + std::to_string(j));
    if (!c->open(o)) return open_failed(*c);
    if (o.prefetch) {
      amqp::basic_qos q;
      q.prefetch_count = o.prefetch;
      if (c->call<amqp::basic_qos_ok>(1, q) != call_result::ok) return open_failed(*c);
    }
    amqp::basic_consume bc;
    bc.queue = p.queues[static_cast<size_t>(j) % nq];
    bc.consumer_tag = "warren-perf-" + std::to_string(j);
    bc.no_ack = o.auto_ack;
    if (!o.stream_offset.empty())
      bc.arguments.emplace_back("x-stream-offset", stream_offset_argument(o.stream_offset));
    if (c->call<amqp::basic_consume_ok>(1, bc) != call_result::ok) return open_failed(*c);
    auto* st = p.cstats.emplace_back(std::make_unique<consumer_stats>()).get();
    auto* conn = c.get();
    p.workers.emplace_back([conn, &rs, st] { run_consumer(*conn, rs, *st); });
    p.links.push_back(std::move(c));
  }
  return 0;
}

int prepare_stomp(const options& o, run_state& rs, run_plan& p) {
  std::vector<std::string> dests;
  if (!o.destination.empty())
    dests.push_back(o.destination);
  else
    for (const auto& q : p.queues) dests.push_back("/queue/" + q);
  for (int i = 0; i < o.producers; ++i) {
    auto c = std::make_unique<stomp_connection>("warren-perf-producer-" + std::to_string(i));
    if (!c->open(o)) return open_failed(*c);
    producer_config cfg{{}, {}, dests[static_cast<size_t>(i) % dests.size()]};
    auto* st = p.pstats.emplace_back(std::make_unique<producer_stats>()).get();
    auto* conn = c.get();
    p.workers.emplace_back([conn, cfg, &rs, st] { run_stomp_producer(*conn, cfg, rs, *st); });
    p.links.push_back(std::move(c));
  }
  p.subscribe_ns = now_ns();
  const char* ack = o.auto_ack ? "auto" : o.multi_ack_every > 1 ? "client" : "client-individual";
  for (int j = 0; j < o.consumers; ++j) {
    auto c = std::make_unique<stomp_connection>("warren-perf-consumer-" + std::to_string(j));
    if (!c->open(o)) return open_failed(*c);
    stomp::frame sub;
    sub.command = "SUBSCRIBE";
    sub.headers = {{"id", std::to_string(j)},
                   {"destination", dests[static_cast<size_t>(j) % dests.size()]},
                   {"ack", ack}};
    if (o.prefetch) sub.headers.emplace_back("prefetch-count", std::to_string(o.prefetch));
    if (!c->call(sub)) return open_failed(*c);
    auto* st = p.cstats.emplace_back(std::make_unique<consumer_stats>()).get();
    auto* conn = c.get();
    p.workers.emplace_back([conn, &rs, st] { run_stomp_consumer(*conn, rs, *st); });
    p.links.push_back(std::move(c));
  }
  return 0;
}

}  // namespace

std::string extra_binding_key(int i) {
  const std::string w = "xb" + std::to_string(i);
  switch (i % 6) {
    case 0: return w + ".*.c";
    case 1: return "#." + w;
    case 2: return w + ".#";
    case 3: return "*." + w + ".*";
    case 4: return "a." + w + ".c";
    default: return "*.*." + w;
  }
}

int prepare_run(const options& o, run_state& rs, run_plan& p) {
  // Queues: one shared queue, or (fanout/topic) one per consumer, or --queues N.
  const bool per_consumer = !o.exchange.empty() &&
                            (o.exchange_type == "fanout" || o.exchange_type == "topic");
  const int nqueues = o.queues ? o.queues : (per_consumer ? std::max(o.consumers, 1) : 1);
  for (int i = 0; i < nqueues; ++i)
    p.queues.push_back(nqueues == 1 ? o.queue : o.queue + "-" + std::to_string(i));
  if (o.consumers > 0 && o.consumers < nqueues)
    std::fprintf(stderr, "warren-perf: %d queue(s) but only %d consumer(s)\n", nqueues, o.consumers);
  if (o.extra_bindings && has_xb_word(o.routing_key))
    std::fprintf(stderr, "warren-perf: the routing key has a word xb..., which extra bindings "
                         "may match\n");
  if (o.stomp && !o.destination.empty() && nqueues > 1) {
    std::fprintf(stderr, "warren-perf: --destination names one destination; drop --queues\n");
    return 1;
  }

  // The topology, over AMQP: the broker itself, or with --stomp the --amqp-uri address (the
  // queues durable, as a STOMP /queue/ destination declares them).
  options so = o;
  bool amqp_setup = o.declare && !o.stomp;
  if (o.stomp && o.declare && !o.amqp_uri.empty()) {
    std::string err;
    so.port.clear();
    so.tls = false;  // TLS for this address only with amqps://
    parse_uri(o.amqp_uri, so, err);
    if (so.port.empty()) so.port = "5672";
    amqp_setup = o.destination.empty();
    if (!amqp_setup)
      std::fprintf(stderr, "warren-perf: --amqp-uri is ignored with --destination\n");
  }
  if (amqp_setup || !o.stomp) {
    p.setup = std::make_unique<connection>("warren-perf-setup");
    if (!p.setup->open(so)) return open_failed(*p.setup);
    if (amqp_setup && !declare_topology(*p.setup, so, p.queues, o.persistent || o.stomp))
      return open_failed(*p.setup);
    p.declared = amqp_setup;
  }

  // Idle connections first, so that a drain (-x 0) is timed from its subscriptions.
  for (int i = 0; i < o.idle_connections; ++i) {
    const std::string name = "warren-perf-idle-" + std::to_string(i);
    if (o.stomp) {
      auto c = std::make_unique<stomp_connection>(name);
      if (!c->open(o)) return open_failed(*c);
      p.idle.push_back(p.links.emplace_back(std::move(c)).get());
    } else {
      auto c = std::make_unique<connection>(name);
      if (!c->open(o, false)) return open_failed(*c);
      p.idle.push_back(p.links.emplace_back(std::move(c)).get());
    }
  }
  return o.stomp ? prepare_stomp(o, rs, p) : prepare_amqp(o, rs, p);
}

void finish_run(const options& o, run_plan& p) {
  for (auto* c : p.idle) c->close();
  if (!p.setup) return;
  if (p.declared && !o.keep_queues && !p.setup->failed()) delete_topology(*p.setup, o, p.queues);
  p.setup->close();
}

}  // namespace warren::perf
