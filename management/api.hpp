// The management HTTP API: RabbitMQ's paths, field names and status codes, over Warren's
// actors. Shared by the files that implement its parts:
//   api_router.cpp       URL decoding, basic auth, dispatch, errors, /metrics and the page
//   api_definitions.cpp  exchanges, queues, bindings: list, declare, delete, purge, publish, get
//   api_access.cpp       vhosts, users, permissions, vhost and user limits, whoami
//   api_stats.cpp        overview, nodes, connections, channels, consumers
//   api_export.cpp       definitions export and import, aliveness-test, parameters
//   api_policies.cpp     policies and operator policies
//   api_query.cpp        columns, sorting and pagination of what a GET answers
//   api_routes.cpp       the methods each path takes (OPTIONS, 405)
// Every request runs on an HTTP thread and asks actors through a scoped actor with a timeout
// (never on an AMQP/STOMP I/O thread); statistics come from the collector's snapshot.
#pragma once

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/access.hpp"
#include "actors/registry_actor.hpp"
#include "actors/vhost_actor.hpp"
#include "cluster/node_stats.hpp"
#include "metrics/prometheus_exporter.hpp"
#include "metrics/stats_collector.hpp"
#include "net/http_server.hpp"

namespace warren::mgmt {

using json = nlohmann::json;

using listener_info = metrics::listener_summary;

// What the API says it is: Warren, and the RabbitMQ whose management API it follows (the
// version tools read to know which fields and paths to expect).
inline constexpr const char* product_name = "Warren";
inline constexpr const char* product_version = "0.1.0";
inline constexpr const char* compatible_version = "3.10.8";

struct context {
  caf::actor_system* sys = nullptr;
  // The registry has a new handle after a restart: looked up at each use.
  caf::actor registry() const { return current_registry(*sys); }
  caf::actor collector;  // asked to refresh an object's numbers after a change through the API
  std::shared_ptr<metrics::snapshot_store> stats;
  // What the other cluster members sent of their queues and connections (never null; empty
  // without a cluster).
  std::shared_ptr<metrics::remote_stats_store> remote_stats =
    std::make_shared<metrics::remote_stats_store>();
  metrics::exporter_options exporter;  // per-object switch, data dir, node name
  std::string node;                    // "warren@<host>"
  std::vector<listener_info> listeners;
  // The listeners that speak TLS, with their certificate files, for the certificate
  // expiration health check (the files are read at each check).
  struct tls_listener {
    listener_info listener;
    std::string certfile;
    std::string cacertfile;
  };
  std::vector<tls_listener> tls_listeners;
  std::string data_dir;
  bool fault_injection = false;  // debug.fault_injection: POST /api/debug/crash/...
};

// The HTTP handler for every path warrend serves.
// `local_loopback`: the client reached a loopback address (loopback_users may log in).
net::http_response handle_http(const context& ctx, const net::http_request& req,
                               bool local_loopback);

// RabbitMQ's load_definitions: imports a definitions document (POST /api/definitions) as an
// administrator; nullopt when it all went in, else why the import stopped (RabbitMQ's reason).
std::optional<std::string> import_definitions(const context& ctx, const std::string& text);

struct reply;

// One authenticated API request.
struct call {
  const context& ctx;
  std::string method;                 // GET, PUT, POST, DELETE, ...
  std::vector<std::string> path;      // after "/api", percent-decoded segments
  std::string query;                  // raw query string
  const std::string& body;
  std::string user;
  std::string reason;                 // X-Reason header (closing a connection)
  caf::scoped_actor& self;
  bool administrator = false;         // the user has the administrator tag
  bool monitor = false;               // administrator or monitoring: sees every connection
  std::map<std::string, permission_info> permissions;  // the user's, by vhost
  json parsed_body() const;           // {} when empty; throws bad_request on malformed JSON

