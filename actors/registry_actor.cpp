// The registry actor (one per node): users, vhosts and permissions; see registry_actor.hpp.
// Changes are made in memory first, so that the next request sees them, and answered once the
// catalog committed them.
#include "actors/registry_actor.hpp"

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <optional>
#include <set>
#include <tuple>

#include <spdlog/spdlog.h>

#include "actors/access.hpp"
#include "actors/hardening.hpp"
#include "cluster/definitions.hpp"
#include "metrics/restarts.hpp"
#include "persistence/actors/catalog_actor.hpp"
#include "persistence/password_hash.hpp"
#include "protocol/amqp091/constants.hpp"

namespace warren {

namespace {

struct registry_state {
  vhost_persistence persistence;  // template for new vhosts
  std::map<std::string, caf::actor> vhosts;
  std::map<std::string, user_info> users;
  std::map<std::pair<std::string, std::string>, permission_info> permissions;  // (user, vhost)
  // (user, vhost) -> exchange -> topic permission
  std::map<std::pair<std::string, std::string>, std::map<std::string, topic_permission_info>>
    topic_permissions;
  std::set<std::string> loopback_users;
  // Vhosts whose publishes and deliveries this node traces (actors/trace.hpp); as RabbitMQ's,
  // per node and not kept across a restart.
  std::set<std::string> tracing;
  // Limits: vhost or user name -> limit name -> value (negative: none).
  std::map<std::string, std::map<std::string, int64_t>> vhost_limits, user_limits;
  // Policies and operator policies of every vhost (policy.hpp), by (vhost, operator, name).
  std::map<std::tuple<std::string, bool, std::string>, policy_info> policies;
  // Connections admitted (connection.open, STOMP CONNECT), monitored until they end, and the
  // channels they hold: what the connection and channel limits count.
  struct tracked_connection {
    std::string vhost, user;
    int64_t channels = 0;
  };
  std::map<caf::actor_addr, tracked_connection> connections;
  std::map<std::string, int64_t> vhost_connections, user_connections, user_channels;
  sup::restart_budget budget;  // restarts of vhosts
  // Cluster (cluster/definitions.hpp): the last stamp made or seen here, when each definition
  // was last put (by registry_key), and the deletions kept for members that were not there.
  uint64_t last_stamp = 0;
  std::map<std::string, uint64_t> put_stamps;
  std::map<std::string, registry_change> deletions;
  static inline const char* name = "registry";
};

using registry_actor_t = caf::stateful_actor<registry_state>;

op_result not_found(std::string what) { return op_result{amqp::not_found, std::move(what), 0}; }

// What a put or delete request is about, the same for both ("" for other requests): a vhost,
// a user, a permission, the topic permissions of a user in a vhost, or a limit. `deletion`:
// the request deletes it.
std::string registry_key(const caf::message& m, bool& deletion) {
  auto key = [](std::initializer_list<std::string_view> parts) {
    std::string k;
    for (auto p : parts) {
      k += p;
      k += '\0';
    }
    return k;
  };
  deletion = m.size() > 0 && m.match_element<delete_atom>(0);
  if (m.match_elements<put_atom, vhost_atom, std::string>())
    return key({"vhost", m.get_as<std::string>(2)});
  if (m.match_elements<delete_atom, vhost_atom, std::string>())
    return key({"vhost", m.get_as<std::string>(2)});
  if (m.match_elements<put_atom, user_info>())
    return key({"user", m.get_as<user_info>(1).name});
  if (m.match_elements<delete_atom, user_atom, std::string>())
    return key({"user", m.get_as<std::string>(2)});
  if (m.match_elements<put_atom, permission_info>()) {
    auto& p = m.get_as<permission_info>(1);
    return key({"permission", p.user, p.vhost});
  }
  if (m.match_elements<delete_atom, permission_atom, std::string, std::string>())
    return key({"permission", m.get_as<std::string>(2), m.get_as<std::string>(3)});
  if (m.match_elements<put_atom, topic_permission_info>()) {
    auto& t = m.get_as<topic_permission_info>(1);
    return key({"topic", t.user, t.vhost});
  }
  if (m.match_elements<delete_atom, topic_atom, std::string, std::string>())
    return key({"topic", m.get_as<std::string>(2), m.get_as<std::string>(3)});
  if (m.match_elements<put_atom, limit_info>()) {
    auto& l = m.get_as<limit_info>(1);
    return key({"limit", l.user ? "user" : "vhost", l.name, l.limit});
  }
  if (m.match_elements<delete_atom, limit_atom, bool, std::string, std::string>())
    return key({"limit", m.get_as<bool>(2) ? "user" : "vhost", m.get_as<std::string>(3),
                m.get_as<std::string>(4)});
  if (m.match_elements<put_atom, policy_info>()) {
    auto& p = m.get_as<policy_info>(1);
    return key({"policy", p.operator_policy ? "operator" : "user", p.vhost, p.name});
  }
  if (m.match_elements<delete_atom, policy_atom, std::string, bool, std::string>())
    return key({"policy", m.get_as<bool>(3) ? "operator" : "user", m.get_as<std::string>(2),
                m.get_as<std::string>(4)});
  return {};
}

std::vector<std::string> key_parts(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t end; (end = key.find('\0', start)) != std::string::npos; start = end + 1)
    parts.push_back(key.substr(start, end - start));
  return parts;
}

std::string owner_key(const std::string& kind, const std::string& name) {
  return kind + '\0' + name + '\0';
}

// Whether `key` names a vhost or a user: what permissions, topic permissions, limits and
// policies belong to.
bool is_owner(const std::string& key) {
  auto parts = key_parts(key);
  return parts.size() == 2 && (parts[0] == "vhost" || parts[0] == "user");
}

// The keys of the vhost and the user what `key` names belongs to (none for a vhost or user).
std::vector<std::string> owners_of(const std::string& key) {
  auto p = key_parts(key);
  if ((p.size() == 3 && (p[0] == "permission" || p[0] == "topic")))
    return {owner_key("user", p[1]), owner_key("vhost", p[2])};
  if (p.size() == 4 && p[0] == "limit")
    return {owner_key(p[1], p[2])};
  if (p.size() == 4 && p[0] == "policy")
    return {owner_key("vhost", p[2])};
  return {};
}

// The request that deletes what `key` names (registry_key), empty for no such key.
caf::message deletion_of(const std::string& key) {
  auto parts = key_parts(key);
  auto is = [&](const char* kind, size_t n) { return parts.size() == n && parts[0] == kind; };
  if (is("vhost", 2))
    return caf::make_message(delete_atom::value, vhost_atom::value, parts[1]);
  if (is("user", 2))
    return caf::make_message(delete_atom::value, user_atom::value, parts[1]);
  if (is("permission", 3))
    return caf::make_message(delete_atom::value, permission_atom::value, parts[1], parts[2]);
  if (is("topic", 3))
    return caf::make_message(delete_atom::value, topic_atom::value, parts[1], parts[2]);
  if (is("limit", 4))
    return caf::make_message(delete_atom::value, limit_atom::value, parts[1] == "user",
                             parts[2], parts[3]);
  if (is("policy", 4))
    return caf::make_message(delete_atom::value, policy_atom::value, parts[2],
                             parts[1] == "operator", parts[3]);
  return {};
}

// The catalog keeps the deletions too, so that they hold across a restart.
void keep_deletion(registry_state& st, const std::string& key, uint64_t stamp) {
  if (auto catalog = st.persistence.catalog)
    caf::anon_send(catalog, put_atom::value, persistence::deletion_row{"", "registry", key, stamp});
}

void drop_deletion(registry_state& st, const std::string& key) {
  if (!st.deletions.erase(key))
    return;
  if (auto catalog = st.persistence.catalog)
    caf::anon_send(catalog, delete_atom::value, persistence::deletion_row{"", "registry", key, 0});
}

// What `key` names is made again: its deletion goes, but for a vhost's or user's. That one
// is kept (until pruned): what belonged to the vhost or user deleted then, which a node that
// was away may still have, must not reach the one made again (apply_changes).
void forget_deletion(registry_state& st, const std::string& key) {
  if (!is_owner(key))
    drop_deletion(st, key);
}

uint64_t deletion_stamp(const registry_state& st, const std::string& key) {
  auto it = st.deletions.find(key);
  return it == st.deletions.end() ? 0 : it->second.stamp;
}

// Whether this node deleted what `key` names at `stamp` or later (it keeps that deletion).
bool deleted_since(const registry_state& st, const std::string& key, uint64_t stamp) {
  auto it = st.deletions.find(key);
  return it != st.deletions.end() && it->second.stamp >= stamp;
}

void load_deletions(registry_state& st, const std::vector<persistence::deletion_row>& rows) {
  for (auto& r : rows)
    if (r.kind == "registry")
      if (auto m = deletion_of(r.key); !m.empty())
        st.deletions[r.key] = registry_change{std::move(m), r.stamp};
}

uint64_t put_stamp(const registry_state& st, const std::string& key) {
  auto it = st.put_stamps.find(key);
  return it == st.put_stamps.end() ? 0 : it->second;
}

// Every definition this node has, as the request that would make it, to `f`.
template <class F>
void each_definition(const registry_state& st, F f) {
  auto add = [&](caf::message m) { f(std::move(m)); };
  for (auto& [name, v] : st.vhosts)
    add(caf::make_message(put_atom::value, vhost_atom::value, name));
  for (auto& [name, u] : st.users)
    add(caf::make_message(put_atom::value, u));
  for (auto& [key, p] : st.permissions)
    add(caf::make_message(put_atom::value, p));
  for (auto& [key, by_exchange] : st.topic_permissions)
    for (auto& [exchange, t] : by_exchange)
      add(caf::make_message(put_atom::value, t));
  for (bool user : {false, true})
    for (auto& [name, limits] : user ? st.user_limits : st.vhost_limits)
      for (auto& [limit, value] : limits)
        add(caf::make_message(put_atom::value, limit_info{user, name, limit, value}));
  for (auto& [key, p] : st.policies)
    add(caf::make_message(put_atom::value, p));
}

// A change made here now: its stamp, later than every stamp made or seen here. The registry
// notes when its definition was put, or keeps the deletion.
uint64_t stamp_change(registry_state& st, const caf::message& change) {
  auto stamp = next_stamp(st.last_stamp);
  bool deletion = false;
  auto key = registry_key(change, deletion);
  if (key.empty())
    return stamp;
  if (deletion) {
    st.put_stamps.erase(key);
    st.deletions[key] = registry_change{change, stamp};
    keep_deletion(st, key, stamp);
  } else {
    st.put_stamps[key] = stamp;
    forget_deletion(st, key);
  }
  return stamp;
}

// A change made through this node's API goes to the other nodes of the cluster as the very
// request it was. One that came from the cluster arrives without a sender and stops here.
void replicate(registry_actor_t* self) {
  if (!self->current_sender())
    return;
  if (auto cluster = current_cluster(self->home_system())) {
    auto change = self->current_mailbox_element()->copy_content_to_message();
    auto stamp = stamp_change(self->state, change);
    self->send(cluster, replicate_atom::value, registry_change{std::move(change), stamp});
  }
}

// What this node has, as the requests that would make it, then the deletions it keeps
// (cluster/definitions.hpp).
std::vector<registry_change> registry_snapshot(registry_actor_t* self) {
  auto& st = self->state;
  std::vector<registry_change> out;
  each_definition(st, [&](caf::message m) {
    bool deletion = false;
    auto stamp = put_stamp(st, registry_key(m, deletion));
    out.push_back(registry_change{std::move(m), stamp});
  });
  for (auto& [key, d] : st.deletions)
    out.push_back(d);
  return out;
}

// Put stamps are not kept across a restart, tombstones are. A vhost or user here with a
// tombstone of its name was made again after that deletion, and so was what belongs to one
// that has: their stamps become later than it, so that the other nodes keep them.
void stamp_after_deletions(registry_state& st) {
  each_definition(st, [&](caf::message m) {
    bool deletion = false;
    auto key = registry_key(m, deletion);
    uint64_t after = is_owner(key) ? deletion_stamp(st, key) : 0;
    for (auto& owner : owners_of(key))
      after = std::max(after, deletion_stamp(st, owner));
    if (after > 0) {
      auto& put = st.put_stamps[key];
      put = std::max(put, after + 1);
      st.last_stamp = std::max(st.last_stamp, put);
    }
  });
}

// Whether `change` would replace something this node has (a user, permission or limit of
// the same name), rather than add to it.
bool replaces(registry_actor_t* self, const caf::message& change) {
  auto& st = self->state;
  if (change.match_elements<put_atom, user_info>())
    return st.users.count(change.get_as<user_info>(1).name) > 0;
  if (change.match_elements<put_atom, permission_info>()) {
    auto& p = change.get_as<permission_info>(1);
    return st.permissions.count({p.user, p.vhost}) > 0;
  }
  if (change.match_elements<put_atom, topic_permission_info>()) {
    auto& t = change.get_as<topic_permission_info>(1);
    auto it = st.topic_permissions.find({t.user, t.vhost});
    return it != st.topic_permissions.end() && it->second.count(t.exchange);
  }
  if (change.match_elements<put_atom, limit_info>()) {
    auto& l = change.get_as<limit_info>(1);
    auto& all = l.user ? st.user_limits : st.vhost_limits;
    auto it = all.find(l.name);
    return it != all.end() && it->second.count(l.limit);
  }
  if (change.match_elements<put_atom, policy_info>()) {
    auto& p = change.get_as<policy_info>(1);
    return st.policies.count({p.vhost, p.operator_policy, p.name}) > 0;
  }
  return false;
}

bool is_owner_deletion(const registry_change& c) {
  return c.change.match_elements<delete_atom, vhost_atom, std::string>() ||
         c.change.match_elements<delete_atom, user_atom, std::string>();
}

// Changes of another node, made here as if requested here, in order, without a sender (so
// that they go no further). Without `overwrite` a definition this node has stays as it is.
// A definition deleted here after it was put there is not made; a deletion made there after
// the definition was put here deletes it. Deletions of vhosts and users come first: one
// deleted and made again there since it was put here is deleted here, with all it had,
// before it is made again; what belongs to it there replaces what it had here. What belongs
// to a vhost or user deleted here after it was put there is not made. Returns the vhosts
// whose definitions there are of a vhost deleted here since (their put was refused so): the
// node that sent them deletes them once it learns of it.
std::vector<std::string> apply_changes(registry_actor_t* self,
                                       std::vector<registry_change>& changes, bool overwrite) {
  auto& st = self->state;
  std::vector<std::string> stale;
  std::set<std::string> deleted_owners;  // whose deletion this batch makes here
  std::stable_partition(changes.begin(), changes.end(), is_owner_deletion);
  for (auto& c : changes) {
    st.last_stamp = std::max(st.last_stamp, c.stamp);
    bool deletion = false;
    auto key = registry_key(c.change, deletion);
    if (deletion && !key.empty()) {
      auto& kept = st.deletions[key];
      if (kept.stamp < c.stamp) {  // for the members that were not there
        kept = c;
        keep_deletion(st, key, c.stamp);
      }
      if (put_stamp(st, key) > c.stamp)
        continue;  // put here after it was deleted there
      st.put_stamps.erase(key);
      if (is_owner(key))
        deleted_owners.insert(key);
    } else if (!key.empty()) {
      auto owners = owners_of(key);
      if (deleted_since(st, key, c.stamp)) {
        if (c.change.match_elements<put_atom, vhost_atom, std::string>())
          stale.push_back(c.change.get_as<std::string>(2));
        continue;  // deleted here after it was put there
      }
      if (std::any_of(owners.begin(), owners.end(),
                      [&](auto& o) { return deleted_since(st, o, c.stamp); }))
        continue;  // of a vhost or user deleted here after it was put there
      forget_deletion(st, key);
      bool owner_goes = std::any_of(owners.begin(), owners.end(),
                                    [&](auto& o) { return deleted_owners.count(o) > 0; });
      if (!overwrite && !owner_goes && replaces(self, c.change))
        continue;
      auto& put = st.put_stamps[key];
      put = std::max(put, c.stamp);
    } else if (!overwrite && replaces(self, c.change)) {
      continue;
    }
    caf::anon_send(caf::actor_cast<caf::actor>(self), std::move(c.change));
  }
  return stale;
}

// Sends `xs...` to the catalog and answers `rp` with `ok` once it committed (at once when
// nothing is persisted).
template <class... Ts>
void commit(registry_actor_t* self, caf::response_promise rp, op_result ok, Ts&&... xs) {
  auto catalog = self->state.persistence.catalog;
  if (!catalog) {
    rp.deliver(std::move(ok));
    return;
  }
  self->request(catalog, caf::infinite, std::forward<Ts>(xs)...)
    .then(
      [=](bool committed) mutable {
        if (committed)
          rp.deliver(ok);
        else
          rp.deliver(op_result{amqp::internal_error, "the catalog could not store the change", 0});
      },
      [=](caf::error& err) mutable {
        rp.deliver(op_result{amqp::internal_error, self->home_system().render(err), 0});
      });
}

int64_t limit_of(const std::map<std::string, std::map<std::string, int64_t>>& limits,
                 const std::string& name, const std::string& limit) {
  auto it = limits.find(name);
  if (it == limits.end())
    return -1;
  auto l = it->second.find(limit);
  return l == it->second.end() ? -1 : l->second;
}

int64_t count_of(const std::map<std::string, int64_t>& counts, const std::string& name) {
  auto it = counts.find(name);
  return it == counts.end() ? 0 : it->second;
}

// Adds `delta` to counts[name], dropping the entry at zero.
void add_count(std::map<std::string, int64_t>& counts, const std::string& name, int64_t delta) {
  if ((counts[name] += delta) <= 0)
    counts.erase(name);
}

// Tells the vhost `name` its policies now (all of them: it applies them to its queues and
// exchanges).
void announce_policies(registry_actor_t* self, const std::string& name) {
  auto& st = self->state;
  auto v = st.vhosts.find(name);
  if (v == st.vhosts.end())
    return;
  std::vector<policy_info> out;
  for (auto& [key, p] : st.policies)
    if (p.vhost == name)
      out.push_back(p);
  self->send(v->second, policy_atom::value, std::move(out));
}

void add_policy(registry_state& st, policy_info p) {
  auto key = std::make_tuple(p.vhost, p.operator_policy, p.name);
  st.policies[std::move(key)] = std::move(p);
}

caf::actor start_vhost(registry_actor_t* self, const std::string& name, vhost_persistence p) {
  auto& tmpl = self->state.persistence;
  p.data_dir = tmpl.data_dir;
  p.catalog = tmpl.catalog;
  p.stores = tmpl.stores;
  p.queue_memory_limit = tmpl.queue_memory_limit;
  p.node = tmpl.node;
  p.limits = tmpl.limits;
  p.supervisor = self->address();
  auto v = spawn_vhost(self->home_system(), name, std::move(p));
  self->link_to(v);  // supervised: see on_vhost_exit
  self->state.vhosts[name] = v;
  if (auto max = limit_of(self->state.vhost_limits, name, "max-queues"); max >= 0)
    self->send(v, limit_atom::value, max);
  announce_policies(self, name);
  return v;
}

// A linked vhost ended. Deleted vhosts are no longer in the map (and end normally); a vhost
// that crashed or gave up is started again from the catalog.
void on_vhost_exit(registry_actor_t* self, caf::exit_msg& em) {
  auto& st = self->state;
  bool normal = !em.reason || em.reason == caf::exit_reason::normal;
  auto it = std::find_if(st.vhosts.begin(), st.vhosts.end(),
                         [&](auto& kv) { return kv.second.address() == em.source; });
  if (it == st.vhosts.end()) {
    if (!normal)  // our supervisor (or another link) failed: go with it, vhosts too
      self->quit(em.reason);
    return;
  }
  if (normal)
    return;
  auto name = it->first;
  auto why = self->home_system().render(em.reason);
  if (!st.budget.allow()) {
    spdlog::error("registry gave up: more than {} vhost restarts within {} ms (the last: vhost "
                  "'{}' failed with {}); the root supervisor decides",
                  st.persistence.limits.max_restarts, st.persistence.limits.period.count(), name,
                  why);
    self->quit(
      caf::make_error(caf::sec::runtime_error, "the registry reached its restart intensity"));
    return;
  }
  vhost_persistence p;
  p.reload = true;
  start_vhost(self, name, std::move(p));
  auto n = metrics::count_restart("vhost", name, name);
  spdlog::warn("vhost '{}' failed ({}); vhost '{}' restarted from the catalog (restart {} of "
               "this vhost)",
               name, why, name, n);
}

void grant_all(registry_actor_t* self, const std::string& user, const std::string& vhost) {
  permission_info p{user, vhost, ".*", ".*", ".*"};
  self->state.permissions[{user, vhost}] = p;
  if (auto catalog = self->state.persistence.catalog)
    self->send(catalog, put_atom::value,
               persistence::permission_row{user, vhost, p.configure, p.write, p.read});
}

// Restarted by the root supervisor: users, permissions and vhosts from the catalog.
void reload(registry_actor_t* self) {
  auto catalog = self->state.persistence.catalog;
  if (!catalog)
    return;
  self->request(catalog, caf::infinite, list_atom::value)
    .await(
      [=](persistence::catalog_snapshot& snap) {
        auto& st = self->state;
        for (auto& u : snap.users)
          st.users[u.name] = user_info{u.name, u.password_hash, u.tags};
        for (auto& p : snap.permissions)
          st.permissions[{p.user, p.vhost}] =
            permission_info{p.user, p.vhost, p.configure, p.write, p.read};
        for (auto& l : snap.limits)
          (l.user ? st.user_limits : st.vhost_limits)[l.name][l.limit] = l.value;
        for (auto& p : snap.policies)
          add_policy(st, policy_from_row(std::move(p)));
        for (auto& t : snap.topic_permissions)
          st.topic_permissions[{t.user, t.vhost}][t.exchange] =
            topic_permission_info{t.user, t.vhost, t.exchange, t.write, t.read};
        load_deletions(st, snap.deletions);
        for (auto& v : snap.vhosts) {
          vhost_persistence vp;
          vp.reload = true;
          start_vhost(self, v.name, std::move(vp));
        }
        stamp_after_deletions(st);
        spdlog::info("registry restarted: {} user(s) and {} vhost(s) from the catalog",
                     st.users.size(), st.vhosts.size());
      },
      [=](caf::error& err) {
        spdlog::error("registry restarted without the catalog: {}",
                      self->home_system().render(err));
      });
}

void boot(registry_actor_t* self, registry_config& cfg) {
  auto& st = self->state;
  st.persistence = std::move(cfg.persistence);
  st.budget = sup::restart_budget{st.persistence.limits};
  st.loopback_users.insert(cfg.loopback_users.begin(), cfg.loopback_users.end());
  if (cfg.reload)
    return reload(self);
  auto catalog = st.persistence.catalog;
  for (auto& u : cfg.users)
    st.users[u.name] = u;
  for (auto& p : cfg.permissions)
    st.permissions[{p.user, p.vhost}] = p;
  for (auto& l : cfg.limits)
    (l.user ? st.user_limits : st.vhost_limits)[l.name][l.limit] = l.value;
  for (auto& p : cfg.policies)
    add_policy(st, std::move(p));
  for (auto& t : cfg.topic_permissions)
    st.topic_permissions[{t.user, t.vhost}][t.exchange] = t;
  load_deletions(st, cfg.deletions);
  for (auto& [name, p] : cfg.vhosts) {
    start_vhost(self, name, std::move(p));
    if (catalog)  // vhosts that only existed implicitly in older stores get their row
      self->send(catalog, put_atom::value, persistence::vhost_row{name});
  }
  stamp_after_deletions(st);
  if (st.users.empty()) {
    // First start: the default user, and the default vhost when there is none.
    user_info u{cfg.default_user, persistence::hash_password(cfg.default_pass), "administrator"};
    st.users[u.name] = u;
    if (catalog)
      self->send(catalog, put_atom::value,
                 persistence::user_row{u.name, u.password_hash, u.tags});
    if (!st.vhosts.count("/")) {
      start_vhost(self, "/", {});
      if (catalog)
        self->send(catalog, put_atom::value, persistence::vhost_row{"/"});
    }
    grant_all(self, u.name, "/");
    spdlog::info("created the default user '{}' with full permissions on vhost '/'", u.name);
  }
}

login_result login(registry_actor_t* self, const std::string& user, const std::string* password,
                   bool loopback) {
  auto it = self->state.users.find(user);
  if (it == self->state.users.end())
    return {};
  if (password && !persistence::check_password(*password, it->second.password_hash))
    return {};
  if (!loopback && self->state.loopback_users.count(user))
    return login_result{false, user, {}, true};
  return login_result{true, user, it->second.tags};
}

// Tells the connections of `p.user` in `p.vhost` what they may do now.
void announce(registry_actor_t* self, const permission_info& p, bool granted) {
  self->send(vhost_group(self->home_system(), p.vhost), permission_atom::value, p, granted);
}

// Drops the permissions `pred` selects, telling their connections.
template <class Pred>
void revoke_where(registry_actor_t* self, Pred pred) {
  auto& perms = self->state.permissions;
  for (auto p = perms.begin(); p != perms.end();) {
    if (pred(p->first)) {
      announce(self, p->second, false);
      p = perms.erase(p);
    } else {
      ++p;
    }
  }
}

// The topic permissions of `user` in `vhost`, as a connection holds them.
std::vector<access::topic_entry> topic_entries(const registry_state& st, const std::string& user,
                                               const std::string& vhost) {
  std::vector<access::topic_entry> out;
  if (auto it = st.topic_permissions.find({user, vhost}); it != st.topic_permissions.end())
    for (auto& [exchange, t] : it->second)
      out.push_back(access::topic_entry{exchange, t.write, t.read});
  return out;
}

// Tells the connections of `user` in `vhost` their topic permissions now.
void announce_topics(registry_actor_t* self, const std::string& user, const std::string& vhost) {
  self->send(vhost_group(self->home_system(), vhost), topic_atom::value, user,
             topic_entries(self->state, user, vhost));
}

vhost_access lookup_vhost(registry_actor_t* self, const std::string& name,
                          const std::string& user) {
  auto& st = self->state;
  auto it = st.vhosts.find(name);
  if (it == st.vhosts.end())
    return vhost_access{amqp::not_allowed, "NOT_ALLOWED - vhost " + name + " not found", {},
                        false, {}, {}, {}};
  auto p = st.permissions.find({user, name});
  if (p == st.permissions.end())
    return vhost_access{0, {}, it->second, false, {}, {}, {}};
  return vhost_access{0, {}, it->second, true, p->second, {},
                      topic_entries(st, user, name), st.tracing.count(name) > 0};
}

// The refusal (RabbitMQ's text) when `more` channels would take `user` past its max-channels.
std::optional<std::string> channels_refused(const registry_state& st, const std::string& user,
                                            int64_t more) {
  auto cmax = limit_of(st.user_limits, user, "max-channels");
  if (cmax < 0 || count_of(st.user_channels, user) + more <= cmax)
    return std::nullopt;
  return "NOT_ALLOWED - number of channels opened for user '" + user +
         "' has reached the maximum allowed user limit of (" + std::to_string(cmax) + ")";
}

// The first of `patterns` that is not a valid regular expression, as the 406 that refuses it.
std::optional<op_result> invalid_patterns(std::initializer_list<std::string> patterns) {
  for (auto& re : patterns)
    if (auto why = access::invalid_pattern(re))
      return op_result{amqp::precondition_failed, "PRECONDITION_FAILED - " + *why, 0};
  return std::nullopt;
}

// connection.open / STOMP CONNECT: RabbitMQ (rabbit_reader) checks the vhost's and the user's
// connection limits before the vhost access, with these texts. `channels`: what the
// connection holds from the start (a STOMP connection's one channel).
vhost_access admit(registry_actor_t* self, const std::string& vhost, const std::string& user,
                   int32_t channels) {
  auto& st = self->state;
  auto refused = [](std::string text, const char* limit) {
    return vhost_access{amqp::not_allowed, std::move(text), {}, false, {}, limit, {}};
  };
  auto vmax = limit_of(st.vhost_limits, vhost, "max-connections");
  if (vmax >= 0 && count_of(st.vhost_connections, vhost) >= vmax)
    return refused("NOT_ALLOWED - access to vhost '" + vhost + "' refused for user '" + user +
                     "': connection limit (" + std::to_string(vmax) + ") is reached",
                   "max-connections");
  auto umax = limit_of(st.user_limits, user, "max-connections");
  if (umax >= 0 && count_of(st.user_connections, user) >= umax)
    return refused("NOT_ALLOWED - connection refused for user '" + user +
                     "': user connection limit (" + std::to_string(umax) + ") is reached",
                   "max-connections");
  if (auto text = channels > 0 ? channels_refused(st, user, channels) : std::nullopt)
    return refused(std::move(*text), "max-channels");
  auto r = lookup_vhost(self, vhost, user);
  auto sender = caf::actor_cast<caf::actor_addr>(self->current_sender());
  if (r.code != 0 || !r.granted || !sender || st.connections.count(sender))
    return r;
  st.connections[sender] = {vhost, user, channels};
  add_count(st.vhost_connections, vhost, 1);
  add_count(st.user_connections, user, 1);
  if (channels > 0)
    add_count(st.user_channels, user, channels);
  self->monitor(sender);
  return r;
}

// A tracked connection ended: what it held no longer counts.
void untrack(registry_actor_t* self, const caf::actor_addr& who) {
  auto& st = self->state;
  auto it = st.connections.find(who);
  if (it == st.connections.end())
    return;
  auto& c = it->second;
  add_count(st.vhost_connections, c.vhost, -1);
  add_count(st.user_connections, c.user, -1);
  if (c.channels > 0)
    add_count(st.user_channels, c.user, -c.channels);
  st.connections.erase(it);
}

caf::behavior registry_behavior(registry_actor_t* self, registry_config cfg) {
  install_defaults(self, "registry");
  self->set_exit_handler([=](caf::exit_msg& em) { on_vhost_exit(self, em); });
  self->set_down_handler([=](caf::down_msg& dm) { untrack(self, dm.source); });
  on_crash(self, [](const std::string& what) { spdlog::error("registry crashed: {}", what); });
  boot(self, cfg);
  return {
    [=](crash_atom, vhost_atom, std::string& name) {
      auto it = self->state.vhosts.find(name);
      if (it == self->state.vhosts.end())
        return false;
      self->send(it->second, crash_atom::value);
      return true;
    },
    [=](crash_atom, caf::atom_value kind, std::string& vhost,
        std::string& name) -> caf::result<bool> {
      auto it = self->state.vhosts.find(vhost);
      if (it == self->state.vhosts.end())
        return false;
      auto rp = self->make_response_promise<bool>();
      rp.delegate(it->second, crash_atom::value, kind, name);
      return rp;
    },
    [=](stall_atom, caf::atom_value kind, std::string& vhost, std::string& name,
        uint32_t ms) -> caf::result<bool> {
      auto it = self->state.vhosts.find(vhost);
      if (it == self->state.vhosts.end())
        return false;
      auto rp = self->make_response_promise<bool>();
      rp.delegate(it->second, stall_atom::value, kind, name, ms);
      return rp;
    },
    [=](login_atom, std::string& user, std::string& password, bool loopback) {
      return login(self, user, &password, loopback);
    },
    [=](login_atom, std::string& user, bool loopback) {
      return login(self, user, nullptr, loopback);
    },
    [=](lookup_atom, vhost_atom, std::string& name, std::string& user) {
      return lookup_vhost(self, name, user);
    },
    [=](admit_atom, vhost_atom, std::string& vhost, std::string& user, int32_t channels) {
      return admit(self, vhost, user, channels);
    },
    [=](admit_atom, channel_atom) -> op_result {
      auto& st = self->state;
      auto it = st.connections.find(caf::actor_cast<caf::actor_addr>(self->current_sender()));
      if (it == st.connections.end())  // not tracked (admitted before a registry restart)
        return op_result{};
      auto& user = it->second.user;
      if (auto text = channels_refused(st, user, 1))
        return op_result{amqp::not_allowed, std::move(*text), 0};
      ++it->second.channels;
      add_count(st.user_channels, user, 1);
      return op_result{};
    },
    [=](remove_atom, channel_atom) {
      auto& st = self->state;
      auto it = st.connections.find(caf::actor_cast<caf::actor_addr>(self->current_sender()));
      if (it == st.connections.end() || it->second.channels == 0)
        return;
      --it->second.channels;
      add_count(st.user_channels, it->second.user, -1);
    },
    [=](list_atom, topic_atom) {
      std::vector<topic_permission_info> out;
      for (auto& [key, by_exchange] : self->state.topic_permissions)
        for (auto& [exchange, t] : by_exchange)
          out.push_back(t);
      return out;
    },
    [=](put_atom, topic_permission_info& t) -> caf::result<op_result> {
      auto& st = self->state;
      if (!st.vhosts.count(t.vhost) || !st.users.count(t.user))
        return op_result{amqp::precondition_failed,
                         "PRECONDITION_FAILED - vhost_or_user_not_found", 0};
      if (auto bad = invalid_patterns({access::expand_topic_variables(t.write, t.user, t.vhost),
                                       access::expand_topic_variables(t.read, t.user, t.vhost)}))
        return *bad;
      auto& set = st.topic_permissions[{t.user, t.vhost}];
      uint32_t created = set.empty() ? 1 : 0;
      set[t.exchange] = t;
      announce_topics(self, t.user, t.vhost);
      replicate(self);
      auto rp = self->make_response_promise<op_result>();
      commit(self, rp, op_result{0, {}, created}, put_atom::value,
             persistence::topic_permission_row{t.user, t.vhost, t.exchange, t.write, t.read});
      return rp;
    },
    [=](delete_atom, topic_atom, std::string& user,
        std::string& vhost) -> caf::result<op_result> {
      auto& st = self->state;
      if (!st.topic_permissions.erase({user, vhost}))
        return not_found("topic_permission_not_found");
      announce_topics(self, user, vhost);
      replicate(self);
      auto rp = self->make_response_promise<op_result>();
      commit(self, rp, op_result{}, delete_atom::value, topic_atom::value, user, vhost);
      return rp;
    },
    [=](list_atom, limit_atom) {
      std::vector<limit_info> out;
      for (bool user : {false, true})
        for (auto& [name, limits] : user ? self->state.user_limits : self->state.vhost_limits)
          for (auto& [limit, value] : limits)
            out.push_back(limit_info{user, name, limit, value});
      return out;
    },
    [=](put_atom, limit_info& l) -> caf::result<op_result> {
      auto& st = self->state;
      if (l.user ? !st.users.count(l.name) : !st.vhosts.count(l.name))
        return not_found(l.user ? "user_not_found" : "vhost_not_found");
      if (!known_limit(l.user, l.limit))
        return op_result{amqp::precondition_failed, "unknown limit '" + l.limit + "'", 0};
      auto& limits = (l.user ? st.user_limits : st.vhost_limits)[l.name];
      uint32_t created = limits.count(l.limit) ? 0 : 1;
      limits[l.limit] = l.value;
      replicate(self);
      if (!l.user && l.limit == "max-queues")
        self->send(st.vhosts[l.name], limit_atom::value, l.value);
      spdlog::info("{} '{}': limit {} set to {}", l.user ? "user" : "vhost", l.name, l.limit,
                   l.value);
      auto rp = self->make_response_promise<op_result>();
      commit(self, rp, op_result{0, {}, created}, put_atom::value,
             persistence::limit_row{l.user, l.name, l.limit, l.value});
      return rp;
    },
    [=](delete_atom, limit_atom, bool user, std::string& name,
        std::string& limit) -> caf::result<op_result> {
      auto& st = self->state;
      auto& all = user ? st.user_limits : st.vhost_limits;
      auto it = all.find(name);
      if (it == all.end() || !it->second.erase(limit))
        return op_result{};  // nothing to clear (RabbitMQ answers 204 too)
      replicate(self);
      if (it->second.empty())
        all.erase(it);
      if (!user && limit == "max-queues" && st.vhosts.count(name))
        self->send(st.vhosts[name], limit_atom::value, int64_t{-1});
      spdlog::info("{} '{}': limit {} cleared", user ? "user" : "vhost", name, limit);
      auto rp = self->make_response_promise<op_result>();
      commit(self, rp, op_result{}, delete_atom::value, limit_atom::value, user, name, limit);
      return rp;
    },
    [=](list_atom, policy_atom) {
      std::vector<policy_info> out;
      for (auto& [key, p] : self->state.policies)
        out.push_back(p);
      sort_policies(out);
      return out;
    },
    [=](put_atom, policy_info& p) -> caf::result<op_result> {
      auto& st = self->state;
      if (!st.vhosts.count(p.vhost))
        return not_found("vhost_not_found");
      if (auto why = invalid_policy(p))
        return op_result{amqp::precondition_failed, "Validation failed\n\n" + *why + "\n", 0};
      std::sort(p.definition.begin(), p.definition.end(),
                [](auto& a, auto& b) { return a.first < b.first; });
      auto key = std::make_tuple(p.vhost, p.operator_policy, p.name);
      uint32_t created = st.policies.count(key) ? 0 : 1;
      st.policies[key] = p;
      replicate(self);
      announce_policies(self, p.vhost);
      spdlog::info("vhost '{}': {} '{}' set, pattern '{}', apply-to {}, priority {}", p.vhost,
                   p.operator_policy ? "operator policy" : "policy", p.name, p.pattern,
                   p.apply_to, p.priority);
      auto rp = self->make_response_promise<op_result>();
      commit(self, rp, op_result{0, {}, created}, put_atom::value, policy_row_of(p));
      return rp;
    },
    [=](delete_atom, policy_atom, std::string& vhost, bool operator_policy,
        std::string& name) -> caf::result<op_result> {
      auto& st = self->state;
      if (!st.policies.erase({vhost, operator_policy, name}))
        return not_found("policy_not_found");
      replicate(self);
      announce_policies(self, vhost);
      spdlog::info("vhost '{}': {} '{}' cleared", vhost,
                   operator_policy ? "operator policy" : "policy", name);
      auto rp = self->make_response_promise<op_result>();
      commit(self, rp, op_result{}, delete_atom::value, policy_atom::value, vhost,
             operator_policy, name);
      return rp;
    },
    [=](lookup_atom, vhost_atom, std::string& name) -> lookup_result {
      auto it = self->state.vhosts.find(name);
      if (it == self->state.vhosts.end())
        return lookup_result{amqp::not_allowed, "NOT_ALLOWED - vhost " + name + " not found", {},
                             false};
      return lookup_result{0, {}, it->second, false};
    },
    [=](list_atom, vhost_atom) {
      std::vector<vhost_info> out;
      for (auto& [name, v] : self->state.vhosts)
        out.push_back(vhost_info{name, v, self->state.tracing.count(name) > 0});
      return out;
    },
    [=](trace_atom, vhost_atom, std::string& name, bool on) -> op_result {
      auto& st = self->state;
      if (!st.vhosts.count(name))
        return not_found("vhost_not_found");
      if (on == (st.tracing.count(name) > 0))
        return op_result{};
      spdlog::info("{} tracing for vhost '{}'", on ? "Enabling" : "Disabling", name);
      if (on)
        st.tracing.insert(name);
      else
        st.tracing.erase(name);
      self->send(vhost_group(self->home_system(), name), trace_atom::value, on);
      return op_result{};
    },
    [=](put_atom, vhost_atom, std::string& name) -> caf::result<op_result> {
      if (self->state.vhosts.count(name))
        return op_result{};
      start_vhost(self, name, {});
      spdlog::info("added vhost '{}'", name);
      replicate(self);
      auto rp = self->make_response_promise<op_result>();
      commit(self, rp, op_result{0, {}, 1}, put_atom::value, persistence::vhost_row{name});
      return rp;
    },
    [=](delete_atom, vhost_atom, std::string& name) -> caf::result<op_result> {
      auto& st = self->state;
      auto it = st.vhosts.find(name);
      if (it == st.vhosts.end())
        return not_found("vhost_not_found");
      auto vhost = it->second;
      st.vhosts.erase(it);
      replicate(self);
      st.vhost_limits.erase(name);
      st.tracing.erase(name);
      std::erase_if(st.policies, [&](auto& kv) { return std::get<0>(kv.first) == name; });
      std::erase_if(st.topic_permissions, [&](auto& kv) { return kv.first.second == name; });
      revoke_where(self, [&](const auto& key) { return key.second == name; });
      spdlog::info("deleting vhost '{}'", name);
      // The catalog forgets the vhost first, so that it never names a message file that the
      // vhost's queues already removed.
      auto rp = self->make_response_promise<op_result>();
      auto done = [=](bool) mutable {
        self->request(vhost, std::chrono::seconds(30), delete_atom::value, vhost_atom::value)
          .then([=](bool) mutable { rp.deliver(op_result{}); },
                [=](caf::error&) mutable { rp.deliver(op_result{}); });
      };
      if (auto catalog = st.persistence.catalog)
        self->request(catalog, caf::infinite, delete_atom::value, vhost_atom::value, name)
          .then(done, [=](caf::error&) mutable { done(false); });
      else
        done(true);
      return rp;
    },
    [=](list_atom, user_atom) {
      std::vector<user_info> out;
      for (auto& [name, u] : self->state.users)
        out.push_back(u);
      return out;
    },
    [=](put_atom, user_info& u) -> caf::result<op_result> {
      auto& st = self->state;
      uint32_t created = st.users.count(u.name) ? 0 : 1;
      st.users[u.name] = u;
      replicate(self);
      auto rp = self->make_response_promise<op_result>();
      commit(self, rp, op_result{0, {}, created}, put_atom::value,
             persistence::user_row{u.name, u.password_hash, u.tags});
      return rp;
    },
    [=](delete_atom, user_atom, std::string& name) -> caf::result<op_result> {
      auto& st = self->state;
      if (!st.users.erase(name))
        return not_found("user_not_found");
      replicate(self);
      st.user_limits.erase(name);
      std::erase_if(st.topic_permissions, [&](auto& kv) { return kv.first.first == name; });
      revoke_where(self, [&](const auto& key) { return key.first == name; });
      // As RabbitMQ does, the user's connections are closed (320).
      for (auto& [vhost, actor] : st.vhosts)
        self->send(vhost_group(self->home_system(), vhost), force_close_atom::value,
                   user_atom::value, name, "user '" + name + "' is deleted");
      auto rp = self->make_response_promise<op_result>();
      commit(self, rp, op_result{}, delete_atom::value, user_atom::value, name);
      return rp;
    },
    [=](list_atom, permission_atom) {
      std::vector<permission_info> out;
      for (auto& [key, p] : self->state.permissions)
        out.push_back(p);
      return out;
    },
    [=](put_atom, permission_info& p) -> caf::result<op_result> {
      auto& st = self->state;
      if (!st.vhosts.count(p.vhost))
        return not_found("vhost_not_found");
      if (!st.users.count(p.user))
        return not_found("user_not_found");
      if (auto bad = invalid_patterns({p.configure, p.write, p.read}))
        return *bad;
      uint32_t created = st.permissions.count({p.user, p.vhost}) ? 0 : 1;
      st.permissions[{p.user, p.vhost}] = p;
      replicate(self);
      announce(self, p, true);
      auto rp = self->make_response_promise<op_result>();
      commit(self, rp, op_result{0, {}, created}, put_atom::value,
             persistence::permission_row{p.user, p.vhost, p.configure, p.write, p.read});
      return rp;
    },
    [=](delete_atom, permission_atom, std::string& user,
        std::string& vhost) -> caf::result<op_result> {
      auto& perms = self->state.permissions;
      auto it = perms.find({user, vhost});
      if (it == perms.end())
        return not_found("permission_not_found");
      replicate(self);
      announce(self, it->second, false);
      perms.erase(it);
      auto rp = self->make_response_promise<op_result>();
      commit(self, rp, op_result{}, delete_atom::value, permission_atom::value, user, vhost);
      return rp;
    },
    [](bool) {
      // The catalog's answer to a change sent without waiting.
    },
    [=](cluster_atom, snapshot_atom) { return registry_snapshot(self); },
    [=](cluster_atom, std::vector<registry_change>& changes, bool overwrite) {
      return apply_changes(self, changes, overwrite);
    },
    [=](cluster_atom, prune_atom, uint64_t before) {
      // The catalog drops every kept deletion that old, the vhosts' too.
      auto& st = self->state;
      std::erase_if(st.deletions, [&](auto& kv) { return kv.second.stamp < before; });
      if (auto catalog = st.persistence.catalog)
        self->send(catalog, prune_atom::value, before);
    },
  };
}

}  // namespace

caf::actor spawn_registry(caf::actor_system& sys, registry_config cfg) {
  // A thread of its own, like the vhosts: lookups must not wait behind a saturated scheduler.
  return sys.spawn<caf::detached>(registry_behavior, std::move(cfg));
}

}  // namespace warren
