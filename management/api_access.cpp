// /api/vhosts, /api/users, /api/permissions, /api/vhost-limits, /api/user-limits and
// /api/whoami over the registry actor, plus
// the helpers every area uses to reach the registry and the vhosts.
#include "management/api.hpp"

#include <algorithm>
#include <set>

#include "persistence/password_hash.hpp"

namespace warren::mgmt {

std::vector<vhost_info> list_vhosts(call& c) {
  std::string error;
  auto r = ask<std::vector<vhost_info>>(c.self, c.ctx.registry(), error, list_atom::value,
                                        vhost_atom::value);
  return r ? std::move(*r) : std::vector<vhost_info>{};
}

std::optional<caf::actor> find_vhost(call& c, const std::string& name) {
  std::string error;
  auto r = ask<lookup_result>(c.self, c.ctx.registry(), error, lookup_atom::value,
                              vhost_atom::value, name);
  if (!r || r->code != 0)
    return std::nullopt;
  return r->target;
}

std::vector<queue_info> list_queues(call& c, const caf::actor& vhost) {
  std::string error;
  auto r = ask<std::vector<queue_info>>(c.self, vhost, error, list_atom::value, queue_atom::value);
  return r ? std::move(*r) : std::vector<queue_info>{};
}

std::vector<exchange_info> list_exchanges(call& c, const caf::actor& vhost) {
  std::string error;
  auto r = ask<std::vector<exchange_info>>(c.self, vhost, error, list_atom::value,
                                           exchange_atom::value);
  return r ? std::move(*r) : std::vector<exchange_info>{};
}

std::vector<binding_info> list_bindings(call& c, const caf::actor& vhost) {
  std::string error;
  auto r = ask<std::vector<binding_info>>(c.self, vhost, error, list_atom::value,
                                          binding_atom::value);
  return r ? std::move(*r) : std::vector<binding_info>{};
}

std::vector<std::string> split_tags(const std::string& tags) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < tags.size()) {
    auto comma = tags.find(',', pos);
    auto t = tags.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    while (!t.empty() && t.front() == ' ')
      t.erase(t.begin());
    while (!t.empty() && t.back() == ' ')
      t.pop_back();
    if (!t.empty())
      out.push_back(std::move(t));
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return out;
}

