// The broker's durable metadata: vhosts, users, permissions, exchanges, queues (with their
// arguments and the name of their message file) and bindings, kept in <data>/catalog.db
// (SQLite, WAL, synchronous=FULL). What stays true:
//  - every call that changes something is one committed, synced transaction, cascades
//    included: deleting a queue or exchange deletes its bindings, deleting a vhost deletes
//    everything in it (the deletions it keeps too), deleting a user deletes its
//    permissions; either deletes its limits; deleting a vhost deletes its policies;
//  - no two queues share a message file (the file column is UNIQUE);
//  - queue_file_name() is a pure function of (vhost, name): the same queue always maps to
//    the same file.
// Arguments are opaque bytes here; the caller encodes and decodes AMQP field tables.
// One object is used by one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "persistence/sqlite_db.hpp"

namespace warren::persistence {

struct vhost_row {
  std::string name;
};

struct user_row {
  std::string name, password_hash, tags;
};

struct permission_row {
  std::string user, vhost, configure, write, read;
};

// A vhost limit (max-connections, max-queues) or a user limit (max-connections,
// max-channels), as RabbitMQ names them.
struct limit_row {
  bool user = false;  // a user's limit, else a vhost's
  std::string name;   // the vhost's or user's name
  std::string limit;
  int64_t value = 0;
};

// A policy or operator policy of a vhost (actors/policy.hpp).
struct policy_row {
  std::string vhost, name;
  bool operator_policy = false;
  std::string pattern, apply_to;
  double priority = 0;
  std::string definition;  // an encoded AMQP field table
};

// A topic permission: for `user` in `vhost`, on the topic exchange `exchange`.
struct topic_permission_row {
  std::string user, vhost, exchange, write, read;
};

struct exchange_row {
  std::string vhost, name, type;
  bool durable = true, auto_delete = false, internal = false;
  std::string arguments;
};

struct queue_row {
  std::string vhost, name;
  bool durable = true, auto_delete = false;
  std::string arguments;
  std::string file;  // message file, relative to the data directory; "" → queue_file_name()
  uint64_t message_count_hint = 0;
};

struct binding_row {
  std::string vhost, source, destination;
  bool to_exchange = false;  // destination is an exchange (else a queue)
  std::string key, arguments;
};

// A deletion that a node of a cluster keeps for the members that were not there
// (cluster/definitions.hpp), so that it holds across a restart: `scope` is the vhost ("" for
// the registry's), `kind` what was deleted ("exchange", "queue", "binding", "registry"),
// `key` which one (as the vhost or the registry names it), `stamp` when.
struct deletion_row {
  std::string scope, kind, key;
  uint64_t stamp = 0;
};

struct catalog_snapshot {
  std::vector<vhost_row> vhosts;
  std::vector<user_row> users;
  std::vector<permission_row> permissions;
  std::vector<limit_row> limits;
  std::vector<topic_permission_row> topic_permissions;
  std::vector<policy_row> policies;
  std::vector<exchange_row> exchanges;
  std::vector<queue_row> queues;
  std::vector<binding_row> bindings;
  std::vector<deletion_row> deletions;
};

// "queues/<24 hex digits of SHA-256 over vhost and name>-<name reduced to [A-Za-z0-9._-],
// at most 40 characters>.db": stable, unique in practice, safe on any file system.
std::string queue_file_name(const std::string& vhost, const std::string& name);

class catalog {
 public:
  // Opens or creates the catalog (and its directory).
  bool open(const std::string& path, std::string& error);
  void close();
  bool is_open() const { return db_.is_open(); }

  bool load(catalog_snapshot& out, std::string& error);

  bool put_vhost(const vhost_row& row, std::string& error);
  // Deletes the vhost and all its exchanges, queues, bindings and permissions. The message
  // files of the queues it deleted are appended to removed_queue_files when given (the
  // caller closes and destroys them).
  bool delete_vhost(const std::string& name, std::string& error,
                    std::vector<std::string>* removed_queue_files = nullptr);

  bool put_user(const user_row& row, std::string& error);
  bool delete_user(const std::string& name, std::string& error);  // and its permissions
  bool put_permission(const permission_row& row, std::string& error);
  bool delete_permission(const std::string& user, const std::string& vhost, std::string& error);
  bool put_topic_permission(const topic_permission_row& row, std::string& error);
  // Every topic permission of `user` in `vhost`.
  bool delete_topic_permissions(const std::string& user, const std::string& vhost,
                                std::string& error);
  bool put_limit(const limit_row& row, std::string& error);
  bool delete_limit(bool user, const std::string& name, const std::string& limit,
                    std::string& error);

  bool put_policy(const policy_row& row, std::string& error);
  bool delete_policy(const std::string& vhost, bool operator_policy, const std::string& name,
                     std::string& error);

  bool put_exchange(const exchange_row& row, std::string& error);
  // Also deletes the bindings where the exchange is the source or the destination.
  bool delete_exchange(const std::string& vhost, const std::string& name, std::string& error);

  // Inserts or replaces; an empty row.file is stored as queue_file_name(vhost, name).
  bool put_queue(const queue_row& row, std::string& error);
  // Also deletes the bindings to the queue.
  bool delete_queue(const std::string& vhost, const std::string& name, std::string& error);
  bool set_message_count_hint(const std::string& vhost, const std::string& name, uint64_t n,
                              std::string& error);

  bool put_binding(const binding_row& row, std::string& error);
  bool delete_binding(const binding_row& row, std::string& error);

  // Inserts, or keeps the later stamp.
  bool put_deletion(const deletion_row& row, std::string& error);
  // The deletion of that scope, kind and key (row.stamp is not looked at).
  bool delete_deletion(const deletion_row& row, std::string& error);
  // Every deletion older than `before`.
  bool prune_deletions(uint64_t before, std::string& error);

  // PRAGMA quick_check: true when the catalog file is sound; report holds what it found.
  bool check(std::string& report);

 private:
  // Runs `sql` once with the given text parameters, inside the caller's transaction or alone.
  bool run(const char* sql, const std::vector<std::string>& params, std::string& error);
  bool begin(std::string& error);
  bool finish(bool ok, std::string& error);

  sqlite_db db_;
};

}  // namespace warren::persistence
