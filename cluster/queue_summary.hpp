// The numbers of a node's queues as the management API shows them on every node of the
// cluster (RabbitMQ's /api/queues and /api/consumers list the whole cluster's queues).
//
// Each node's cluster actor sends the summary of its own queues to the running members once a
// second; they keep the last one per node in a remote_queue_store, which the HTTP threads read.
// A node's own queues are summarized from its stats snapshot at each request, so that both
// kinds are shown by the same code.
// What stays true: nothing here runs on the message path; a summary is at most a second older
// than its node's stats snapshot; a node that is down or gone has no summary here.
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
  uint64_t published = 0, delivered = 0, acked = 0, redelivered = 0;
  double publish_rate = 0, deliver_rate = 0, ack_rate = 0, redeliver_rate = 0;
  double depth_rate = 0;  // change of ready + unacked
  std::vector<consumer_stats> consumers;
};

queue_summary summarize(const sample<queue_stats>& q);

// Every queue of this node's snapshot.
std::vector<queue_summary> summarize(const snapshot& snap);

// The last summary of each other running member, by node name.
class remote_queue_store {
public:
  using queues = std::map<std::pair<std::string, std::string>, queue_summary>;  // (vhost, name)

  void set(const std::string& node, std::vector<queue_summary> summary);
  void erase(const std::string& node);
  std::map<std::string, std::shared_ptr<const queues>> get() const;

private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const queues>> nodes_;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, consumer_stats& x) {
  encoded_table args{x.arguments, {}};
  return f(caf::meta::type_name("consumer_stats"), x.tag, x.connection_name, x.user, x.channel,
           x.ack_required, x.exclusive, x.priority, x.prefetch, args, x.activity);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_summary& x) {
  return f(caf::meta::type_name("queue_summary"), x.vhost, x.name, x.ready, x.unacked,
           x.published, x.delivered, x.acked, x.redelivered, x.publish_rate, x.deliver_rate,
           x.ack_rate, x.redeliver_rate, x.depth_rate, x.consumers);
}

}  // namespace warren::metrics