  // RabbitMQ's management rules: an administrator sees every vhost; other users the vhosts
  // they have permissions in.
  bool sees_vhost(const std::string& vhost) const;
  // Whether a connection (or its channels) is shown: all to monitors, else the user's own.
  bool sees_user(const std::string& user) const { return monitor || user == this->user; }
  // What the API changes is checked as the same operation over AMQP would be: 401
  // "Access refused." when the user may not (administrators included).
  std::optional<reply> refuse_unless(access::perm p, access::kind k, const std::string& vhost,
                                     const std::string& name) const;
  bool allows(access::perm p, access::kind k, const std::string& vhost,
              const std::string& name) const;
  // The user's patterns in a vhost, compiled when a handler asks (most requests never do).
  access::vhost_permissions permissions_in(const std::string& vhost) const;
};

// What a handler answers: a status and a JSON body (none for 204).
struct reply {
  unsigned status = 200;
  std::optional<json> body;
  std::string location;  // Location header (201 of a binding)
  std::string attachment;  // Content-Disposition: attachment with this file name
};

reply ok(json body);
reply no_content();
reply created();
reply error_reply(unsigned status, std::string error, std::string reason);
reply not_authorised(std::string reason);  // 401 {"error": "not_authorised", ...}
// A user's tags as stored ("administrator, monitoring"): one entry per tag, spaces trimmed.
std::vector<std::string> split_tags(const std::string& tags);
reply not_found(std::string reason = "Not Found");
reply bad_request(std::string reason);
reply method_not_allowed();
// An AMQP reply code and text from the broker turned into RabbitMQ's HTTP error.
reply from_amqp(uint16_t code, const std::string& text);

// api_routes.cpp: the methods the API path takes ("HEAD, GET, OPTIONS"), RabbitMQ's Allow
// header; and whether `method` is one of them. Every path outside the API takes read_only.
inline constexpr std::string_view read_only = "HEAD, GET, OPTIONS";
std::string_view allowed_methods(const std::vector<std::string>& path);
bool method_allowed(std::string_view allow, std::string_view method);

// Percent-decoding: of a path segment (a malformed escape gives nullopt), or with `form` of a
// query's names and values ('+' is a space, a malformed escape stays as it is; never nullopt).
std::optional<std::string> percent_decode(std::string_view s, bool form = false);

// api_query.cpp: the parameters of a query string, decoded; and the answer of a GET shaped
// by them (columns, sort, sort_reverse, page, page_size, name, use_regex), or a 400 when they
// are invalid.
std::map<std::string, std::string> query_params(std::string_view query);
// A decimal integer, all of `s`; nullopt otherwise.
std::optional<int64_t> parse_int(std::string_view s);
// `s` with ASCII letters in lower case.
std::string lowercase(std::string s);
// `pages`: whether page, page_size, name and use_regex apply (RabbitMQ 3.10 does not page
// /api/users).
std::optional<reply> shape_answer(const std::string& query, json& body, bool pages);

// The API request `method path` with `body`, made from within request `c` (same user, same
// rights, no query): how one part of the API uses another. `as_administrator`: without the
// user's permission checks on the vhost in the path, as RabbitMQ's definitions import (which
// only administrators may use) creates objects.
reply sub_call(call& c, std::string method, std::vector<std::string> path, const json& body,
               bool as_administrator = false);

// Thrown inside a handler for a malformed request; turned into 400 by the router.
struct bad_request_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A field of a request body, as RabbitMQ's API reads it: booleans and integers may also come
// as strings ("true", "10"), which is how rabbitmqadmin sends them. `fallback` when the field
// is absent or null; bad_request_error when it is something else.
bool body_bool(const json& body, const char* key, bool fallback);
int64_t body_int(const json& body, const char* key, int64_t fallback);

// Blocking request/response with a timeout; nullopt (and the reason in `error`) on failure.
template <class T, class... Ts>
std::optional<T> ask(caf::scoped_actor& self, const caf::actor& dest, std::string& error,
                     Ts&&... xs) {
  std::optional<T> out;
  if (!dest) {
    error = "no such actor";
    return out;
  }
  self->request(dest, std::chrono::seconds(15), std::forward<Ts>(xs)...)
    .receive([&](T& x) { out = std::move(x); },
             [&](caf::error& e) { error = self->home_system().render(e); });
  return out;
}

// Helpers over the registry and vhosts.
std::vector<vhost_info> list_vhosts(call& c);
std::optional<caf::actor> find_vhost(call& c, const std::string& name);
std::vector<queue_info> list_queues(call& c, const caf::actor& vhost);
std::vector<exchange_info> list_exchanges(call& c, const caf::actor& vhost);
std::vector<binding_info> list_bindings(call& c, const caf::actor& vhost);

// Has the collector ask `target` for its numbers now, so that the snapshot shows a change
// made through the API sooner than the next interval.
void refresh_stats(call& c, const caf::actor& target);

using conn_sample = metrics::sample<metrics::connection_stats>;

// The numbers of every queue and connection of the cluster, taken once per request: this
// node's snapshot and what the other members sent.
struct cluster_numbers {
  explicit cluster_numbers(const context& ctx);
  // Those of queue q of `vhost`: from the snapshot for a queue of this node, else from its
  // node's summary; nullopt while none has arrived (or its node is down).
  std::optional<metrics::queue_summary> queue(const std::string& vhost,
                                              const queue_info& q) const;
  // f(node, summary) for every queue of the cluster, this node's first.
  template <class F>
  void each_queue(F f) const {
    for (auto& [id, q] : snap->queues)
      f(local_node, metrics::summarize(*q));
    for (auto& [name, n] : remote)
      for (auto& [key, q] : n->queues)
        f(name, q);
  }
  // f(node, sample) for every connection of the cluster, this node's first.
  template <class F>
  void each_connection(F f) const {
    for (auto& [id, c] : snap->connections)
      f(local_node, *c);
    for (auto& [name, n] : remote)
      for (auto& c : n->connections)
        f(name, c);
  }

