// The cluster actor: see cluster_actor.hpp.
#include "cluster/cluster_actor.hpp"

#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>

#include "actors/hardening.hpp"
#include "actors/registry_actor.hpp"
#include "protocol/amqp091/constants.hpp"

namespace warren {
namespace {

// Every request to another node has a deadline: a node that went away answers nothing.
constexpr auto call_timeout = std::chrono::seconds(10);
constexpr auto retry_interval = std::chrono::seconds(1);
// Clocks further apart than this are logged when two nodes meet: what nodes did while apart
// is settled by the times of the changes (cluster/definitions.hpp).
constexpr auto max_clock_skew = std::chrono::seconds(1);

struct member {
  std::string host;
  uint16_t port = 0;
  caf::actor actor;  // its cluster actor while it runs and is reachable, else null
  bool connecting = false;
  uint64_t admitted = 0;  // when it last joined, as far as this node knows
};

struct cluster_state {
  cluster_config cfg;
  std::map<std::string, member> members;  // the other nodes
  // Nodes removed from the cluster (forget_cluster_node, leave; here or on a member), with
  // the stamps of their removals: refused when they come back with a hello, until they join
  // again (cluster_snapshot in cluster/definitions.hpp).
  std::map<std::string, uint64_t> removed;
  uint64_t admitted = 0;    // when this node last joined the cluster, 0: never
  uint64_t last_stamp = 0;  // the last stamp made or seen here
  // Since when every member runs (null: one does not), and when the vhosts last pruned their
  // tombstones.
  std::optional<std::chrono::steady_clock::time_point> all_running_since;
  std::chrono::steady_clock::time_point pruned;
  std::vector<metrics::listener_summary> listeners;  // this node's, sent with its numbers
  static inline const char* name = "cluster";
};

using cluster_actor_t = caf::stateful_actor<cluster_state>;

std::string address_of(const std::string& host, uint16_t port) {
  return host + ":" + std::to_string(port);
}

std::string members_file(const cluster_state& st) { return st.cfg.data_dir + "/cluster-nodes"; }

// Replaces the file at `path` with `text` (through a temporary file: a crash leaves one or
// the other).
void write_file(const std::string& path, const std::string& text) {
  auto tmp = path + ".tmp";
  {
    std::ofstream out{tmp, std::ios::trunc};
    out << text;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    spdlog::error("cluster: cannot write {}", path);
}

// One line per node, "name host:port admitted": this one first, then the others.
void save_members(const cluster_state& st) {
  auto line = [](const std::string& name, const std::string& host, uint16_t port,
                 uint64_t admitted) {
    return name + ' ' + address_of(host, port) + ' ' + std::to_string(admitted) + '\n';
  };
  auto text = line(st.cfg.name, st.cfg.host, st.cfg.port, st.admitted);
  for (auto& [name, m] : st.members)
    text += line(name, m.host, m.port, m.admitted);
  write_file(members_file(st), text);
}

std::string removed_file(const cluster_state& st) {
  return st.cfg.data_dir + "/cluster-removed";
}

// One line per node: "name stamp".
void save_removed(const cluster_state& st) {
  std::string text;
  for (auto& [name, stamp] : st.removed)
    text += name + ' ' + std::to_string(stamp) + '\n';
  write_file(removed_file(st), text);
}

// Whether node `name`, which last joined at `admitted`, was removed after that.
bool removed_since(const cluster_state& st, const std::string& name, uint64_t admitted) {
  auto it = st.removed.find(name);
  return it != st.removed.end() && it->second >= admitted;
}

// A node that joins (again) is no longer one that was removed.
void readmit(cluster_state& st, const std::string& name) {
  if (st.removed.erase(name))
    save_removed(st);
}

// Lines of words from `path`: each line split at blanks.
std::vector<std::vector<std::string>> read_lines(const std::string& path) {
  std::vector<std::vector<std::string>> out;
  std::ifstream in{path};
  for (std::string line; std::getline(in, line);) {
    std::istringstream words{line};
    std::vector<std::string> v;
    for (std::string w; words >> w;)
      v.push_back(std::move(w));
    if (!v.empty())
      out.push_back(std::move(v));
  }
  return out;
}

uint64_t stamp_of(const std::vector<std::string>& words, size_t i) {
  uint64_t n = 0;
  if (i < words.size())
    std::from_chars(words[i].data(), words[i].data() + words[i].size(), n);
  return n;
}

uint64_t next_stamp(cluster_state& st) { return warren::next_stamp(st.last_stamp); }

void load_members(cluster_state& st) {
  for (auto& words : read_lines(members_file(st))) {
    if (words.size() < 2)
      continue;
    auto admitted = stamp_of(words, 2);
    st.last_stamp = std::max(st.last_stamp, admitted);
    if (words[0] == st.cfg.name) {
      st.admitted = admitted;
      continue;
    }
    member m;
    m.admitted = admitted;
    if (parse_node_address(words[1], m.host, m.port))
      st.members.emplace(words[0], std::move(m));
  }
  // Files written before removals had stamps: such a removal counts from now.
  auto now = next_stamp(st);
  for (auto& words : read_lines(removed_file(st))) {
    auto stamp = words.size() > 1 ? stamp_of(words, 1) : now;
    st.removed[words[0]] = stamp;
    st.last_stamp = std::max(st.last_stamp, stamp);
  }
}

// Whether the current message comes from a member's cluster actor.
bool from_member(cluster_actor_t* self) {
  auto& sender = self->current_sender();
  if (!sender)
    return false;
  for (auto& [name, m] : self->state.members)
    if (m.actor && m.actor.node() == sender->node())
      return true;
  return false;
}

std::optional<caf::error> wrong_cookie(cluster_actor_t* self, const node_info& who,
                                       const std::string& cookie) {
  if (cookie == self->state.cfg.cookie)
    return std::nullopt;
  spdlog::warn("cluster: refused node {} ({}:{}): its cookie differs", who.name, who.host,
               who.port);
  return caf::make_error(caf::sec::runtime_error, "the cluster's cookie differs");
}

node_info me(cluster_actor_t* self) {
  auto& c = self->state.cfg;
  return node_info{c.name, c.host, c.port, caf::actor_cast<caf::actor>(self),
                   self->state.admitted};
}

// Calls f with each vhost actor of this node.
template <class F>
void for_each_vhost(cluster_actor_t* self, F f) {
  auto registry = current_registry(self->home_system());
  if (!registry)
    return;
  self->request(registry, call_timeout, list_atom::value, vhost_atom::value)
    .then(
      [=](std::vector<vhost_info>& vhosts) {
        for (auto& v : vhosts)
          f(v.actor);
      },
      [](caf::error&) {});
}

int64_t wall_clock_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

// Node `name` answered a hello sent at `sent` with its clock at `theirs`, here at `back`:
// logs a skew of more than max_clock_skew beyond what the round trip leaves uncertain.
void check_clock(const std::string& name, int64_t sent, int64_t theirs, int64_t back) {
  if (theirs <= 0)
    return;
  auto offset = theirs - (sent + back) / 2;
  auto limit = std::chrono::duration_cast<std::chrono::microseconds>(max_clock_skew).count() +
               (back - sent) / 2;
  if (std::abs(offset) <= limit)
    return;
  spdlog::warn("cluster: the clock of node {} is {:.1f} s {} this node's; the cluster settles "
               "what nodes did while apart by the times of their changes, so keep the clocks "
               "in step (NTP)",
               name, std::abs(offset) / 1e6, offset > 0 ? "ahead of" : "behind");
}

// Everything this node has, then done(it).
void collect(cluster_actor_t* self, std::function<void(cluster_snapshot)> done) {
  auto registry = current_registry(self->home_system());
  auto snap = std::make_shared<cluster_snapshot>();
  auto finish = [=] {
    auto& st = self->state;
    for (auto& [name, stamp] : st.removed)
      snap->removed.push_back(tombstone{name, stamp});
    snap->admitted = st.admitted;
    snap->clock = wall_clock_us();
    done(std::move(*snap));
  };
  self->request(registry, call_timeout, cluster_atom::value, snapshot_atom::value)
    .then(
      [=](std::vector<registry_change>& changes) {
        snap->registry = std::move(changes);
        self->request(registry, call_timeout, list_atom::value, vhost_atom::value)
          .then(
            [=](std::vector<vhost_info>& vhosts) {
              if (vhosts.empty())
                return finish();
              auto left = std::make_shared<size_t>(vhosts.size());
              auto one_done = [=] {
                if (--*left == 0)
                  finish();
              };
              for (auto& v : vhosts)
                self->request(v.actor, call_timeout, cluster_atom::value, snapshot_atom::value)
                  .then(
                    [=](vhost_definitions& d) {
                      snap->vhosts.push_back(std::move(d));
                      one_done();
                    },
                    [=](caf::error&) { one_done(); });
            },
            [=](caf::error&) { finish(); });
      },
      [=](caf::error&) { finish(); });
}

// Hands a vhost's definitions from node `from` to this node's actor of that vhost.
void apply_vhost(cluster_actor_t* self, vhost_definitions d, std::string from) {
  auto registry = current_registry(self->home_system());
  if (!registry)
    return;
  auto name = d.vhost;
  self->request(registry, call_timeout, lookup_atom::value, vhost_atom::value, name)
    .then(
      [=](lookup_result& r) mutable {
        // Not from a node forgotten meanwhile: its queues went from the vhost already.
        if (r.code == 0 && r.target && self->state.members.count(from))
          self->send(r.target, cluster_atom::value, std::move(d), std::move(from));
      },
      [](caf::error&) {});
}

// What node `from` has: users and vhosts first (a vhost must exist before its definitions).
// The definitions of a vhost deleted here since `from` made it are left out (the registry
// names them): they are not of the vhost of that name that may be here now.
void apply(cluster_actor_t* self, cluster_snapshot snap, const std::string& from,
           bool overwrite) {
  auto registry = current_registry(self->home_system());
  if (!registry)
    return;
  auto vhosts = std::make_shared<std::vector<vhost_definitions>>(std::move(snap.vhosts));
  self->request(registry, call_timeout, cluster_atom::value, std::move(snap.registry), overwrite)
    .then(
      [=](std::vector<std::string>& stale) {
        for (auto& d : *vhosts)
          if (std::find(stale.begin(), stale.end(), d.vhost) == stale.end())
            apply_vhost(self, std::move(d), from);
          else
            spdlog::info("cluster: node {} has vhost '{}' as it was before it was deleted "
                         "here; its definitions there are left out",
                         from, d.vhost);
      },
      [](caf::error&) {});
}

// Node `name` answered at `actor`: monitored from now on, until it is down. `admitted`: when
// it says it last joined.
void member_up(cluster_actor_t* self, const std::string& name, const std::string& host,
               uint16_t port, const caf::actor& actor, uint64_t admitted) {
  auto& st = self->state;
  auto& m = st.members[name];
  bool changed = m.host != host || m.port != port || m.admitted < admitted;
  m.host = host;
  m.port = port;
  m.admitted = std::max(m.admitted, admitted);
  st.last_stamp = std::max(st.last_stamp, admitted);
  m.connecting = false;
  if (changed)
    save_members(st);
  if (m.actor == actor)
    return;
  if (m.actor)
    self->demonitor(m.actor);
  m.actor = actor;
  self->monitor(actor);
  spdlog::info("cluster: node {} ({}) is up", name, address_of(host, port));
}

void forget(cluster_actor_t* self, const std::string& name, bool remember,
            uint64_t stamp = 0);

// The removals that another node knows of (cluster_snapshot): a member here that joined
// before one is forgotten, and told so if it runs; its hello is refused from then on. A
// removal of a node that joined again since is an old one.
void take_removals(cluster_actor_t* self, const std::vector<tombstone>& removals) {
  auto& st = self->state;
  for (auto& r : removals) {
    st.last_stamp = std::max(st.last_stamp, r.stamp);
    if (r.name == st.cfg.name)
      continue;
    auto it = st.members.find(r.name);
    if (it != st.members.end() && it->second.admitted >= r.stamp)
      continue;
    if (auto known = st.removed.find(r.name); known != st.removed.end() &&
                                              known->second >= r.stamp)
      continue;
    if (it != st.members.end()) {
      spdlog::warn("cluster: node {} was removed from the cluster on another node", r.name);
      if (it->second.actor)
        self->send(it->second.actor, removed_atom::value, st.cfg.name);
    }
    forget(self, r.name, true, r.stamp);
  }
}

// Two nodes meet: this one sends what it has and takes what the other has (the other's users
// and permissions win), then calls then(). `joining`: this node joins the cluster now (a
// node that was removed is taken back only so).
void meet(cluster_actor_t* self, const std::string& name, const caf::actor& target,
          bool joining, std::function<void(bool)> then) {
  collect(self, [=](cluster_snapshot mine) {
    auto sent = wall_clock_us();
    self->request(target, call_timeout, hello_atom::value, me(self), self->state.cfg.cookie,
                  std::move(mine), joining)
      .then(
        [=](cluster_snapshot& theirs) {
          check_clock(name, sent, static_cast<int64_t>(theirs.clock), wall_clock_us());
          if (theirs.refused) {
            spdlog::error("cluster: node {} removed this node from the cluster "
                          "(forget_cluster_node): forgetting it; join the cluster again to "
                          "be part of it",
                          name);
            forget(self, name, false);
            return then(false);
          }
          auto& st = self->state;
          if (joining) {
            readmit(st, name);
          } else if (removed_since(st, name, theirs.admitted)) {
            // Removed while the hello was on its way (another member said so meanwhile).
            self->send(target, removed_atom::value, st.cfg.name);
            return then(false);
          }
          auto it = st.members.find(name);
          if (it != st.members.end()) {
            member_up(self, name, it->second.host, it->second.port, target, theirs.admitted);
            take_removals(self, theirs.removed);
            apply(self, std::move(theirs), name, true);
          }
          then(true);
        },
        [=](caf::error& err) {
          spdlog::warn("cluster: node {} did not answer: {}", name,
                       self->home_system().render(err));
          then(false);
        });
  });
}

// Connects to the cluster port at host:port: ok(its cluster actor) or failed(why).
void connect(cluster_actor_t* self, const std::string& host, uint16_t port,
             std::function<void(caf::actor)> ok, std::function<void(std::string)> failed) {
  auto& sys = self->home_system();
  auto mm = self->state.cfg.tls ? sys.openssl_manager().actor_handle()
                                 : sys.middleman().actor_handle();
  self->request(mm, call_timeout, caf::connect_atom::value, host, port)
    .then(
      [=](caf::node_id&, caf::strong_actor_ptr& ptr, std::set<std::string>&) {
        if (!ptr)
          return failed("nothing is published there");
        ok(caf::actor_cast<caf::actor>(ptr));
      },
      [=](caf::error& err) { failed(self->home_system().render(err)); });
}

// Joins the cluster of the node at host:port: it names the members, this node meets each.
void join(cluster_actor_t* self, const std::string& host, uint16_t port,
          caf::response_promise rp) {
  auto where = address_of(host, port);
  auto fail = [=](const std::string& why) mutable {
    spdlog::error("cluster: cannot join {}: {}", where, why);
    rp.deliver(op_result{1, "cannot join the cluster at " + where + ": " + why, 0});
  };
  connect(
    self, host, port,
    [=](caf::actor seed) mutable {
      auto& st = self->state;
      st.admitted = next_stamp(st);  // later than any removal of this node the others know
      save_members(st);
      self->request(seed, call_timeout, join_atom::value, me(self), st.cfg.cookie)
        .then(
          [=](std::vector<node_info>& members) mutable {
            auto& st = self->state;
            std::vector<node_info> others;
            for (auto& m : members)
              if (m.name != st.cfg.name) {
                auto& known = st.members[m.name];
                known.host = m.host;
                known.port = m.port;
                known.admitted = std::max(known.admitted, m.admitted);
                if (m.actor)
                  others.push_back(m);
              }
            save_members(st);
            if (others.empty())
              return fail("the node there answered with no members");
            auto left = std::make_shared<size_t>(others.size());
            auto met = std::make_shared<size_t>(0);
            auto done = [=](bool ok) mutable {
              *met += ok ? 1 : 0;
              if (--*left > 0)
                return;
              spdlog::info("cluster: joined through {}: {} of {} node(s) met", where, *met,
                           others.size());
              rp.deliver(op_result{});
            };
            // Each over a connection of its own: a handle that came through the seed would
            // reach its node through the seed, and its death would go unnoticed here.
            for (auto& m : others)
              connect(
                self, m.host, m.port,
                [=](caf::actor a) mutable { meet(self, m.name, a, true, done); },
                [=](const std::string& why) mutable {
                  spdlog::warn("cluster: cannot reach node {}: {}", m.name, why);
                  done(false);
                });
          },
          [=](caf::error& err) mutable { fail(self->home_system().render(err)); });
    },
    fail);
}

// Tries again to reach the members that are down.
void reconnect(cluster_actor_t* self) {
  for (auto& [name, m] : self->state.members) {
    if (m.actor || m.connecting)
      continue;
    m.connecting = true;
    auto node = name;
    auto give_up = [=](const std::string&) {
      if (auto it = self->state.members.find(node); it != self->state.members.end())
        it->second.connecting = false;
    };
    connect(
      self, m.host, m.port,
      [=](caf::actor a) { meet(self, node, a, false, [=](bool) { give_up({}); }); },
      give_up);
  }
}

// The vhosts keep their tombstones (cluster/definitions.hpp) while a member is not running.
// Once every member has run for a quarter of keep_deletions (and has met this node), those
// older than keep_deletions may go.
void prune_deletions(cluster_actor_t* self) {
  auto& st = self->state;
  bool all_running = std::all_of(st.members.begin(), st.members.end(),
                                 [](auto& kv) { return kv.second.actor != nullptr; });
  auto now = std::chrono::steady_clock::now();
  if (!all_running) {
    st.all_running_since.reset();
    return;
  }
  if (!st.all_running_since)
    st.all_running_since = now;
  auto period = st.cfg.keep_deletions / 4;
  if (now - *st.all_running_since < period || now - st.pruned < period)
    return;
  st.pruned = now;
  auto before = std::chrono::duration_cast<std::chrono::microseconds>(
                  (std::chrono::system_clock::now() - st.cfg.keep_deletions).time_since_epoch())
                  .count();
  auto stamp = static_cast<uint64_t>(before);
  if (auto registry = current_registry(self->home_system()))
    self->send(registry, cluster_atom::value, prune_atom::value, stamp);
  for_each_vhost(self, [=](const caf::actor& v) {
    self->send(v, cluster_atom::value, prune_atom::value, stamp);
  });
}

// The numbers of this node's queues and connections, to every running member.
void share_numbers(cluster_actor_t* self) {
  auto& st = self->state;
  if (!st.cfg.stats)
    return;
  std::optional<metrics::node_stats> mine;
  for (auto& [name, m] : st.members) {
    if (!m.actor)
      continue;
    if (!mine) {
      mine = metrics::summarize(*st.cfg.stats->get());
      mine->listeners = st.listeners;
    }
    self->send(m.actor, stats_atom::value, *mine, st.cfg.name);
  }
}

void drop_numbers(cluster_actor_t* self, const std::string& node) {
  if (auto& remote = self->state.cfg.remote_stats)
    remote->erase(node);
}

// `remember`: refuse its hello until it joins again (it was removed, or it left), from the
// removal at `stamp` (0: now).
void forget(cluster_actor_t* self, const std::string& name, bool remember, uint64_t stamp) {
  auto& st = self->state;
  auto it = st.members.find(name);
  if (remember) {
    if (!stamp) {
      stamp = next_stamp(st);
      if (it != st.members.end())  // later than its join also where the clocks disagree
        stamp = std::max(stamp, it->second.admitted + 1);
    }
    auto& kept = st.removed[name];
    kept = std::max(kept, stamp);
    save_removed(st);
  }
  if (it == st.members.end())
    return;
  drop_numbers(self, name);
  if (it->second.actor)
    self->demonitor(it->second.actor);
  st.members.erase(it);
  save_members(st);
  spdlog::info("cluster: node {} left the cluster", name);
  for_each_vhost(self, [=](const caf::actor& v) {
    self->send(v, cluster_atom::value, forget_atom::value, name);
  });
}

lookup_result no_reply_consumer() { return lookup_result{amqp::not_found, "NOT_FOUND", {}}; }

// The connection of this node that consumes from amq.rabbitmq.reply-to under `token`.
void find_reply_to_here(cluster_actor_t* self, const std::string& vhost,
                        const std::string& token, caf::response_promise rp) {
  auto registry = current_registry(self->home_system());
  if (!registry)
    return rp.deliver(no_reply_consumer());
  self->request(registry, call_timeout, lookup_atom::value, vhost_atom::value, vhost)
    .then(
      [=](lookup_result& v) mutable {
        if (v.code != 0 || !v.target)
          return rp.deliver(no_reply_consumer());
        rp.delegate(v.target, lookup_atom::value, reply_to_atom::value, token, true);
      },
      [=](caf::error&) mutable { rp.deliver(no_reply_consumer()); });
}

// The same on the running members: the first that has it answers.
void find_reply_to_elsewhere(cluster_actor_t* self, const std::string& vhost,
                             const std::string& token, caf::response_promise rp) {
  std::vector<caf::actor> asked;
  for (auto& [name, m] : self->state.members)
    if (m.actor)
      asked.push_back(m.actor);
  if (asked.empty())
    return rp.deliver(no_reply_consumer());
  auto left = std::make_shared<size_t>(asked.size());
  auto done = std::make_shared<bool>(false);
  auto miss = [=]() mutable {
    if (!*done && --*left == 0) {
      *done = true;
      rp.deliver(no_reply_consumer());
    }
  };
  for (auto& member : asked)
    self->request(member, call_timeout, lookup_atom::value, reply_to_atom::value, vhost, token,
                  true)
      .then(
        [=](lookup_result& r) mutable {
          if (r.code != 0 || !r.target)
            return miss();
          if (!*done) {
            *done = true;
            rp.deliver(std::move(r));
          }
        },
        [=](caf::error&) mutable { miss(); });
}

caf::behavior cluster_behavior(cluster_actor_t* self, cluster_config cfg) {
  install_defaults(self, "cluster");
  self->state.cfg = std::move(cfg);
  self->set_down_handler([=](caf::down_msg& dm) {
    for (auto& [name, m] : self->state.members) {
      if (!m.actor || m.actor.address() != dm.source)
        continue;
      m.actor = nullptr;
      spdlog::warn("cluster: node {} is down ({})", name, self->home_system().render(dm.reason));
      drop_numbers(self, name);
      auto node = name;
      for_each_vhost(self, [=](const caf::actor& v) {
        self->send(v, cluster_atom::value, node_down_atom::value, node);
      });
    }
  });
  return {
    [=](start_atom, uint16_t port) {  // published on `port`: the others can reach it now
      auto& st = self->state;
      st.cfg.port = port;
      load_members(st);
      if (!st.cfg.join.empty() && st.members.empty()) {
        std::string host;
        uint16_t seed_port = 0;
        if (parse_node_address(st.cfg.join, host, seed_port))
          self->send(self, join_atom::value, host, seed_port);
        else
          spdlog::error("cluster: cannot join '{}': not host:port", st.cfg.join);
      }
      self->send(self, tick_atom::value);
    },
    [=](tick_atom) {
      reconnect(self);
      share_numbers(self);
      prune_deletions(self);
      self->delayed_send(self, retry_interval, tick_atom::value);
    },
    [=](join_atom, std::string& host, uint16_t port) -> caf::result<op_result> {
      auto& c = self->state.cfg;
      if ((host == c.host || host == "localhost") && port == c.port)
        return op_result{1, "cannot join the cluster at " + address_of(host, port) +
                              ": that is this node",
                         0};
      auto rp = self->make_response_promise<op_result>();
      join(self, host, port, rp);
      return rp;
    },
    [=](op_result& r) {  // the answer to the join of cluster.join at start
      if (r.code != 0)
        spdlog::error("cluster: {}", r.text);
    },
    [=](join_atom, node_info& who,
        std::string& cookie) -> caf::result<std::vector<node_info>> {
      auto& st = self->state;
      if (auto refused = wrong_cookie(self, who, cookie))
        return std::move(*refused);
      if (who.name == st.cfg.name)
        return caf::make_error(caf::sec::runtime_error,
                               "a node named " + who.name + " is already in the cluster");
      readmit(st, who.name);
      auto& m = st.members[who.name];
      m.host = who.host;
      m.port = who.port;
      m.admitted = std::max(m.admitted, who.admitted);
      save_members(st);
      std::vector<node_info> out{me(self)};
      for (auto& [name, known] : st.members)
        if (name != who.name)
          out.push_back(node_info{name, known.host, known.port, known.actor, known.admitted});
      return out;
    },
    [=](hello_atom, node_info& who, std::string& cookie, cluster_snapshot& theirs,
        bool joining) -> caf::result<cluster_snapshot> {
      auto& st = self->state;
      if (auto refused = wrong_cookie(self, who, cookie))
        return std::move(*refused);
      if (who.name == st.cfg.name)
        return caf::make_error(caf::sec::runtime_error, "two nodes are named " + who.name);
      // Its clock when it sent this (the node that says hello checks from the round trip):
      // only the message's time on the way is unknown here, and that is far below the limit.
      auto now = wall_clock_us();
      check_clock(who.name, now, static_cast<int64_t>(theirs.clock), now);
      if (joining || !removed_since(st, who.name, who.admitted)) {
        readmit(st, who.name);  // (again) after a removal, if there was one
      } else {
        spdlog::warn("cluster: refused node {} ({}:{}): it was removed from the cluster and "
                     "must join again",
                     who.name, who.host, who.port);
        cluster_snapshot refusal;
        refusal.refused = true;
        return refusal;
      }
      member_up(self, who.name, who.host, who.port, who.actor, who.admitted);
      take_removals(self, theirs.removed);
      apply(self, std::move(theirs), who.name, false);
      auto rp = self->make_response_promise<cluster_snapshot>();
      collect(self, [=](cluster_snapshot mine) mutable { rp.deliver(std::move(mine)); });
      return rp;
    },
    [=](replicate_atom, vhost_definitions& d) {  // a change of this node's vhost
      for (auto& [name, m] : self->state.members)
        if (m.actor)
          self->send(m.actor, replicate_atom::value, d, self->state.cfg.name);
    },
    [=](replicate_atom, registry_change& change) {  // a change of this node's registry
      std::vector<registry_change> changes{change};
      for (auto& [name, m] : self->state.members)
        if (m.actor)
          self->send(m.actor, replicate_atom::value, changes, self->state.cfg.name);
    },
    [=](replicate_atom, vhost_definitions& d, std::string& from) {
      if (from_member(self))
        apply_vhost(self, std::move(d), std::move(from));
    },
    [=](replicate_atom, std::vector<registry_change>& changes, std::string&) {
      if (!from_member(self))
        return;
      if (auto registry = current_registry(self->home_system()))
        self->send(registry, cluster_atom::value, std::move(changes), true);
    },
    [](bool) {
      // The registry's answer to changes sent without waiting.
    },
    [](std::vector<std::string>&) {
      // The same (vhosts left out, as for a snapshot: one change is one definition).
    },
    [=](forget_atom, std::string& name) {
      if (from_member(self))
        forget(self, name, true);
    },
    [=](removed_atom, std::string& by) {  // a member learned that this node was removed
      if (!from_member(self))
        return;
      spdlog::error("cluster: node {} says this node was removed from the cluster "
                    "(forget_cluster_node): forgetting it; join the cluster again to be part "
                    "of it",
                    by);
      forget(self, by, false);
    },
    [=](lookup_atom, reply_to_atom, std::string& vhost,
        std::string& token) -> caf::result<lookup_result> {
      auto rp = self->make_response_promise<lookup_result>();
      find_reply_to_elsewhere(self, vhost, token, rp);
      return rp;
    },
    [=](lookup_atom, reply_to_atom, std::string& vhost, std::string& token,
        bool) -> caf::result<lookup_result> {
      if (!from_member(self))  // before the promise, which takes the sender
        return no_reply_consumer();
      auto rp = self->make_response_promise<lookup_result>();
      find_reply_to_here(self, vhost, token, rp);
      return rp;
    },
    [=](stats_atom, metrics::node_stats& numbers, std::string& from) {
      auto& remote = self->state.cfg.remote_stats;
      if (remote && from_member(self) && self->state.members.count(from))
        remote->set(from, std::move(numbers));
    },
    [=](forget_atom, remove_atom, std::string& name) -> op_result {
      auto& st = self->state;
      auto it = st.members.find(name);
      if (it == st.members.end())
        return op_result{404, "no node " + name + " in the cluster", 0};
      if (it->second.actor)
        return op_result{409, "node " + name + " is running: it can leave the cluster itself", 0};
      for (auto& [other, m] : st.members)
        if (m.actor)
          self->send(m.actor, forget_atom::value, name);
      forget(self, name, true);
      return op_result{};
    },
    [=](leave_atom) -> op_result {
      auto& st = self->state;
      std::vector<std::string> names;
      for (auto& [name, m] : st.members) {
        if (m.actor)
          self->send(m.actor, forget_atom::value, st.cfg.name);
        names.push_back(name);
      }
      for (auto& name : names)
        forget(self, name, false);
      spdlog::info("cluster: this node left the cluster");
      return op_result{};
    },
    [=](hello_atom) {
      for (auto& [name, m] : self->state.members)
        if (m.actor)
          meet(self, name, m.actor, false, [](bool) {});
    },
    [=](put_atom, std::vector<metrics::listener_summary>& listeners) {
      self->state.listeners = std::move(listeners);
    },
    [=](list_atom) {
      auto& st = self->state;
      std::vector<node_status> out{
        node_status{st.cfg.name, address_of(st.cfg.host, st.cfg.port), true}};
      for (auto& [name, m] : st.members)
        out.push_back(node_status{name, address_of(m.host, m.port), m.actor != nullptr});
      return out;
    },
  };
}

}  // namespace

bool parse_node_address(const std::string& text, std::string& host, uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return false;
  auto digits = std::string_view{text}.substr(colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc{} || end != digits.data() + digits.size() || port == 0)
    return false;
  host = text.substr(0, colon);
  return true;
}

caf::actor spawn_cluster(caf::actor_system& sys, cluster_config cfg) {
  auto a = sys.spawn(cluster_behavior, std::move(cfg));
  sys.registry().erase(caf::atom("cluster"));
  sys.registry().put(caf::atom("cluster"), a);
  return a;
}

void add_cluster_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<publish_batch>("warren::publish_batch");
  cfg.add_message_type<route_report>("warren::route_report");
  cfg.add_message_type<confirm_report>("warren::confirm_report");
  cfg.add_message_type<delivery_batch>("warren::delivery_batch");
  cfg.add_message_type<consumer_spec>("warren::consumer_spec");
  cfg.add_message_type<get_result>("warren::get_result");
  cfg.add_message_type<op_result>("warren::op_result");
  cfg.add_message_type<lookup_result>("warren::lookup_result");
  cfg.add_message_type<queue_declared>("warren::queue_declared");
  cfg.add_message_type<exchange_spec>("warren::exchange_spec");
  cfg.add_message_type<queue_spec>("warren::queue_spec");
  cfg.add_message_type<binding_spec>("warren::binding_spec");
  cfg.add_message_type<std::vector<uint64_t>>("std::vector<uint64_t>");
  cfg.add_message_type<user_info>("warren::user_info");
  cfg.add_message_type<permission_info>("warren::permission_info");
  cfg.add_message_type<topic_permission_info>("warren::topic_permission_info");
  cfg.add_message_type<limit_info>("warren::limit_info");
  cfg.add_message_type<policy_info>("warren::policy_info");
  cfg.add_message_type<vhost_definitions>("warren::vhost_definitions");
  cfg.add_message_type<node_info>("warren::node_info");
  cfg.add_message_type<std::vector<node_info>>("std::vector<warren::node_info>");
  cfg.add_message_type<cluster_snapshot>("warren::cluster_snapshot");
  cfg.add_message_type<registry_change>("warren::registry_change");
  cfg.add_message_type<std::vector<registry_change>>("std::vector<warren::registry_change>");
  cfg.add_message_type<metrics::node_stats>("warren::metrics::node_stats");
}

}  // namespace warren
