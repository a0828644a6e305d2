// The AMQP connection actor: one per client connection, owning all of its channels.
#pragma once

#include <caf/all.hpp>

#include <map>
#include <memory>
#include <string>

#include "actors/messages.hpp"

namespace warren {

namespace net {
class amqp_session;
}

struct broker_settings {
  uint16_t channel_max = 2047;
  uint32_t frame_max = 131072;
  uint16_t heartbeat = 60;
  uint32_t default_credit = 1000;  // window for consumers without a prefetch limit
  // Longest a delivery may stay unacknowledged before its channel is closed (RabbitMQ's
  // consumer_timeout, actors/ack_timeout.hpp); 0: no limit.
  uint32_t consumer_timeout_ms = 1'800'000;
  // SASL mechanisms offered, in order. EXTERNAL (RabbitMQ's rabbitmq_auth_mechanism_ssl)
  // logs in the user a TLS client's certificate names: its subject or, with
  // cert_login_common_name, its common name.
  std::vector<std::string> auth_mechanisms{"PLAIN", "AMQPLAIN"};
  bool cert_login_common_name = false;
  bool stomp_cert_login = false;  // a STOMP CONNECT without login uses the certificate's name
  std::string node;  // this node's name (cluster.name or warren@<host>), for consumers' details
};

caf::actor spawn_connection(caf::actor_system& sys, std::shared_ptr<net::amqp_session> session,
                            std::shared_ptr<const broker_settings> settings);

}  // namespace warren

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<warren::net::amqp_session>)
