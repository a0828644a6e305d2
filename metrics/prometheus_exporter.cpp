// Implementation of prometheus_exporter.hpp.
#include "metrics/prometheus_exporter.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <map>

#include "management/json_amqp.hpp"
#include "metrics/node_counters.hpp"
#include "metrics/process_stats.hpp"
#include "metrics/restarts.hpp"

namespace warren::metrics {

namespace {

using labels = prometheus::Labels;

const std::map<std::string, std::string> help_texts = {
  {"rabbitmq_alarms_free_disk_space_watermark",
   "is set to 1 when the free disk space is below the disk_free_limit"},
  {"rabbitmq_alarms_memory_used_watermark",
   "is set to 1 when the memory used reaches the vm_memory_high_watermark"},
  {"rabbitmq_channel_messages_acked_total",
   "Messages acknowledged on a channel"},
  {"rabbitmq_channel_messages_delivered_total",
   "Messages delivered to consumers in automatic acknowledgement mode"},
  {"rabbitmq_channel_messages_delivered_ack_total",
   "Messages delivered to consumers in manual acknowledgement mode"},
  {"rabbitmq_channel_get_total",
   "Messages fetched with basic.get in automatic acknowledgement mode"},
  {"rabbitmq_channel_get_ack_total",
   "Messages fetched with basic.get in manual acknowledgement mode"},
  {"rabbitmq_channel_get_empty_total",
   "Times basic.get found no message"},
  {"rabbitmq_channel_messages_confirmed_total",
   "Messages published into an exchange and confirmed on a channel"},
  {"rabbitmq_channel_messages_unroutable_returned_total",
   "Messages published as mandatory into an exchange and returned to the publisher as "
   "unroutable"},
  {"rabbitmq_channel_messages_unroutable_dropped_total",
   "Messages published as non-mandatory into an exchange and dropped as unroutable (those "
   "the channel learns of: with confirms, in a transaction, or to the default exchange)"},
  {"rabbitmq_channel_consumers",
   "Consumers on a channel"},
  {"rabbitmq_channel_messages_unacked",
   "Delivered but not yet acknowledged messages"},
  {"rabbitmq_channel_messages_unconfirmed",
   "Published but not yet confirmed messages"},
  {"rabbitmq_channel_prefetch",
   "Total limit of unacknowledged messages for all consumers on a channel"},
  {"rabbitmq_channels_opened_total",
   "Total number of channels opened"},
  {"rabbitmq_channels_closed_total",
   "Total number of channels closed"},
  {"rabbitmq_queues_declared_total",
   "Total number of queues declared"},
  {"rabbitmq_queues_created_total",
   "Total number of queues created"},
  {"rabbitmq_queues_deleted_total",
   "Total number of queues deleted"},
  {"rabbitmq_build_info",
   "The API this node follows (rabbitmq_version) and what it is (product_name, "
   "product_version)"},
  {"rabbitmq_process_open_tcp_sockets",
   "Open sockets"},
  {"rabbitmq_process_max_tcp_sockets",
   "Open sockets limit (the open file descriptors limit)"},
  {"rabbitmq_channel_messages_published_total",
   "Messages published into an exchange on a channel"},
  {"rabbitmq_channel_messages_redelivered_total",
   "Messages redelivered to consumers on a channel"},
  {"rabbitmq_channels",
   "Channels currently open"},
  {"rabbitmq_connection_channels",
   "Channels on a connection"},
  {"rabbitmq_connection_incoming_bytes_total",
   "Bytes received from clients on a connection"},
  {"rabbitmq_connection_outgoing_bytes_total",
   "Bytes sent to clients on a connection"},
  {"rabbitmq_connections",
   "Connections currently open"},
  {"rabbitmq_connections_closed_total",
   "Connections closed"},
  {"rabbitmq_connections_opened_total",
   "Connections opened"},
  {"rabbitmq_consumers",
   "Consumers currently connected"},
  {"rabbitmq_disk_space_available_bytes",
   "Disk space available in bytes"},
  {"rabbitmq_disk_space_available_limit_bytes",
   "Free disk space low watermark in bytes"},
  {"rabbitmq_global_messages_dead_lettered_delivery_limit_total",
   "Total number of messages dead-lettered due to delivery-limit exceeded"},
  {"rabbitmq_global_messages_dead_lettered_expired_total",
   "Total number of messages dead-lettered due to message TTL exceeded"},
  {"rabbitmq_global_messages_dead_lettered_maxlen_total",
   "Total number of messages dead-lettered due to overflow drop-head or reject-publish-dlx"},
  {"rabbitmq_global_messages_dead_lettered_rejected_total",
   "Total number of messages dead-lettered due to basic.reject or basic.nack"},
  {"rabbitmq_identity_info",
   "Node and cluster identity"},
  {"rabbitmq_process_max_fds",
   "Open file descriptors limit"},
  {"rabbitmq_process_open_fds",
   "Open file descriptors"},
  {"rabbitmq_process_resident_memory_bytes",
   "Memory used in bytes"},
  {"rabbitmq_resident_memory_limit_bytes",
   "Memory high watermark in bytes"},
  {"rabbitmq_queue_consumers",
   "Consumers on a queue"},
  {"rabbitmq_queue_messages",
   "Sum of ready and unacknowledged messages"},
  {"rabbitmq_queue_messages_acked_total",
   "Messages acknowledged by consumers"},
  {"rabbitmq_queue_messages_delivered_total",
   "Messages delivered to consumers or fetched with basic.get"},
  {"rabbitmq_queue_messages_published_total",
   "Messages published to queues"},
  {"rabbitmq_queue_messages_ready",
   "Messages ready to be delivered to consumers"},
  {"rabbitmq_queue_messages_redelivered_total",
   "Messages delivered again (the redelivered flag set)"},
  {"rabbitmq_queue_messages_unacked",
   "Messages delivered to consumers but not yet acknowledged"},
  {"rabbitmq_queues",
   "Queues available"},
  {"warren_actor_mailbox_length",
   "Messages waiting in an actor's mailbox"},
  {"warren_actor_restarts_total",
   "Actors restarted by their supervisor"},
  {"warren_exchange_messages_routed_total",
   "Messages an exchange routed to at least one queue or exchange"},
  {"warren_exchange_messages_unroutable_total",
   "Messages an exchange could route nowhere (dropped or returned)"},
  {"warren_store_bytes",
   "Bytes on disk under the data directory (catalog, messages)"},
  {"warren_uptime_seconds",
   "Seconds since warrend started"},
};

std::string help_of(const std::string& name) {
  auto it = help_texts.find(name);
  return it == help_texts.end() ? std::string{} : it->second;
}


// Families by name; in aggregated mode the object labels are dropped and values add up.
class exposition {
public:
  explicit exposition(bool per_object) : per_object_(per_object) {}

