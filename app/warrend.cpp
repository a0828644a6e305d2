// warrend: the Warren broker daemon. Boot order: settings and logging, the store check and
// recovery, the actor system, the stats collector, the root supervisor (which starts the
// catalog and message store actors, the registry with users and vhosts as recovered, and the
// connection supervisor), then the AMQP, STOMP and HTTP listeners. SIGTERM/SIGINT stop the
// listeners, close every connection with 320 CONNECTION_FORCED, commit and close the store,
// and exit 0. If the root supervisor gives up, warrend logs why and exits with 70.
#include <unistd.h>

#include <csignal>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include <boost/asio.hpp>
#include <boost/asio/ssl/context.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/connection.hpp"
#include "actors/messages.hpp"
#include "actors/registry_actor.hpp"
#include "actors/vhost_actor.hpp"
#include "app/config.hpp"
#include "app/logging.hpp"
#include "app/recovery.hpp"
#include "cluster/cluster_actor.hpp"
#include "management/api.hpp"
#include "metrics/memory_trim.hpp"
#include "metrics/restarts.hpp"
#include "metrics/stats_collector.hpp"
#include "actors/resource_alarms.hpp"
#include "net/http_server.hpp"
#include "actors/stomp_connection.hpp"
#include "net/amqp_session.hpp"
#include "net/stomp_session.hpp"
#include "net/io_pool.hpp"
#include "net/listener.hpp"
#include "persistence/actors/catalog_actor.hpp"
#include "persistence/actors/message_store_actor.hpp"
#include "supervisor/connection_supervisor.hpp"
#include "supervisor/supervisor.hpp"

namespace asio = boost::asio;

namespace {

// The current handles of the root supervisor's children: a restarted child has a new one,
// which its start function records here for the children started after it and for the
// listeners and the shutdown path.
struct node_directory {
  std::mutex mutex;
  caf::actor catalog;
  std::vector<caf::actor> stores;
  caf::actor connections;