namespace {

json tags_json(const std::string& tags) {
  json out = json::array();
  for (auto& t : split_tags(tags))
    out.push_back(t);
  return out;
}

// Tags arrive as "a,b" or ["a", "b"]; stored comma-separated.
std::string tags_from(const json& j) {
  if (j.is_string())
    return j.get<std::string>();
  std::string out;
  if (j.is_array())
    for (auto& t : j)
      if (t.is_string())
        out += (out.empty() ? "" : ",") + t.get<std::string>();
  return out;
}

std::vector<limit_info> limits(call& c) {
  std::string error;
  auto r = ask<std::vector<limit_info>>(c.self, c.ctx.registry(), error, list_atom::value,
                                        limit_atom::value);
  return r ? std::move(*r) : std::vector<limit_info>{};
}

// {"max-connections": 10, ...} of one vhost or user.
json limits_json(const std::vector<limit_info>& all, bool user, const std::string& name) {
  json out = json::object();
  for (auto& l : all)
    if (l.user == user && l.name == name)
      out[l.limit] = l.value;
  return out;
}

json user_json(const user_info& u, const std::vector<limit_info>& all) {
  return json{{"name", u.name},
              {"password_hash", u.password_hash},
              {"hashing_algorithm", "rabbit_password_hashing_sha256"},
              {"tags", tags_json(u.tags)},
              {"limits", limits_json(all, true, u.name)}};
}

json permission_json(const permission_info& p) {
  return json{{"user", p.user},
              {"vhost", p.vhost},
              {"configure", p.configure},
              {"write", p.write},
              {"read", p.read}};
}

json vhost_json(const context& ctx, const vhost_info& v, const metrics::snapshot& snap) {
  auto& name = v.name;
  uint64_t ready = 0, unacked = 0, published = 0, delivered = 0;
  for (auto& [id, s] : snap.queues) {
    if (s->cur.vhost != name)
      continue;
    ready += s->cur.ready;
    unacked += s->cur.unacked;
    published += s->cur.published;
    delivered += s->cur.delivered;
  }
  return json{{"name", name},
              {"description", ""},
              {"tags", json::array()},
              {"tracing", v.tracing},
              {"cluster_state", {{ctx.node, "running"}}},
              {"messages", ready + unacked},
              {"messages_ready", ready},
              {"messages_unacknowledged", unacked},
              {"message_stats", {{"publish", published}, {"deliver_get", delivered}}}};
}

std::vector<user_info> users(call& c) {
  std::string error;
  auto r = ask<std::vector<user_info>>(c.self, c.ctx.registry(), error, list_atom::value,
                                       user_atom::value);
  return r ? std::move(*r) : std::vector<user_info>{};
}

std::vector<permission_info> permissions(call& c) {
  std::string error;
  auto r = ask<std::vector<permission_info>>(c.self, c.ctx.registry(), error, list_atom::value,
                                             permission_atom::value);
  return r ? std::move(*r) : std::vector<permission_info>{};
}

reply registry_change(call& c, std::optional<op_result> r, const std::string& error) {
  if (!r)
    return error_reply(500, "internal_server_error", error);
  if (r->code)
    return from_amqp(r->code, r->text);
  return r->count ? created() : no_content();
}

json filtered_permissions(call& c, const std::string* user, const std::string* vhost) {
  json out = json::array();
  for (auto& p : permissions(c))
    if ((!user || p.user == *user) && (!vhost || p.vhost == *vhost))
      out.push_back(permission_json(p));
  return out;
}

// /api/topic-permissions entries: {"user", "vhost", "exchange", "write", "read"}.
json filtered_topic_permissions(call& c, const std::string* user, const std::string* vhost) {
  std::string error;
  auto all = ask<std::vector<topic_permission_info>>(c.self, c.ctx.registry(), error,
                                                     list_atom::value, topic_atom::value);
  json out = json::array();
  if (all)
    for (auto& t : *all)
      if ((!user || t.user == *user) && (!vhost || t.vhost == *vhost))
        out.push_back(json{{"user", t.user},
                           {"vhost", t.vhost},
                           {"exchange", t.exchange},
                           {"write", t.write},
                           {"read", t.read}});
  return out;
}

reply vhosts(call& c) {
  auto snap = c.ctx.stats->get();
  std::string error;
  if (c.path.size() == 1) {
    if (c.method != "GET")
      return method_not_allowed();
    json out = json::array();
    for (auto& v : list_vhosts(c))
      if (c.monitor || c.sees_vhost(v.name))
        out.push_back(vhost_json(c.ctx, v, *snap));
    return ok(out);
  }
  auto& name = c.path[1];
  bool exists = find_vhost(c, name).has_value();
  if (c.path.size() == 3 && (c.path[2] == "permissions" || c.path[2] == "topic-permissions")) {
    if (!exists)
      return not_found("vhost_not_found");
    if (c.method != "GET")
      return method_not_allowed();
    return ok(c.path[2] == "permissions" ? filtered_permissions(c, nullptr, &name)
                                         : filtered_topic_permissions(c, nullptr, &name));
  }
  if (c.path.size() == 3 && (c.path[2] == "connections" || c.path[2] == "channels")) {
    if (!exists)
      return not_found();
    if (c.method != "GET")
      return method_not_allowed();
    auto all = sub_call(c, "GET", {c.path[2]}, nullptr);
    if (all.status != 200 || !all.body)
      return all;
    json out = json::array();
    for (auto& x : *all.body)
      if (x.value("vhost", std::string{}) == name)
        out.push_back(std::move(x));
    return ok(out);
  }
  if (c.path.size() != 2)
    return not_found();
  if (c.method == "GET") {
    for (auto& v : list_vhosts(c))
      if (v.name == name)
        return ok(vhost_json(c.ctx, v, *snap));
    return not_found();
  }
  if (c.method == "PUT") {
    if (name.empty())
      return bad_request("a vhost needs a name");
    // "tracing": the firehose on this node (actors/trace.hpp), as RabbitMQ parses it.
    std::optional<bool> tracing;
    auto body = c.parsed_body();
    if (auto t = body.find("tracing"); t != body.end() && !t->is_null()) {
      if (t->is_boolean())
        tracing = t->get<bool>();
      else if (t->is_string() && (*t == "true" || *t == "false"))
        tracing = *t == "true";
      else
        return bad_request("tracing must be true or false");
    }
    auto r =
      ask<op_result>(c.self, c.ctx.registry(), error, put_atom::value, vhost_atom::value, name);
    if (r && r->code == 0 && r->count) {
      // As RabbitMQ's management API does: whoever creates a vhost may use it.
      ask<op_result>(c.self, c.ctx.registry(), error, put_atom::value,
                     permission_info{c.user, name, ".*", ".*", ".*"});
    }
    if (r && r->code == 0 && tracing)
      r = ask<op_result>(c.self, c.ctx.registry(), error, trace_atom::value, vhost_atom::value,
                         name, *tracing);
    return registry_change(c, std::move(r), error);
  }
  if (c.method == "DELETE") {
    if (!exists)
      return not_found();
    return registry_change(c,
                           ask<op_result>(c.self, c.ctx.registry(), error, delete_atom::value,
                                          vhost_atom::value, name),
                           error);
  }
  return method_not_allowed();
}

// GET /api/users/without-permissions: the users with no permissions in any vhost (topic
// permissions do not count, as in RabbitMQ).
reply users_without_permissions(call& c) {
  if (c.method != "GET")
    return method_not_allowed();
  std::set<std::string> with;
  for (auto& p : permissions(c))
    with.insert(p.user);
  json out = json::array();
  auto all_limits = limits(c);
  for (auto& u : users(c))
    if (!with.count(u.name))
      out.push_back(user_json(u, all_limits));
  return ok(out);
}

// POST /api/users/bulk-delete {"users": [names]}: deletes them in order. As in RabbitMQ, it
// stops at the first name that is no user (those before it are gone), with a 400.
reply delete_users(call& c) {
  if (c.method != "POST")
    return method_not_allowed();
  auto body = c.parsed_body();
  auto list = body.find("users");
  if (list == body.end())
    return bad_request("[{key_missing,users}]");
  if (!list->is_array() ||
      !std::all_of(list->begin(), list->end(), [](const json& n) { return n.is_string(); }))
    return bad_request("users must be a list of user names");
  std::string error;
  std::set<std::string> known;  // (asked once; a name given twice is no user the second time)
  for (auto& u : users(c))
    known.insert(u.name);
  for (auto& n : *list) {
    auto name = n.get<std::string>();
    if (!known.erase(name))
      return reply{400, json{{"error", "bad_request"}, {"reason", {"no_such_user", name}}}, {}, {}};
    auto r = registry_change(c,
                             ask<op_result>(c.self, c.ctx.registry(), error, delete_atom::value,
                                            user_atom::value, name),
                             error);
    if (r.status != 204)
      return r;
  }
  return no_content();
}

reply user_resource(call& c) {
  std::string error;
  if (c.path.size() == 1) {
    if (c.method != "GET")
      return method_not_allowed();
    json out = json::array();
    auto all_limits = limits(c);
    for (auto& u : users(c))
      out.push_back(user_json(u, all_limits));
    return ok(out);
  }
  if (c.path.size() == 2 && c.path[1] == "without-permissions")
    return users_without_permissions(c);
  if (c.path.size() == 2 && c.path[1] == "bulk-delete")
    return delete_users(c);
  auto& name = c.path[1];
  auto all = users(c);
  auto it = std::find_if(all.begin(), all.end(), [&](auto& u) { return u.name == name; });
  if (c.path.size() == 3 && (c.path[2] == "permissions" || c.path[2] == "topic-permissions")) {
    if (it == all.end())
      return not_found("user_not_found");
    if (c.method != "GET")
      return method_not_allowed();
    return ok(c.path[2] == "permissions" ? filtered_permissions(c, &name, nullptr)
                                         : filtered_topic_permissions(c, &name, nullptr));
  }
  if (c.path.size() != 2)
    return not_found();
  if (c.method == "GET")
    return it == all.end() ? not_found() : ok(user_json(*it, limits(c)));
  if (c.method == "PUT") {
    auto body = c.parsed_body();
    user_info u{name, it == all.end() ? std::string{} : it->password_hash,
                it == all.end() ? std::string{} : it->tags};
    if (auto p = body.find("password"); p != body.end()) {
      if (!p->is_string())
        return bad_request("password must be a string");
      u.password_hash = persistence::hash_password(p->get<std::string>());
    } else if (auto h = body.find("password_hash"); h != body.end()) {
      if (!h->is_string())
        return bad_request("password_hash must be a string");
      u.password_hash = h->get<std::string>();
    } else if (it == all.end()) {
      return bad_request("password or password_hash is required");
    }
    if (auto t = body.find("tags"); t != body.end())
      u.tags = tags_from(*t);
    return registry_change(c, ask<op_result>(c.self, c.ctx.registry(), error, put_atom::value, u),
                           error);
  }
  if (c.method == "DELETE") {
    if (it == all.end())
      return not_found();
    return registry_change(c,
                           ask<op_result>(c.self, c.ctx.registry(), error, delete_atom::value,
                                          user_atom::value, name),
                           error);
  }
  return method_not_allowed();
}

reply permission_resource(call& c) {
  std::string error;
  if (c.path.size() == 1)
    return c.method == "GET" ? ok(filtered_permissions(c, nullptr, nullptr)) : method_not_allowed();
  if (c.path.size() != 3)
    return not_found();
  auto& vhost = c.path[1];
  auto& user = c.path[2];
  if (c.method == "GET") {
    auto list = filtered_permissions(c, &user, &vhost);
    return list.empty() ? not_found() : ok(list.front());
  }
  if (c.method == "PUT") {
    auto body = c.parsed_body();
    permission_info p{user, vhost, body.value("configure", std::string{}),
                      body.value("write", std::string{}), body.value("read", std::string{})};
    return registry_change(c, ask<op_result>(c.self, c.ctx.registry(), error, put_atom::value, p),
                           error);
  }
  if (c.method == "DELETE")
    return registry_change(c,
                           ask<op_result>(c.self, c.ctx.registry(), error, delete_atom::value,
                                          permission_atom::value, user, vhost),
                           error);
  return method_not_allowed();
}

// /api/topic-permissions[/{vhost}/{user}]: GET lists, PUT {"exchange", "write", "read"} sets
// one exchange's, DELETE removes all of the user's in the vhost (RabbitMQ's API).
reply topic_permission_resource(call& c) {
  std::string error;
  if (c.path.size() == 1)
    return c.method == "GET" ? ok(filtered_topic_permissions(c, nullptr, nullptr))
                             : method_not_allowed();
  if (c.path.size() != 3)
    return not_found();
  auto& vhost = c.path[1];
  auto& user = c.path[2];
  if (c.method == "GET") {
    auto list = filtered_topic_permissions(c, &user, &vhost);
    return list.empty() ? not_found() : ok(list);
  }
  if (c.method == "PUT") {
    auto body = c.parsed_body();
    auto text = [&](const char* key) {
      auto v = body.find(key);
      return v != body.end() && v->is_string() ? v->get<std::string>() : std::string{};
    };
    topic_permission_info t{user, vhost, text("exchange"), text("write"), text("read")};
    return registry_change(c, ask<op_result>(c.self, c.ctx.registry(), error, put_atom::value, t),
                           error);
  }
  if (c.method == "DELETE")
    return registry_change(c,
                           ask<op_result>(c.self, c.ctx.registry(), error, delete_atom::value,
                                          topic_atom::value, user, vhost),
                           error);
  return method_not_allowed();
}

// /api/vhost-limits and /api/user-limits, as RabbitMQ's: [{"vhost": "/", "value":
// {"max-connections": 10}}], and PUT / DELETE .../{vhost or user}/{limit} with {"value": N}
// (a negative value is no limit).
reply limit_resource(call& c, bool user) {
  std::string error;
  const char* owner = user ? "user" : "vhost";
  auto exists = [&](const std::string& name) {
    if (!user)
      return find_vhost(c, name).has_value();
    auto all = users(c);
    return std::any_of(all.begin(), all.end(), [&](auto& u) { return u.name == name; });
  };
  if (c.path.size() <= 2) {
    if (c.method != "GET")
      return method_not_allowed();
    if (c.path.size() == 2 && !exists(c.path[1]))
      return not_found(std::string{owner} + "_not_found");
    auto all = limits(c);
    std::vector<std::string> names;
    for (auto& l : all)
      if (l.user == user && (c.path.size() == 1 || l.name == c.path[1]) &&
          (user || c.sees_vhost(l.name)) &&
          std::find(names.begin(), names.end(), l.name) == names.end())
        names.push_back(l.name);
    json out = json::array();
    for (auto& name : names)
      out.push_back(json{{owner, name}, {"value", limits_json(all, user, name)}});
    return ok(out);
  }
  if (c.path.size() != 3)
    return not_found();
  auto& name = c.path[1];
  auto& limit = c.path[2];
  if (c.method == "DELETE")
    return registry_change(c,
                           ask<op_result>(c.self, c.ctx.registry(), error, delete_atom::value,
                                          limit_atom::value, user, name, limit),
                           error);
  if (c.method != "PUT")
    return method_not_allowed();
  if (!exists(name))
    return user ? bad_request("no_such_user " + name) : not_found("vhost_not_found");
  auto body = c.parsed_body();
  auto v = body.find("value");
  if (v == body.end() || !v->is_number_integer())
    return bad_request("Validation failed\n\n" + limit + " should be a number, actually was " +
                       (v == body.end() ? std::string{"nothing"} : v->dump()) + "\n");
  if (!known_limit(user, limit))
    return bad_request(std::string{user ? "" : "Validation failed\n\n"} +
                       "Unrecognised terms [{<<\"" + limit + "\">>," + v->dump() + "}] in " +
                       (user ? "user-limits" : "limits") + "\n");
  auto r = ask<op_result>(c.self, c.ctx.registry(), error, put_atom::value,
                          limit_info{user, name, limit, v->get<int64_t>()});
  if (r && r->code == 0)
    return no_content();  // RabbitMQ answers 204 whether or not the limit was set before
  return registry_change(c, std::move(r), error);
}

}  // namespace

std::optional<reply> route_access(call& c) {
  if (c.path.empty())
    return std::nullopt;
  auto& area = c.path[0];
  if (area == "vhosts")
    return vhosts(c);
  if (area == "users")
    return user_resource(c);
  if (area == "permissions")
    return permission_resource(c);
  if (area == "topic-permissions")
    return topic_permission_resource(c);
  if (area == "vhost-limits" || area == "user-limits")
    return limit_resource(c, area == "user-limits");
  if (area == "whoami" && c.path.size() == 1) {
    if (c.method != "GET")
      return method_not_allowed();
    for (auto& u : users(c))
      if (u.name == c.user)
        return ok(json{{"name", u.name}, {"tags", tags_json(u.tags)}});
    return not_found();
  }
  return std::nullopt;
}

}  // namespace warren::mgmt
