// The numbers of a node's queues and connections as the management API shows them on every
// node of the cluster (RabbitMQ's /api/queues, /api/consumers, /api/connections and
// /api/channels list the whole cluster's).
//
// Each node's cluster actor sends node_stats to the running members once a second; they keep
// the last one per node in a remote_stats_store, which the HTTP threads read. A node's own
// queues are summarized from its stats snapshot at each request, so that both kinds are shown
// by the same code.
// What stays true: nothing here runs on the message path; what a node shows of another is at
// most a second older than that node's stats snapshot; a node that is down or gone shows
// nothing here.
#pragma once

#include <caf/all.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "actors/messages.hpp"
#include "metrics/stats_collector.hpp"

namespace warren::metrics {

// One queue's numbers, its rates (per second, over the last report interval) and consumers.
struct queue_summary {
  std::string vhost, name;
  uint64_t ready = 0, unacked = 0;
  uint64_t ready_bytes = 0, unacked_bytes = 0;
  uint64_t published = 0, delivered = 0, acked = 0, redelivered = 0;
  uint64_t delivered_no_ack = 0, got_ack = 0, got_no_ack = 0, got_empty = 0;
  double publish_rate = 0, deliver_rate = 0, ack_rate = 0, redeliver_rate = 0;
  double deliver_no_ack_rate = 0, get_ack_rate = 0, get_no_ack_rate = 0, get_empty_rate = 0;
  double depth_rate = 0;  // change of ready + unacked
  double ready_rate = 0, unacked_rate = 0;  // change of each
  std::vector<consumer_stats> consumers;
};

queue_summary summarize(const sample<queue_stats>& q);

// A listener of a node, as /api/overview lists every node's.
struct listener_summary {
  std::string protocol;  // "amqp", "stomp", "http", "clustering", ...
  std::string address;
  uint16_t port = 0;
};

// What a node sends the others: its queues, its connections with their last two reports
// (for rates), the message counters of its connections that closed, and its listeners.
struct node_stats {
  std::vector<queue_summary> queues;
  std::vector<sample<connection_stats>> connections;
  channel_counters closed;
  std::vector<listener_summary> listeners;
};

// This node's, from its snapshot.
node_stats summarize(const snapshot& snap);

// The last node_stats of each other running member, by node name.
class remote_stats_store {
public:
  struct node {
    std::map<std::pair<std::string, std::string>, queue_summary> queues;  // (vhost, name)
    std::vector<sample<connection_stats>> connections;
    channel_counters closed;
    std::vector<listener_summary> listeners;
  };

  void set(const std::string& name, node_stats stats);
  void erase(const std::string& name);
  std::map<std::string, std::shared_ptr<const node>> get() const;

private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const node>> nodes_;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_summary& x) {
  return f(caf::meta::type_name("queue_summary"), x.vhost, x.name, x.ready, x.unacked,
           x.ready_bytes, x.unacked_bytes, x.published, x.delivered, x.acked, x.redelivered,
           x.delivered_no_ack, x.got_ack, x.got_no_ack, x.got_empty, x.publish_rate,
           x.deliver_rate, x.ack_rate, x.redeliver_rate, x.deliver_no_ack_rate, x.get_ack_rate,
           x.get_no_ack_rate, x.get_empty_rate, x.depth_rate,
           x.ready_rate, x.unacked_rate, x.consumers);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sample<connection_stats>& x) {
  return f(caf::meta::type_name("connection_sample"), x.cur, x.prev, x.seconds);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, listener_summary& x) {
  return f(caf::meta::type_name("listener_summary"), x.protocol, x.address, x.port);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_stats& x) {
  return f(caf::meta::type_name("node_stats"), x.queues, x.connections, x.closed, x.listeners);
}

}  // namespace warren::metrics
