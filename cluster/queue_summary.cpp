// Queue summaries: see queue_summary.hpp.
#include "cluster/queue_summary.hpp"

namespace warren::metrics {

queue_summary summarize(const sample<queue_stats>& q) {
  auto& s = q.cur;
  queue_summary out;
  out.vhost = s.vhost;
  out.name = s.name;
  out.ready = s.ready;
  out.unacked = s.unacked;
  out.published = s.published;
  out.delivered = s.delivered;
  out.acked = s.acked;
  out.redelivered = s.redelivered;
  out.publish_rate = q.rate(&queue_stats::published);
  out.deliver_rate = q.rate(&queue_stats::delivered);
  out.ack_rate = q.rate(&queue_stats::acked);
  out.redeliver_rate = q.rate(&queue_stats::redelivered);
  if (q.seconds > 0)
    out.depth_rate =
      (double(s.ready + s.unacked) - double(q.prev.ready + q.prev.unacked)) / q.seconds;
  out.consumers = s.consumers;
  return out;
}

std::vector<queue_summary> summarize(const snapshot& snap) {
  std::vector<queue_summary> out;
  out.reserve(snap.queues.size());
  for (auto& [id, q] : snap.queues)
    out.push_back(summarize(*q));
  return out;
}

void remote_queue_store::set(const std::string& node, std::vector<queue_summary> summary) {
  auto table = std::make_shared<queues>();
  for (auto& q : summary) {
    auto key = std::make_pair(q.vhost, q.name);
    table->emplace(std::move(key), std::move(q));
  }
  std::lock_guard<std::mutex> lock{mutex_};
  nodes_[node] = std::move(table);
}

void remote_queue_store::erase(const std::string& node) {
  std::lock_guard<std::mutex> lock{mutex_};
  nodes_.erase(node);
}

std::map<std::string, std::shared_ptr<const remote_queue_store::queues>>
remote_queue_store::get() const {
  std::lock_guard<std::mutex> lock{mutex_};
  return nodes_;
}

}  // namespace warren::metrics