  template <class F>
  auto with(F f) {
    std::lock_guard lock{mutex};
    return f(*this);
  }
};

constexpr int exit_supervision_gave_up = 70;

// "amqps" -> "AMQPS", for the log.
std::string upper(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// RabbitMQ's load_definitions: a file, or every *.json file of a directory in name order,
// imported through the management API. False (after logging why) at the first failure.
bool load_definitions(const warren::mgmt::context& ctx, const std::string& where) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_directory(where, ec)) {
    for (auto& e : fs::directory_iterator(where, ec))
      if (e.path().extension() == ".json" && e.is_regular_file(ec))
        files.push_back(e.path());
    std::sort(files.begin(), files.end());
  } else {
    files.emplace_back(where);
  }
  if (ec) {
    spdlog::critical("load_definitions: cannot read {}: {}", where, ec.message());
    return false;
  }
  for (auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (!in.is_open() || in.bad()) {
      spdlog::critical("load_definitions: cannot read {}", f.string());
      return false;
    }
    if (auto failed = warren::mgmt::import_definitions(ctx, text)) {
      std::string reason;  // on one line ("Validation failed\n\n..." has several)
      for (char c : *failed)
        if ((c != '\n' && c != ' ') || (!reason.empty() && reason.back() != ' '))
          reason += c == '\n' ? ' ' : c;
      spdlog::critical("load_definitions: importing {} failed: {}", f.string(), reason);
      return false;
    }
    spdlog::info("imported definitions from {}", f.string());
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto parsed = warren::parse_command_line(argc, argv, exit_code);
  if (!parsed)
    return exit_code;
  auto cfg = *parsed;
  warren::setup_logging(cfg.log_level, cfg.log_file);

  std::error_code fs_ec;
  std::filesystem::create_directories(cfg.data_dir, fs_ec);
  if (fs_ec) {
    spdlog::critical("cannot create data directory {}: {}", cfg.data_dir, fs_ec.message());
    return 1;
  }

  // TLS between cluster nodes: every node shows a certificate the others' CAs signed (CAF's
  // openssl module asks for one on both sides). Checked here, as OpenSSL will read them.
  bool cluster_tls = cfg.cluster_tls.configured() || !cfg.cluster_tls.cacertfile.empty();
  if (cluster_tls) {
    auto& t = cfg.cluster_tls;
    std::string err;
    if (t.certfile.empty() || t.keyfile.empty() || t.cacertfile.empty())
      err = "cluster.ssl_options needs certfile, keyfile and cacertfile";
    else if (cfg.cluster_port < 0)
      err = "cluster.ssl_options is set but the node has no cluster port";
    else {
      auto check = t;
      check.verify_peer = true;  // the CAs are read as well
      if (!warren::net::make_server_context(check, err) && err.empty())
        err = "cannot read them";
    }
    if (!err.empty()) {
      spdlog::critical("not starting: TLS between cluster nodes: {}", err);
      spdlog::shutdown();
      return 1;
    }
  }

  size_t queue_memory = static_cast<size_t>(cfg.queue_memory_mb) << 20;
  auto recovered = warren::recover_store(cfg.data_dir, cfg.on_corruption, queue_memory);
  if (!recovered.ok) {
    spdlog::critical("not starting: {}", recovered.error);
    spdlog::shutdown();
    return 3;
  }

  unsigned workers = cfg.workers > 0 ? static_cast<unsigned>(cfg.workers)
                                     : std::max(1u, std::thread::hardware_concurrency());
  caf::actor_system_config caf_cfg;
  caf_cfg.set("scheduler.max-threads", static_cast<size_t>(workers));
  caf_cfg.set("work-stealing.moderate-poll-attempts", static_cast<size_t>(0));
  // An actor yields its worker after this many messages. CAF's default is no limit: a
  // publisher's connection actor, fed by the I/O thread as fast as it forwards, then kept the
  // worker while its queues' mailboxes grew without their actors getting to run and push
  // back (mailbox_flow). With --workers 1 that took 3-4 GiB and cut S6 to 100-180k msg/s in
  // most runs; with the limit S6 on one worker ran at 2.3-2.7M msg/s within 450 MB.
  caf_cfg.set("scheduler.max-throughput", static_cast<size_t>(100));
  if (cfg.cluster_port >= 0) {
    // Nodes talk over CAF's middleman. Heartbeats let a node notice another that hangs or
    // whose network went away, not only one whose connection was closed.
    caf_cfg.load<caf::io::middleman>();
    caf_cfg.set("middleman.heartbeat-interval", caf::timespan{std::chrono::milliseconds(500)});
    caf_cfg.set("middleman.connection-timeout", caf::timespan{std::chrono::seconds(3)});
    if (cluster_tls) {
      caf_cfg.load<caf::openssl::manager>();
      caf_cfg.openssl_certificate = cfg.cluster_tls.certfile;
      caf_cfg.openssl_key = cfg.cluster_tls.keyfile;
      caf_cfg.openssl_cafile = cfg.cluster_tls.cacertfile;
      caf_cfg.openssl_passphrase = cfg.cluster_tls.password;
    }
    warren::add_cluster_types(caf_cfg);
  }
  caf::actor_system sys{caf_cfg};
  size_t io_threads = cfg.io_threads > 0 ? static_cast<size_t>(cfg.io_threads)
                                         : std::max(1u, workers / 4);
  spdlog::info("starting Warren 0.1.0 with {} scheduler worker(s), {} I/O thread(s), data in {}",
               workers, io_threads, cfg.data_dir);

  std::string node_name = cfg.cluster_name;
  if (node_name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    node_name = std::string{"warren@"} + host;
  }
  auto settings = std::make_shared<warren::broker_settings>();
  settings->node = node_name;
  settings->heartbeat = cfg.heartbeat;
  settings->frame_max = cfg.frame_max;
  settings->consumer_timeout_ms = cfg.consumer_timeout_ms;
  settings->channel_max = cfg.channel_max;
  settings->auth_mechanisms = cfg.auth_mechanisms;
  settings->cert_login_common_name = cfg.cert_login_common_name;
  settings->stomp_cert_login = cfg.stomp_cert_login;
  // The stats collector first: every actor spawned from here on finds it and reports to it.
  auto stats = std::make_shared<warren::metrics::snapshot_store>();
  auto collector = warren::metrics::spawn_stats_collector(
    sys, stats, std::chrono::milliseconds(cfg.stats_interval_ms));
  // Gives memory back to the system once a burst is over (a handle kept: see root_watcher).
  warren::metrics::trim_policy trim;
  trim.interval = std::chrono::milliseconds(cfg.memory_trim_interval_ms);
  auto trimmer = warren::metrics::spawn_memory_trimmer(sys, trim);
  // Memory and disk alarms: before any connection, which asks it where things stand.
  warren::alarm_limits alarm_cfg;
  alarm_cfg.memory_relative = cfg.memory_relative;
  alarm_cfg.memory_absolute = cfg.memory_absolute;
  alarm_cfg.disk_free_absolute = cfg.disk_free_absolute;
  alarm_cfg.data_dir = cfg.data_dir;
  [[maybe_unused]] auto alarms = warren::spawn_resource_alarms(sys, alarm_cfg);

  // The supervision tree (README "Supervision"):
  //   root (rest_for_one) -> catalog, store0..storeN, registry, connections
  //   registry (one_for_one over vhosts) -> vhost (one_for_one over its exchanges and queues)
  //   connections: watches every connection (temporary: never restarted)
  warren::sup::intensity limits{static_cast<size_t>(cfg.max_restarts),
                                std::chrono::milliseconds(cfg.restart_period_ms)};
  auto dir = std::make_shared<node_directory>();
  warren::sup::config root;
  root.name = "root";
  root.strat = warren::sup::strategy::rest_for_one;
  root.limits = limits;
  root.children.push_back({"catalog", [dir, db = recovered.catalog](caf::actor_system& s) {
    auto a = warren::persistence::spawn_catalog_actor(s, db);
    dir->with([&](node_directory& d) { d.catalog = a; });
    return a;
  }});
  // Store actors run on threads of their own: one per worker, so that writes for different
  // queues proceed in parallel.
  warren::persistence::store_settings store_cfg;
  store_cfg.max_wait = std::chrono::milliseconds(cfg.commit_interval_ms);
  dir->stores.resize(workers);
  for (unsigned i = 0; i < workers; ++i)
    root.children.push_back(
      {"store" + std::to_string(i), [dir, store_cfg, i](caf::actor_system& s) {
         auto a = warren::persistence::spawn_message_store(s, store_cfg);
         dir->with([&](node_directory& d) { d.stores[i] = a; });
         return a;
       }});
  // The registry: on the first start with what recovery found, after a restart from the
  // catalog (a restart of a store or the catalog restarts it too: rest_for_one).
  auto first_boot = std::make_shared<std::optional<warren::registry_config>>(std::in_place);
  {
    auto& reg_cfg = **first_boot;
    reg_cfg.vhosts = std::move(recovered.vhosts);
    for (auto& u : recovered.users)
      reg_cfg.users.push_back(warren::user_info{u.name, u.password_hash, u.tags});
    for (auto& p : recovered.permissions)
      reg_cfg.permissions.push_back(
        warren::permission_info{p.user, p.vhost, p.configure, p.write, p.read});
    for (auto& t : recovered.topic_permissions)
      reg_cfg.topic_permissions.push_back(
        warren::topic_permission_info{t.user, t.vhost, t.exchange, t.write, t.read});
    for (auto& l : recovered.limits)
      reg_cfg.limits.push_back(warren::limit_info{l.user, l.name, l.limit, l.value});
    for (auto& p : recovered.policies)
      reg_cfg.policies.push_back(warren::policy_from_row(std::move(p)));
    reg_cfg.deletions = std::move(recovered.deletions);
    reg_cfg.default_user = cfg.default_user;
    reg_cfg.default_pass = cfg.default_pass;
  }
  auto loopback_users = cfg.loopback_users;
  root.children.push_back(
    {"registry", [dir, first_boot, limits, data_dir = cfg.data_dir, queue_memory,
                  loopback_users, node_name](caf::actor_system& s) {
       warren::registry_config rc;
       if (*first_boot) {
         rc = std::move(**first_boot);
         first_boot->reset();
       } else {
         rc.reload = true;
       }
       rc.loopback_users = loopback_users;
       rc.persistence.data_dir = data_dir;
       rc.persistence.queue_memory_limit = queue_memory;
       rc.persistence.limits = limits;
       rc.persistence.node = node_name;
       dir->with([&](node_directory& d) {
         rc.persistence.catalog = d.catalog;
         rc.persistence.stores = d.stores;
       });
       auto a = warren::spawn_registry(s, std::move(rc));
       warren::register_registry(s, a);
       return a;
     }});
  root.children.push_back({"connections", [dir](caf::actor_system& s) {
    auto a = warren::spawn_connection_supervisor(s);
    dir->with([&](node_directory& d) { d.connections = a; });
    return a;
  }});
  root.on_restart = [](const std::string& id, const caf::actor&) {
    warren::metrics::count_restart(id.rfind("store", 0) == 0 ? "store" : id, "", id);
  };
  auto root_sup = warren::sup::spawn_supervisor(sys, std::move(root));
  // When the root gives up, the node cannot serve consistently any more: stop it. (The handle
  // is kept: CAF destroys an actor nobody references.)
  auto root_watcher = sys.spawn(
    [](caf::event_based_actor* self, caf::actor watched) -> caf::behavior {
      self->monitor(watched);
      self->set_down_handler([=](caf::down_msg& dm) {
        spdlog::critical("the supervision tree gave up ({}); stopping the node",
                         self->home_system().render(dm.reason));
        spdlog::shutdown();
        std::_Exit(exit_supervision_gave_up);
      });
      return {[](warren::tick_atom) {}};
    },
    root_sup);
  {
    // The root starts its children when it runs first; wait for that before accepting anyone.
    caf::scoped_actor self{sys};
    self->request(root_sup, std::chrono::seconds(30), warren::sup::which_atom::value)
      .receive([](warren::sup::child_list&) {},
               [&](caf::error& err) {
                 spdlog::critical("the supervision tree did not start: {}", sys.render(err));
               });
  }
  std::shared_ptr<const warren::broker_settings> shared_settings = settings;
  auto conn_sup = [dir] { return dir->with([](node_directory& d) { return d.connections; }); };
  // From here on actors run that never stop by themselves: ~actor_system would wait for them
  // forever, so a failed start exits without destructors (nothing durable is pending yet).
  auto exit_now = [](int code) {
    spdlog::shutdown();
    std::_Exit(code);
    return code;
  };

  auto remote_stats = std::make_shared<warren::metrics::remote_stats_store>();
  caf::actor cluster;
  uint16_t cluster_port = 0;  // as bound
  if (cfg.cluster_port >= 0) {
    // After the registry, which it asks for what the node has when it meets the others.
    warren::cluster_config cc;
    cc.name = node_name;
    cc.host = cfg.bind_address;
    cc.data_dir = cfg.data_dir;
    cc.join = cfg.cluster_join;
    cc.cookie = cfg.cluster_cookie;
    cc.keep_deletions = std::chrono::seconds(cfg.cluster_keep_deletions_s);
    cc.stats = stats;
    cc.remote_stats = remote_stats;
    cc.tls = cluster_tls;
    cluster = warren::spawn_cluster(sys, cc);
    auto wanted = static_cast<uint16_t>(cfg.cluster_port);
    auto bound = cluster_tls
                   ? caf::openssl::publish(cluster, wanted, cfg.bind_address.c_str(), true)
                   : sys.middleman().publish(cluster, wanted, cfg.bind_address.c_str(), true);
    if (!bound) {
      spdlog::critical("cannot listen for the cluster on {}:{}: {}", cfg.bind_address,
                       cfg.cluster_port, sys.render(bound.error()));
      exit_now(1);
    }
    cluster_port = *bound;
    caf::anon_send(cluster, warren::start_atom::value, *bound);
    spdlog::info("listening cluster{} {}:{} as node {}", cluster_tls ? " (TLS)" : "",
                 cfg.bind_address, *bound, node_name);
  }

  // The I/O threads: this one and io_threads - 1 more, each reading its share of the sockets.
  warren::net::io_pool io{sys, io_threads, cfg.inline_io};
  // SIGINT and SIGTERM are ours before the first "listening" line: one that arrives before
  // the handler below is set waits in the signal_set instead of killing the process.
  asio::signal_set signals{io.main(), SIGINT, SIGTERM};
  // The TLS context of AMQPS and STOMP over TLS (ssl_options.*), if either listens.
  auto tls_context = [&](const warren::net::tls_options& opt, const char* keys) {
    std::string err;
    auto ctx = warren::net::make_server_context(opt, err);
    if (!ctx) {
      spdlog::critical("cannot start the TLS listeners ({}): {}", keys, err);
      exit_now(1);
    }
    return ctx;
  };
  std::shared_ptr<asio::ssl::context> tls;
  if (cfg.amqps_port >= 0 || cfg.stomps_port >= 0)
    tls = tls_context(cfg.tls, "ssl_options.*");
  auto handshake_timeout = std::chrono::milliseconds(cfg.tls.handshake_timeout_ms);
  // The management API's context (the HTTP listeners come after the others).
  auto mgmt = std::make_shared<warren::mgmt::context>();
  mgmt->sys = &sys;
  mgmt->fault_injection = cfg.fault_injection;
  mgmt->collector = collector;
  mgmt->stats = stats;
  mgmt->remote_stats = remote_stats;
  mgmt->data_dir = cfg.data_dir;
  mgmt->node = node_name;
  mgmt->exporter = warren::metrics::exporter_options{
    cfg.per_object_metrics,        cfg.data_dir,
    mgmt->node,                    {},
    warren::mgmt::compatible_version, warren::mgmt::product_name,
    warren::mgmt::product_version};
  // load_definitions: imported before any client can connect, as RabbitMQ does; a file that
  // cannot be read or imported stops the start.
  if (!cfg.load_definitions.empty() && !load_definitions(*mgmt, cfg.load_definitions))
    exit_now(1);

  // A listener whose sessions are of type Session, each with its connection actor.
  auto listen = [&](const char* proto, int port, std::shared_ptr<asio::ssl::context> ctx,
                    auto session_type, auto spawn) {
    using session_t = typename decltype(session_type)::type;
    std::unique_ptr<warren::net::listener> l;
    try {
      l = std::make_unique<warren::net::listener>(
        io, cfg.bind_address, static_cast<uint16_t>(port),
        [&sys, shared_settings, conn_sup, ctx, handshake_timeout, proto,
         spawn](asio::ip::tcp::socket s) {
          auto session = ctx ? std::make_shared<session_t>(std::move(s), ctx, handshake_timeout)
                             : std::make_shared<session_t>(std::move(s));
          spdlog::info("accepting {} connection {}", proto, session->peer());
          auto conn = spawn(sys, session, shared_settings);
          caf::anon_send(conn_sup(), warren::start_atom::value, conn);
          session->start(conn);
        });
    } catch (const std::exception& e) {
      spdlog::critical("cannot listen for {} on {}:{}: {}", upper(proto), cfg.bind_address,
                       port, e.what());
      exit_now(1);
    }
    spdlog::info("listening {} {}:{}", proto, l->address(), l->port());
    return l;
  };
  auto amqp_session = std::type_identity<warren::net::amqp_session>{};
  auto stomp_session = std::type_identity<warren::net::stomp_session>{};
  auto spawn_amqp = [](caf::actor_system& s, std::shared_ptr<warren::net::amqp_session> session,
                       std::shared_ptr<const warren::broker_settings> settings) {
    return warren::spawn_connection(s, std::move(session), std::move(settings));
  };
  auto spawn_stomp = [](caf::actor_system& s,
                        std::shared_ptr<warren::net::stomp_session> session,
                        std::shared_ptr<const warren::broker_settings> settings) {
    return warren::spawn_stomp_connection(s, std::move(session), std::move(settings));
  };
  // Listener name (the log line's) and the management API's protocol name, as RabbitMQ's.
  std::vector<std::pair<std::unique_ptr<warren::net::listener>, const char*>> listeners;
  listeners.emplace_back(listen("amqp", cfg.amqp_port, nullptr, amqp_session, spawn_amqp),
                         "amqp");
  listeners.emplace_back(listen("stomp", cfg.stomp_port, nullptr, stomp_session, spawn_stomp),
                         "stomp");
  if (cfg.amqps_port >= 0)
    listeners.emplace_back(listen("amqps", cfg.amqps_port, tls, amqp_session, spawn_amqp),
                           "amqp/ssl");
  if (cfg.stomps_port >= 0)
    listeners.emplace_back(listen("stomps", cfg.stomps_port, tls, stomp_session, spawn_stomp),
                           "stomp/ssl");

  // HTTP: management API, /metrics and the web page, on threads of their own.
  // A TLS listener with its certificate files, for the certificate expiration health check.
  auto tls_files = [&](const warren::mgmt::listener_info& l, const warren::net::tls_options& t) {
    mgmt->tls_listeners.push_back({l, t.certfile, t.cacertfile});
  };
  for (auto& [l, protocol] : listeners) {
    mgmt->listeners.push_back({protocol, l->address(), l->port()});
    if (std::string_view{protocol}.ends_with("/ssl"))
      tls_files(mgmt->listeners.back(), cfg.tls);
  }
  auto serve_http = [&](const char* proto, int port, std::shared_ptr<asio::ssl::context> ctx) {
    bool tls = ctx != nullptr;
    std::unique_ptr<warren::net::http_server> server;
    try {
      server = std::make_unique<warren::net::http_server>(
        cfg.bind_address, static_cast<uint16_t>(port),
        [mgmt](const warren::net::http_request& req, bool local_loopback) {
          return warren::mgmt::handle_http(*mgmt, req, local_loopback);
        },
        std::move(ctx), std::chrono::milliseconds(cfg.management_tls.handshake_timeout_ms));
    } catch (const std::exception& e) {
      spdlog::critical("cannot listen for {} on {}:{}: {}", upper(proto), cfg.bind_address,
                       port, e.what());
      exit_now(1);
    }
    mgmt->listeners.push_back({proto, server->address(), server->port()});
    if (tls)
      tls_files(mgmt->listeners.back(), cfg.management_tls);
    return server;
  };
  std::vector<std::unique_ptr<warren::net::http_server>> http_servers;
  std::vector<const char*> http_protocols;  // of each server, for the log
  http_servers.push_back(serve_http("http", cfg.http_port, nullptr));
  http_protocols.push_back("http");
  if (cfg.https_port >= 0) {
    http_servers.push_back(
      serve_http("https", cfg.https_port, tls_context(cfg.management_tls, "management.ssl.*")));
    http_protocols.push_back("https");
  }
  if (cluster) {  // RabbitMQ lists its inter-node port as "clustering"
    mgmt->listeners.push_back({"clustering", cfg.bind_address, cluster_port});
    if (cluster_tls)
      tls_files(mgmt->listeners.back(), cfg.cluster_tls);
    caf::anon_send(cluster, warren::put_atom::value, mgmt->listeners);
  }
  // Requests read the management context's listeners: they are all in it before the first.
  for (size_t i = 0; i < http_servers.size(); ++i) {
    http_servers[i]->start();
    spdlog::info("listening {} {}:{}", http_protocols[i], http_servers[i]->address(),
                 http_servers[i]->port());
  }

  std::thread stopper;
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec)
      return;
    spdlog::info("received signal {}, stopping: closing connections", sig);
    for (auto& l : listeners)
      l.first->stop();
    stopper = std::thread([&] {
      for (auto& h : http_servers)
        h->stop();
      caf::scoped_actor self{sys};
      self->request(conn_sup(), std::chrono::seconds(10), warren::shutdown_atom::value)
        .receive([](bool) {}, [](caf::error&) {});
      bool stores_ok = true;
      auto stores = dir->with([](node_directory& d) { return d.stores; });
      for (auto& s : stores)
        self->request(s, std::chrono::seconds(10), warren::shutdown_atom::value)
          .receive([](bool) {}, [&](caf::error&) { stores_ok = false; });
      if (stores_ok)
        warren::mark_clean_shutdown(cfg.data_dir);
      io.stop();
    });
  });
  std::signal(SIGPIPE, SIG_IGN);
  // This thread and the pool's others read the sockets; each also runs the actors a small
  // read wakes (net/inline_unit).
  io.run();
  if (stopper.joinable())
    stopper.join();
  spdlog::info("Warren stopped");
  spdlog::shutdown();
  // Exchange and queue actors live as long as the node; nothing durable is pending in memory.
  sys.await_actors_before_shutdown(false);
  std::cout.flush();
  std::_Exit(0);
}