  void gauge(const std::string& name, const labels& fixed, const labels& object, double v) {
    auto& f = gauges_[name];
    if (!f)
      f = &prometheus::BuildGauge().Name(name).Help(help_of(name)).Register(registry_);
    f->Add(merge(fixed, object)).Increment(v);
  }

  void counter(const std::string& name, const labels& fixed, const labels& object, double v) {
    auto& f = counters_[name];
    if (!f)
      f = &prometheus::BuildCounter().Name(name).Help(help_of(name)).Register(registry_);
    f->Add(merge(fixed, object)).Increment(v);
  }

  bool per_object() const { return per_object_; }

  std::string text() const {
    return prometheus::TextSerializer{}.Serialize(registry_.Collect());
  }

private:
  labels merge(const labels& fixed, const labels& object) const {
    if (!per_object_)
      return fixed;
    labels all = fixed;
    // Object names are AMQP short strings, any octets; Prometheus refuses a whole scrape
    // with one label value that is not UTF-8.
    for (auto& [k, v] : object)
      all.emplace(k, mgmt::utf8_or_replaced(v));
    return all;
  }

  bool per_object_;
  prometheus::Registry registry_;
  std::map<std::string, prometheus::Family<prometheus::Gauge>*> gauges_;
  std::map<std::string, prometheus::Family<prometheus::Counter>*> counters_;
};

// The channel's limit of unacknowledged messages: global if set, else for each consumer.
uint64_t prefetch_of(const channel_stats& ch) {
  return ch.global_prefetch ? ch.global_prefetch : ch.prefetch;
}

std::string connection_name(const connection_stats& c) { return c.peer + " -> " + c.local; }

void queues(exposition& x, const snapshot& snap) {
  const auto& r = snap.retired;
  if (!x.per_object()) {
    // One series each even with no queues; counters start from what stopped queues did.
    for (auto name : {"rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked",
                      "rabbitmq_queue_messages", "rabbitmq_queue_consumers"})
      x.gauge(name, {}, {}, 0);
    x.counter("rabbitmq_queue_messages_published_total", {}, {}, double(r.queue_published));
    x.counter("rabbitmq_queue_messages_delivered_total", {}, {}, double(r.queue_delivered));
    x.counter("rabbitmq_queue_messages_acked_total", {}, {}, double(r.queue_acked));
    x.counter("rabbitmq_queue_messages_redelivered_total", {}, {},
              double(r.queue_redelivered));
  }
  for (auto& [id, s] : snap.queues) {
    auto& q = s->cur;
    labels obj{{"vhost", q.vhost}, {"queue", q.name}};
    x.gauge("rabbitmq_queue_messages_ready", {},
            obj, double(q.ready));
    x.gauge("rabbitmq_queue_messages_unacked", {}, obj,
            double(q.unacked));
    x.gauge("rabbitmq_queue_messages", {}, obj,
            double(q.ready + q.unacked));
    x.gauge("rabbitmq_queue_consumers", {}, obj,
            double(q.consumers.size()));
    x.counter("rabbitmq_queue_messages_published_total", {},
              obj, double(q.published));
    x.counter("rabbitmq_queue_messages_delivered_total", {}, obj,
              double(q.delivered));
    x.counter("rabbitmq_queue_messages_acked_total", {},
              obj, double(q.acked));
    x.counter("rabbitmq_queue_messages_redelivered_total", {}, obj,
              double(q.redelivered));
    x.gauge("warren_actor_mailbox_length", {{"actor", "queue"}}, obj, double(q.mailbox));
  }
  // RabbitMQ's global dead-letter counters: never per object, and all of them always there.
  // dead_letter_strategy "disabled" counts what queues without a dead-letter exchange dropped.
  uint64_t dead[2][2][death_reasons];  // [quorum][dead-letter exchange][reason]
  std::copy(&r.dead_lettered[0][0][0], &r.dead_lettered[0][0][0] + 4 * death_reasons,
            &dead[0][0][0]);
  for (auto& [id, s] : snap.queues)
    for (size_t i = 0; i < death_reasons; ++i)
      dead[s->cur.quorum][s->cur.dead_letter_exchange][i] += s->cur.dead_lettered[i];
  static const char* names[death_reasons] = {
    "rabbitmq_global_messages_dead_lettered_expired_total",
    "rabbitmq_global_messages_dead_lettered_rejected_total",
    "rabbitmq_global_messages_dead_lettered_maxlen_total",
    "rabbitmq_global_messages_dead_lettered_delivery_limit_total"};
  // (delivery_limit is a quorum queue's reason only.)
  for (int quorum = 0; quorum < 2; ++quorum)
    for (int dlx = 0; dlx < 2; ++dlx)
      for (size_t i = 0; i < death_reasons - (quorum ? 0 : 1); ++i)
        x.counter(names[i],
                  {{"queue_type", quorum ? "rabbit_quorum_queue" : "rabbit_classic_queue"},
                   {"dead_letter_strategy", dlx ? "at_most_once" : "disabled"}},
                  {}, double(dead[quorum][dlx][i]));
}

void exchanges(exposition& x, const snapshot& snap) {
  const auto& r = snap.retired;
  if (!x.per_object()) {
    x.counter("warren_exchange_messages_routed_total", {}, {}, double(r.exchange_routed));
    x.counter("warren_exchange_messages_unroutable_total", {}, {},
              double(r.exchange_unroutable));
  }
  for (auto& [id, s] : snap.exchanges) {
    auto& e = s->cur;
    labels obj{{"vhost", e.vhost}, {"exchange", e.name}};
    x.counter("warren_exchange_messages_routed_total", {}, obj,
              double(e.routed));
    x.counter("warren_exchange_messages_unroutable_total", {}, obj,
              double(e.unroutable));
    x.gauge("warren_actor_mailbox_length", {{"actor", "exchange"}}, obj, double(e.mailbox));
  }
}

void connections(exposition& x, const snapshot& snap) {
  const auto& r = snap.retired;
  uint64_t channels = 0;
  if (!x.per_object()) {
    x.gauge("rabbitmq_connection_channels", {}, {}, 0);
    x.counter("rabbitmq_connection_incoming_bytes_total", {}, {}, double(r.recv_oct));
    x.counter("rabbitmq_connection_outgoing_bytes_total", {}, {}, double(r.send_oct));
    for (auto& f : channel_counter_fields)
      x.counter(f.metric, {}, {}, double(r.channels.*f.member));
  }
  channel_stats sum;  // the channel gauges, aggregated
  uint64_t prefetch = 0;
  for (auto& [id, s] : snap.connections) {
    auto& c = s->cur;
    auto name = connection_name(c);
    labels obj{{"vhost", c.vhost}, {"connection", name}};
    x.gauge("rabbitmq_connection_channels", {}, obj,
            double(c.channels.size()));
    x.counter("rabbitmq_connection_incoming_bytes_total", {}, obj, double(c.recv_oct));
    x.counter("rabbitmq_connection_outgoing_bytes_total", {}, obj, double(c.send_oct));
    x.gauge("warren_actor_mailbox_length", {{"actor", "connection"}}, obj, double(c.mailbox));
    channels += c.channels.size();
    // Per channel when per-object; otherwise the connection's totals (closed channels too).
    auto channel_series = [&](const labels& ch, const channel_counters& n) {
      for (auto& f : channel_counter_fields)
        x.counter(f.metric, {}, ch, double(n.*f.member));
    };
    if (x.per_object()) {
      for (auto& ch : c.channels) {
        labels obj{{"vhost", c.vhost},
                   {"channel", name + " (" + std::to_string(ch.number) + ")"}};
        channel_series(obj, ch.counters);
        x.gauge("rabbitmq_channel_consumers", {}, obj, double(ch.consumers));
        x.gauge("rabbitmq_channel_messages_unacked", {}, obj, double(ch.unacked));
        x.gauge("rabbitmq_channel_messages_unconfirmed", {}, obj, double(ch.unconfirmed));
        x.gauge("rabbitmq_channel_prefetch", {}, obj,
                double(prefetch_of(ch)));
      }
    } else {
      channel_series({}, c.totals);
      for (auto& ch : c.channels) {
        sum.consumers += ch.consumers;
        sum.unacked += ch.unacked;
        sum.unconfirmed += ch.unconfirmed;
        prefetch += prefetch_of(ch);
      }
    }
  }
  if (!x.per_object()) {
    x.gauge("rabbitmq_channel_consumers", {}, {}, double(sum.consumers));
    x.gauge("rabbitmq_channel_messages_unacked", {}, {}, double(sum.unacked));
    x.gauge("rabbitmq_channel_messages_unconfirmed", {}, {}, double(sum.unconfirmed));
    x.gauge("rabbitmq_channel_prefetch", {}, {}, double(prefetch));
  }
  x.gauge("rabbitmq_connections", {}, {},
          double(snap.connections.size()));
  x.gauge("rabbitmq_channels", {}, {}, double(channels));
  x.counter("rabbitmq_connections_opened_total", {}, {},
            double(r.connections_opened));
  x.counter("rabbitmq_connections_closed_total", {}, {},
            double(r.connections_closed));
  x.counter("rabbitmq_channels_opened_total", {}, {}, double(counted(node_event::channel_opened)));
  x.counter("rabbitmq_channels_closed_total", {}, {}, double(counted(node_event::channel_closed)));
}

}  // namespace

std::string render_metrics(const snapshot& snap, const exporter_options& opt,
                           const std::optional<alarm_gauges>& alarms) {
  exposition x{opt.per_object};
  queues(x, snap);
  exchanges(x, snap);
  connections(x, snap);
  uint64_t consumers = 0;
  for (auto& [id, s] : snap.queues)
    consumers += s->cur.consumers.size();
  x.gauge("rabbitmq_queues", {}, {}, double(snap.queues.size()));
  x.counter("rabbitmq_queues_declared_total", {}, {}, double(counted(node_event::queue_declared)));
  x.counter("rabbitmq_queues_created_total", {}, {}, double(counted(node_event::queue_created)));
  x.counter("rabbitmq_queues_deleted_total", {}, {}, double(counted(node_event::queue_deleted)));
  x.gauge("rabbitmq_consumers", {}, {}, double(consumers));
  for (auto kind : {"queue", "exchange", "connection"}) {
    if (!x.per_object())  // the series exists even without such actors
      x.gauge("warren_actor_mailbox_length", {{"actor", kind}}, {}, 0);
    x.counter("warren_actor_restarts_total", {{"actor", kind}}, {}, 0);  // (and restarts)
  }
  for (auto& r : restart_counts()) {
    labels object{{"name", r.name}};
    if (!r.vhost.empty())
      object.emplace("vhost", r.vhost);
    x.counter("warren_actor_restarts_total", {{"actor", r.kind}}, object, double(r.restarts));
  }
  x.gauge("rabbitmq_process_resident_memory_bytes", {}, {},
          double(resident_memory_bytes()));
  auto descriptors = open_descriptors(true);
  x.gauge("rabbitmq_process_open_fds", {}, {}, double(descriptors.fds));
  x.gauge("rabbitmq_process_max_fds", {}, {}, double(max_fds()));
  x.gauge("rabbitmq_process_open_tcp_sockets", {}, {}, double(descriptors.sockets));
  x.gauge("rabbitmq_process_max_tcp_sockets", {}, {}, double(max_fds()));
  x.gauge("rabbitmq_disk_space_available_bytes", {}, {},
          double(free_disk_bytes(opt.data_dir)));
  if (alarms) {
    x.gauge("rabbitmq_alarms_memory_used_watermark", {}, {}, alarms->memory ? 1 : 0);
    x.gauge("rabbitmq_alarms_free_disk_space_watermark", {}, {}, alarms->disk ? 1 : 0);
    x.gauge("rabbitmq_resident_memory_limit_bytes", {}, {}, double(alarms->memory_limit));
    x.gauge("rabbitmq_disk_space_available_limit_bytes", {}, {}, double(alarms->disk_limit));
  }
  x.gauge("warren_store_bytes", {}, {}, double(directory_bytes(opt.data_dir)));
  x.gauge("warren_uptime_seconds", {}, {}, uptime_seconds());
  x.gauge("rabbitmq_identity_info",
          {{"rabbitmq_node", opt.node},
           {"rabbitmq_cluster", opt.cluster.empty() ? opt.node : opt.cluster}},
          {}, 1);
  x.gauge("rabbitmq_build_info",
          {{"rabbitmq_version", opt.compatible_version},
           {"product_name", opt.product_name},
           {"product_version", opt.product_version}},
          {}, 1);
  return x.text();
}

}  // namespace warren::metrics
