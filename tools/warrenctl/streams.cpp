// Super streams (partitioned streams), laid out as RabbitMQ's `rabbitmq-streams
// add_super_stream` lays them out: an exchange NAME (here of type x-super-stream, which
// routes each message to one partition by a hash of its routing key) and the streams NAME-0 ..
// NAME-N-1, bound to it with the keys "0" .. "N-1" and the binding argument
// x-stream-partition-order. Everything goes through the HTTP API's exchanges, queues and
// bindings; the partition count is the number of streams bound to the exchange.
#include <algorithm>
#include <iostream>
#include <optional>

#include "tools/warrenctl/commands.hpp"

namespace warrenctl {

using json = nlohmann::json;

namespace {

struct super_stream_options {
  long long partitions = -1;
  json arguments = json::object();  // of each partition stream
};

bool parse_count(const std::string& text, long long& out) {
  try {
    size_t used = 0;
    out = std::stoll(text, &used);
    return used == text.size();
  } catch (...) {
    return false;
  }
}

// <name> then --partitions N and, for the partitions, --max-length-bytes N, --max-age AGE,
// --stream-max-segment-size-bytes N.
bool parse_options(const invocation& inv, super_stream_options& o, std::string& error) {
  if (inv.args.empty()) {
    error = "expected <name>";
    return false;
  }
  for (size_t i = 1; i < inv.args.size(); ++i) {
    auto& a = inv.args[i];
    if (i + 1 >= inv.args.size()) {
      error = "option " + a + " needs a value";
      return false;
    }
    auto& v = inv.args[++i];
    long long n = 0;
    if (a == "--partitions") {
      if (!parse_count(v, o.partitions) || o.partitions < 1) {
        error = "--partitions must be a positive number";
        return false;
      }
    } else if (a == "--max-age") {
      o.arguments["x-max-age"] = v;
    } else if (a == "--max-length-bytes" || a == "--stream-max-segment-size-bytes") {
      if (!parse_count(v, n) || n < 0) {
        error = a + " must be a number of bytes";
        return false;
      }
      o.arguments[a == "--max-length-bytes" ? "x-max-length-bytes"
                                            : "x-stream-max-segment-size-bytes"] = n;
    } else {
      error = "unknown option " + a;
      return false;
    }
  }
  return true;
}

std::string partition_name(const std::string& stream, long long i) {
  return stream + "-" + std::to_string(i);
}

// The partition streams bound to the exchange `name`, in partition order; nullopt after
// reporting a failure in `rc` (exit 1 when there is no such super stream).
std::optional<std::vector<std::string>> partitions_of(const invocation& inv,
                                                      const std::string& name, int& rc) {
  auto vhost = encode(inv.vhost);
  auto x = request(inv.ep, "GET", "/api/exchanges/" + vhost + "/" + encode(name));
  if (x.status != 200 || x.json().value("type", "") != "x-super-stream") {
    if (x.status == 200 || x.status == 404) {
      std::cerr << "Error: there is no super stream '" << name << "' in vhost '" << inv.vhost
                << "'\n";
      rc = exit_failed;
    } else {
      rc = failed(x, "looking up the super stream");
    }
    return std::nullopt;
  }
  auto r = request(inv.ep, "GET",
                   "/api/exchanges/" + vhost + "/" + encode(name) + "/bindings/source");
  if (r.status != 200) {
    rc = failed(r, "listing the partitions");
    return std::nullopt;
  }
  std::vector<std::pair<long long, std::string>> found;
  for (auto& b : r.json()) {
    if (b.value("destination_type", "") != "queue")
      continue;
    long long order = 0;
    if (auto a = b.find("arguments"); a != b.end() && a->contains("x-stream-partition-order"))
      order = (*a)["x-stream-partition-order"].get<long long>();
    found.emplace_back(order, b.value("destination", ""));
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> names;
  for (auto& f : found)
    names.push_back(f.second);
  return names;
}

// Declares the streams for partitions [from, to) and binds them in order.
int add_partitions(const invocation& inv, const std::string& name, long long from, long long to,
                   const json& arguments) {
  auto vhost = encode(inv.vhost);
  for (long long i = from; i < to; ++i) {
    auto stream = partition_name(name, i);
    json args = arguments;
    args["x-queue-type"] = "stream";
    json q{{"durable", true}, {"auto_delete", false}, {"arguments", args}};
    if (auto rc = simple(inv, "PUT", "/api/queues/" + vhost + "/" + encode(stream), &q,
                       "declaring partition " + stream);
        rc != exit_ok)
      return rc;
    json b{{"routing_key", std::to_string(i)},
           {"arguments", {{"x-stream-partition-order", i}}}};
    if (auto rc = simple(inv, "POST",
                       "/api/bindings/" + vhost + "/e/" + encode(name) + "/q/" + encode(stream),
                       &b, "binding partition " + stream);
        rc != exit_ok)
      return rc;
  }
  return exit_ok;
}

}  // namespace

int add_super_stream(invocation& inv) {
  super_stream_options o;
  std::string error;
  if (!parse_options(inv, o, error))
    return usage("add_super_stream", error);
  if (o.partitions < 0)
    return usage("add_super_stream", "expected --partitions N");
  auto& name = inv.args[0];
  info(inv, "Adding a super stream \"" + name + "\" with " + std::to_string(o.partitions) +
              " partition(s) to vhost \"" + inv.vhost + "\" ...");
  auto vhost = encode(inv.vhost);
  auto existing = request(inv.ep, "GET", "/api/exchanges/" + vhost + "/" + encode(name));
  if (existing.status == 200) {
    std::cerr << "Error: an exchange named '" << name << "' already exists in vhost '"
              << inv.vhost << "'\n";
    return exit_failed;
  }
  json x{{"type", "x-super-stream"},
         {"durable", true},
         {"auto_delete", false},
         {"arguments", {{"x-super-stream", true}}}};
  if (auto rc = simple(inv, "PUT", "/api/exchanges/" + vhost + "/" + encode(name), &x,
                     "declaring the exchange");
      rc != exit_ok)
    return rc;
  return add_partitions(inv, name, 0, o.partitions, o.arguments);
}

int alter_super_stream(invocation& inv) {
  super_stream_options o;
  std::string error;
  if (!parse_options(inv, o, error))
    return usage("alter_super_stream", error);
  if (o.partitions < 0)
    return usage("alter_super_stream", "expected --partitions N");
  auto& name = inv.args[0];
  int rc = exit_ok;
  auto current = partitions_of(inv, name, rc);
  if (!current)
    return rc;
  auto n = static_cast<long long>(current->size());
  if (o.partitions < n) {  // Kafka's rule: partitions are only ever added
    std::cerr << "Error: the number of partitions of a super stream can only be increased: '"
              << name << "' has " << n << ", " << o.partitions << " would not be an increase\n";
    return exit_failed;
  }
  info(inv, "Raising the partitions of super stream \"" + name + "\" from " +
              std::to_string(n) + " to " + std::to_string(o.partitions) + " ...");
  // New partitions get the arguments of the first one unless others are given.
  if (o.arguments.empty() && !current->empty()) {
    auto q = request(inv.ep, "GET",
                     "/api/queues/" + encode(inv.vhost) + "/" + encode(current->front()));
    if (q.status == 200) {
      auto first = q.json().value("arguments", json::object());
      for (auto& [k, v] : first.items())
        if (k != "x-queue-type")
          o.arguments[k] = v;
    }
  }
  return add_partitions(inv, name, n, o.partitions, o.arguments);
}

int delete_super_stream(invocation& inv) {
  if (inv.args.size() != 1)
    return usage("delete_super_stream", "expected <name>");
  auto& name = inv.args[0];
  int rc = exit_ok;
  auto current = partitions_of(inv, name, rc);
  if (!current)
    return rc;
  info(inv, "Deleting super stream \"" + name + "\" and its " +
              std::to_string(current->size()) + " partition(s) ...");
  auto vhost = encode(inv.vhost);
  for (auto& stream : *current)
    if (rc = simple(inv, "DELETE", "/api/queues/" + vhost + "/" + encode(stream), nullptr,
                  "deleting partition " + stream);
        rc != exit_ok)
      return rc;
  return simple(inv, "DELETE", "/api/exchanges/" + vhost + "/" + encode(name), nullptr,
              "deleting the exchange");
}

int list_super_stream_partitions(invocation& inv) {
  if (inv.args.size() != 1)
    return usage("list_super_stream_partitions", "expected <name>");
  int rc = exit_ok;
  auto current = partitions_of(inv, inv.args[0], rc);
  if (!current)
    return rc;
  if (inv.table_headers)
    std::cout << "partition\tstream\n";
  for (size_t i = 0; i < current->size(); ++i)
    std::cout << i << "\t" << (*current)[i] << "\n";
  return exit_ok;
}

}  // namespace warrenctl
