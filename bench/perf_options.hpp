// Command-line options of warren-perf (letters follow RabbitMQ PerfTest where it has them)
// and the parsing of the broker address.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/amqp091/field_table.hpp"

namespace warren::perf {

struct options {
  // Broker
  std::string host = "127.0.0.1";
  std::string port;                  // default 5672, or 61613 with --stomp
  std::string user = "guest";
  std::string pass = "guest";
  std::string vhost = "/";
  bool tls = false;                  // amqps:// or --tls: every connection over TLS
  std::string tls_ca;                // --tls-ca: verify the broker against these CAs
  // Topology
  int producers = 1;                 // -x
  int consumers = 1;                 // -y
  int queues = 0;                    // --queues; 0: one shared queue, or one per consumer
  std::string queue = "warren-perf"; // -u: queue name, or name prefix with several queues
  std::string exchange;              // -e; "" is the default exchange
  std::string exchange_type = "direct";  // -t
  std::string routing_key;           // -k; defaults to the queue name on the default exchange
  std::vector<std::string> binding_keys;  // --binding-keys K1,K2: queue i is bound with K[i % n]
  int extra_bindings = 0;            // --extra-bindings N: never-matching bindings added
  bool declare = true;               // --no-declare turns it off
  bool keep_queues = false;          // --keep-queues: leave the queues after the run
  std::string queue_type;            // --queue-type: x-queue-type of the declared queues
  std::string stream_offset;         // --stream-offset: consumer argument x-stream-offset
  // STOMP
  bool stomp = false;                // --stomp: STOMP 1.2 instead of AMQP 0-9-1
  std::string destination;           // --destination; default /queue/<queue>
  std::string amqp_uri;              // --amqp-uri: AMQP address to delete/declare the queues
  // Messages
  uint32_t body_size = 12;           // -s, at least 12 (timestamp + sequence)
  bool persistent = false;           // -f persistent
  bool mandatory = false;            // -f mandatory
  // Flow
  uint32_t confirm_window = 0;       // -c; 0: no publisher confirms
  uint16_t prefetch = 0;             // -q; 0: no basic.qos
  bool auto_ack = true;              // -a (default); --manual-ack or --multi-ack-every N
  uint32_t multi_ack_every = 1;      // manual ack: basic.ack multiple=true every N messages
  double rate = 0;                   // -r msgs/s per producer; 0: as fast as possible
  double duration_s = 0;             // -z; 0: until -C is reached (or forever)
  uint64_t count = 0;                // -C messages per producer; 0: unlimited
  int batch = 64;                    // --batch: publishes per write when not rate-limited
  int idle_connections = 0;          // --idle-connections
  uint32_t frame_max = 131072;       // --frame-max: upper bound proposed in tune-ok
  // Output
  bool json = false;                 // --json
  bool progress = false;             // --progress
};

// Parses argv into `out`. Returns 0 to run, or an exit status (after printing usage or an
// error) when the program should stop here.
int parse_options(int argc, char** argv, options& out);

// Accepts HOST:PORT, HOST, [V6]:PORT, or amqp://USER:PASS@HOST:PORT/VHOST.
bool parse_uri(const std::string& uri, options& out, std::string& error);

// A consumer's x-stream-offset argument from the command line: a whole number is an offset
// (a signed 64-bit integer), anything else (first, last, next, 10m) goes as a string.
amqp::field_value stream_offset_argument(const std::string& spec);

}  // namespace warren::perf
