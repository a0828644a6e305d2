// /metrics: renders a stats snapshot plus process numbers in the Prometheus text format,
// through a prometheus-cpp registry built for each scrape and prometheus::TextSerializer.
// Names follow rabbitmq_prometheus where one exists (rabbitmq_queue_messages_ready, ...);
// Warren's own are prefixed warren_. With per_object = false (RabbitMQ's default,
// prometheus.return_per_object_metrics) every family is one aggregated series without
// queue, exchange, connection or channel labels, which bounds the cardinality whatever the
// number of objects; counters of objects that are gone stay in the totals.
// Runs on an HTTP thread; reads only the immutable snapshot and /proc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "metrics/stats_collector.hpp"

namespace warren::metrics {

struct exporter_options {
  bool per_object = false;
  std::string data_dir;  // for warren_store_bytes and rabbitmq_disk_space_available_bytes
  std::string node;      // rabbitmq_identity_info
  std::string cluster;   // rabbitmq_identity_info; the node's name when empty
  // rabbitmq_build_info
  std::string compatible_version, product_name, product_version;
};

// The memory and disk alarms (actors/resource_alarms.hpp) as rabbitmq_prometheus shows them.
struct alarm_gauges {
  bool memory = false;
  bool disk = false;
  uint64_t memory_limit = 0;
  uint64_t disk_limit = 0;
};

std::string render_metrics(const snapshot& snap, const exporter_options& opt,
                           const std::optional<alarm_gauges>& alarms = std::nullopt);

}  // namespace warren::metrics
