// /metrics: renders a stats snapshot plus process numbers in the Prometheus text format,
// through a prometheus-cpp registry built for each scrape and prometheus::TextSerializer.
// Names follow rabbitmq_prometheus where one exists (rabbitmq_queue_messages_ready, ...);
// Warren's own are prefixed warren_. With per_object = false (RabbitMQ's default,
// prometheus.return_per_object_metrics) every family is one aggregated series without
// queue, exchange, connection or channel labels, which bounds the cardinality whatever the
// number of objects; counters of objects that are gone stay in the totals.
// Runs on an HTTP thread; reads only the immutable snapshot and /proc.
#pragma once

#include <string>

#include "metrics/stats_collector.hpp"

namespace warren::metrics {

struct exporter_options {
  bool per_object = false;
  std::string data_dir;  // for warren_store_bytes and rabbitmq_disk_space_available_bytes
  std::string node;      // rabbitmq_identity_info
};

std::string render_metrics(const snapshot& snap, const exporter_options& opt);

}  // namespace warren::metrics
