// What a node shows the others: see node_stats.hpp.
#include "cluster/node_stats.hpp"

namespace warren::metrics {

queue_summary summarize(const sample<queue_stats>& q) {
  auto& s = q.cur;
  queue_summary out;
  out.vhost = s.vhost;
  out.name = s.name;
  out.ready = s.ready;
  out.unacked = s.unacked;
  out.ready_bytes = s.ready_bytes;
  out.unacked_bytes = s.unacked_bytes;
  out.published = s.published;
  out.delivered = s.delivered;
  out.acked = s.acked;
  out.redelivered = s.redelivered;
  out.publish_rate = q.rate(&queue_stats::published);
  out.deliver_rate = q.rate(&queue_stats::delivered);
  out.ack_rate = q.rate(&queue_stats::acked);
  out.redeliver_rate = q.rate(&queue_stats::redelivered);
  out.delivered_no_ack = s.delivered_no_ack;
  out.got_ack = s.got_ack;
  out.got_no_ack = s.got_no_ack;
  out.got_empty = s.got_empty;
  out.deliver_no_ack_rate = q.rate(&queue_stats::delivered_no_ack);
  out.get_ack_rate = q.rate(&queue_stats::got_ack);
  out.get_no_ack_rate = q.rate(&queue_stats::got_no_ack);
  out.get_empty_rate = q.rate(&queue_stats::got_empty);
  if (q.seconds > 0) {
    out.ready_rate = (double(s.ready) - double(q.prev.ready)) / q.seconds;
    out.unacked_rate = (double(s.unacked) - double(q.prev.unacked)) / q.seconds;
    out.depth_rate = out.ready_rate + out.unacked_rate;
  }
  out.consumers = s.consumers;
  return out;
}

node_stats summarize(const snapshot& snap) {
  node_stats out;
  out.queues.reserve(snap.queues.size());
  for (auto& [id, q] : snap.queues)
    out.queues.push_back(summarize(*q));
  out.connections.reserve(snap.connections.size());
  for (auto& [id, c] : snap.connections)
    out.connections.push_back(*c);
  out.closed = snap.retired.channels;
  return out;
}

void remote_stats_store::set(const std::string& name, node_stats stats) {
  auto entry = std::make_shared<node>();
  for (auto& q : stats.queues) {
    auto key = std::make_pair(q.vhost, q.name);
    entry->queues.emplace(std::move(key), std::move(q));
  }
  entry->connections = std::move(stats.connections);
  entry->closed = stats.closed;
  entry->listeners = std::move(stats.listeners);
  std::lock_guard<std::mutex> lock{mutex_};
  nodes_[name] = std::move(entry);
}

void remote_stats_store::erase(const std::string& name) {
  std::lock_guard<std::mutex> lock{mutex_};
  nodes_.erase(name);
}

std::map<std::string, std::shared_ptr<const remote_stats_store::node>>
remote_stats_store::get() const {
  std::lock_guard<std::mutex> lock{mutex_};
  return nodes_;
}

}  // namespace warren::metrics
