// What connection actors report to the stats collector (metrics/stats.hpp): the AMQP
// connection its channels and byte counts, the STOMP connection the same with its
// subscriptions as one channel (number 1). Called when the collector asks, once the
// connection is open, and a last time when its socket closes; reads the actor's own state.
#include <algorithm>

#include "actors/connection_state.hpp"
#include "actors/stomp_state.hpp"

namespace warren {

namespace {

// What every connection reports, whatever its protocol.
template <class Self>
metrics::connection_stats common_stats(Self* self, const char* protocol) {
  auto& st = self->state;
  metrics::connection_stats s;
  s.id = self->id();
  s.addr = self->address();
  s.protocol = protocol;
  s.peer = st.peer;
  s.local = st.local;
  s.user = st.user;
  s.vhost = st.vhost_name;
  s.ssl = st.tls.on;
  s.ssl_protocol = st.tls.protocol;
  s.ssl_cipher = st.tls.cipher;
  s.peer_cert_subject = st.tls.peer_subject;
  s.peer_cert_issuer = st.tls.peer_issuer;
  s.connected_at = st.stats.connected_at;
  s.mailbox = self->mailbox().size();
  s.recv_oct = st.stats.recv_oct;
  s.send_oct = st.stats.send_oct;
  s.recv_cnt = st.stats.recv_cnt;
  s.send_cnt = st.stats.send_cnt;
  return s;
}

}  // namespace

}  // namespace warren

namespace warren::conn {

void report(actor* self, const caf::actor& to, bool final) {
  auto& st = self->state;
  auto s = common_stats(self, "AMQP 0-9-1");
  s.frame_max = st.frame_max;
  s.channel_max = st.channel_max;
  s.heartbeat = st.heartbeat;
  s.client_properties = st.client_properties;
  s.auth_mechanism = st.auth_mechanism;
  s.totals = st.stats.closed_channels;
  for (auto& [n, ch] : st.channels) {
    metrics::channel_stats c;
    c.number = n;
    c.counters = ch.counters;
    c.unacked = static_cast<uint32_t>(ch.unacked.size());
    c.unconfirmed = static_cast<uint32_t>(std::count_if(
      ch.tracked.begin(), ch.tracked.end(), [](const tracked_publish& t) { return t.confirm; }));
    c.consumers = static_cast<uint32_t>(ch.consumers.size());
    c.prefetch = ch.prefetch;
    c.global_prefetch = ch.global_prefetch;
    c.confirm = ch.confirm;
    c.transactional = ch.tx;
    s.totals += ch.counters;
    s.channels.push_back(c);
  }
  s.final = final;
  metrics::send_stats(self, to, std::move(s));
}

}  // namespace warren::conn

namespace warren::stomp_conn {

void report(actor* self, const caf::actor& to, bool final) {
  auto& st = self->state;
  auto s = common_stats(self, st.version == stomp::version::v1_0   ? "STOMP 1.0"
                              : st.version == stomp::version::v1_1 ? "STOMP 1.1"
                                                                   : "STOMP 1.2");
  metrics::channel_stats c;
  c.number = 1;
  c.counters = st.counters;
  c.unacked = static_cast<uint32_t>(st.unacked.size());
  c.consumers = static_cast<uint32_t>(st.subs.size());
  s.channels.push_back(c);
  s.totals = st.counters;
  s.final = final;
  metrics::send_stats(self, to, std::move(s));
}

}  // namespace warren::stomp_conn