  std::shared_ptr<const metrics::snapshot> snap;
  std::map<std::string, std::shared_ptr<const metrics::remote_stats_store::node>> remote;
  std::string local_node;
};

// One consumer as /api/consumers and a queue's consumer_details show it.
json consumer_json(const std::string& vhost, const std::string& queue,
                   const metrics::consumer_stats& k);

// {"rate": r}
json rate(double r);
// The connection's RabbitMQ-style name: "peer -> local".
std::string connection_name(const metrics::connection_stats& s);
std::string host_of(const std::string& host_port);
uint16_t port_of(const std::string& host_port);

std::string percent_encode(std::string_view s);

// api_messages.cpp: POST /api/exchanges/{vhost}/{name}/publish and /api/queues/.../get.
reply publish(call& c, const caf::actor& vhost, const std::string& exchange);
reply get_messages(call& c, const caf::actor& queue);

// Handlers by area; each returns nullopt when the path is not theirs.
std::optional<reply> route_definitions(call& c);
std::optional<reply> route_access(call& c);
std::optional<reply> route_stats(call& c);
std::optional<reply> route_debug(call& c);  // api_debug.cpp: fault injection
std::optional<reply> route_cluster(call& c);  // api_cluster.cpp: join and leave
// api_export.cpp: definitions, aliveness-test, parameters
std::optional<reply> route_export(call& c);
// api_policies.cpp: /api/policies and /api/operator-policies.
std::optional<reply> route_policies(call& c);
// Every vhost's policies and operator policies, as RabbitMQ lists them.
std::vector<policy_info> list_policies(call& c);
// {"vhost", "name", "pattern", "apply-to", "definition", "priority"}
json policy_json(const policy_info& p);
// The policy fields of a queue ("policy", "operator_policy", "effective_policy_definition")
// or an exchange ("policy", only while one applies) named `name` in `vhost`.
void add_policy_fields(json& j, const policy_set& policies,
                       const std::string& vhost, const std::string& name, bool queue);
// api_cluster.cpp: every node of the cluster (this one first, as node_json shows it), one of
// them (nullopt: no such node), and the cluster's name.
json cluster_nodes(call& c);
std::optional<json> cluster_node(call& c, const std::string& name);
// /api/health/checks/node-is-quorum-critical and .../node-is-mirror-sync-critical.
reply member_health_check(call& c, const std::string& check);
std::string cluster_name(call& c);
// The same, outside an API call (/metrics).
std::string cluster_name(const context& ctx, caf::scoped_actor& self);
json node_json(call& c);  // api_stats.cpp: this node

}  // namespace warren::mgmt
