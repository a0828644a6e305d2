// Implementation of the catalog (see catalog.hpp). Schema version 1, identified by
// PRAGMA application_id = catalog_application_id. Names and keys are stored byte for byte
// (TEXT, binary collation); arguments as BLOBs. Metadata changes are rare, so statements are
// prepared per call rather than cached.
#include "persistence/catalog.hpp"

#include <sqlite3.h>

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "persistence/checksum.hpp"

namespace warren::persistence {

namespace fs = std::filesystem;

namespace {

constexpr int64_t catalog_application_id = 0x57724354;  // "WrCT"
constexpr int64_t catalog_schema_version = 1;

constexpr const char* schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS vhosts(name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, password_hash TEXT NOT NULL,
  tags TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS permissions(user TEXT NOT NULL, vhost TEXT NOT NULL,
  configure TEXT NOT NULL, write TEXT NOT NULL, read TEXT NOT NULL, PRIMARY KEY(user, vhost));
CREATE TABLE IF NOT EXISTS topic_permissions(user TEXT NOT NULL, vhost TEXT NOT NULL,
  exchange TEXT NOT NULL, write TEXT NOT NULL, read TEXT NOT NULL,
  PRIMARY KEY(user, vhost, exchange));
CREATE TABLE IF NOT EXISTS limits(scope TEXT NOT NULL, name TEXT NOT NULL, limit_name TEXT NOT NULL,
  value INTEGER NOT NULL, PRIMARY KEY(scope, name, limit_name));
CREATE TABLE IF NOT EXISTS policies(vhost TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
  pattern TEXT NOT NULL, apply_to TEXT NOT NULL, priority TEXT NOT NULL, definition BLOB NOT NULL,
  PRIMARY KEY(vhost, kind, name));
CREATE TABLE IF NOT EXISTS exchanges(vhost TEXT NOT NULL, name TEXT NOT NULL,
  type TEXT NOT NULL, durable INTEGER NOT NULL, auto_delete INTEGER NOT NULL,
  internal INTEGER NOT NULL, arguments BLOB NOT NULL, PRIMARY KEY(vhost, name));
CREATE TABLE IF NOT EXISTS queues(vhost TEXT NOT NULL, name TEXT NOT NULL,
  durable INTEGER NOT NULL, auto_delete INTEGER NOT NULL, arguments BLOB NOT NULL,
  file TEXT NOT NULL UNIQUE, message_count_hint INTEGER NOT NULL, PRIMARY KEY(vhost, name));
CREATE TABLE IF NOT EXISTS bindings(vhost TEXT NOT NULL, source TEXT NOT NULL,
  destination TEXT NOT NULL, to_exchange INTEGER NOT NULL, key TEXT NOT NULL,
  arguments BLOB NOT NULL, PRIMARY KEY(vhost, source, destination, to_exchange, key, arguments));
CREATE TABLE IF NOT EXISTS deletions(scope TEXT NOT NULL, kind TEXT NOT NULL, key BLOB NOT NULL,
  stamp INTEGER NOT NULL, PRIMARY KEY(scope, kind, key));
)sql";

}  // namespace

std::string queue_file_name(const std::string& vhost, const std::string& name) {
  // Length-prefixing vhost keeps ("a", "bc") and ("ab", "c") apart.
  std::string hash = sha256_hex(std::to_string(vhost.size()) + ":" + vhost + name).substr(0, 24);
  std::string safe;
  for (char c : name) {
    if (safe.size() == 40) break;
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-';
    safe.push_back(keep ? c : '_');
  }
  return "queues/" + hash + (safe.empty() ? "" : "-" + safe) + ".db";
}

bool catalog::open(const std::string& path, std::string& error) {
  close();
  fs::path parent = fs::path{path}.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    if (fs::create_directories(parent, ec)) sync_directory(parent.parent_path().string());
    if (ec) {
      error = "cannot create directory " + parent.string() + ": " + ec.message();
      return false;
    }
  }
  if (!db_.open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, error)) return false;
  int64_t app_id = 0, version = 0, tables = 0;
  bool ok = db_.query_int("PRAGMA application_id", app_id, error) &&
            db_.query_int("PRAGMA user_version", version, error) &&
            db_.query_int("SELECT count(*) FROM sqlite_schema", tables, error);
  if (ok && tables > 0 && app_id != catalog_application_id) {
    error = "not a catalog file (application_id " + std::to_string(app_id) + ")";
    ok = false;
  }
  if (ok && version > catalog_schema_version) {
    error = "catalog schema version " + std::to_string(version) + " is newer than this build";
    ok = false;
  }
  ok = ok && db_.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                      " PRAGMA journal_size_limit=1048576;",
                      error);
  if (ok && tables == 0) {
    std::string ids = "PRAGMA application_id=" + std::to_string(catalog_application_id) +
                      "; PRAGMA user_version=" + std::to_string(catalog_schema_version) + ";";
    ok = db_.exec("BEGIN IMMEDIATE", error) && db_.exec(schema_sql, error) &&
         db_.exec(ids.c_str(), error) && db_.exec("COMMIT", error);
  } else if (ok) {
    // A catalog from an older build gets the tables added since (limits, deletions); every
    // statement of the schema is CREATE TABLE IF NOT EXISTS.
    ok = db_.exec("BEGIN IMMEDIATE", error) && db_.exec(schema_sql, error) &&
         db_.exec("COMMIT", error);
  }
  if (!ok) {
    error = path + ": " + error;
    close();
  }
  return ok;
}

void catalog::close() {
  if (db_.in_transaction()) {
    std::string ignored;
    db_.exec("ROLLBACK", ignored);
  }
  db_.close();
}

bool catalog::run(const char* sql, const std::vector<std::string>& params, std::string& error) {
  sqlite_stmt stmt;
  if (!stmt.prepare(db_, sql, error)) return false;
  for (size_t i = 0; i < params.size(); ++i) stmt.bind_text(static_cast<int>(i + 1), params[i]);
  return stmt.run(error);
}

bool catalog::begin(std::string& error) { return db_.exec("BEGIN IMMEDIATE", error); }

bool catalog::finish(bool ok, std::string& error) {
  if (ok) ok = db_.exec("COMMIT", error);
  if (!ok && db_.in_transaction()) {
    std::string ignored;
    db_.exec("ROLLBACK", ignored);
  }
  return ok;
}

bool catalog::load(catalog_snapshot& out, std::string& error) {
  out = {};
  sqlite_stmt s;
  int rc;
  auto query = [&](const char* sql) { return s.prepare(db_, sql, error); };
  auto done = [&] {
    if (rc == SQLITE_DONE) return true;
    error = db_.last_error();
    return false;
  };

  if (!query("SELECT name FROM vhosts ORDER BY name")) return false;
  while ((rc = s.step()) == SQLITE_ROW) out.vhosts.push_back({s.column_string(0)});
  if (!done()) return false;

  if (!query("SELECT name, password_hash, tags FROM users ORDER BY name")) return false;
  while ((rc = s.step()) == SQLITE_ROW)
    out.users.push_back({s.column_string(0), s.column_string(1), s.column_string(2)});
  if (!done()) return false;

  if (!query("SELECT user, vhost, configure, write, read FROM permissions ORDER BY user, vhost"))
    return false;
  while ((rc = s.step()) == SQLITE_ROW)
    out.permissions.push_back({s.column_string(0), s.column_string(1), s.column_string(2),
                               s.column_string(3), s.column_string(4)});
  if (!done()) return false;

  if (!query("SELECT user, vhost, exchange, write, read FROM topic_permissions"
             " ORDER BY user, vhost, exchange"))
    return false;
  while ((rc = s.step()) == SQLITE_ROW)
    out.topic_permissions.push_back({s.column_string(0), s.column_string(1), s.column_string(2),
                                     s.column_string(3), s.column_string(4)});
  if (!done()) return false;

  if (!query("SELECT scope, name, limit_name, value FROM limits ORDER BY scope, name, limit_name"))
    return false;
  while ((rc = s.step()) == SQLITE_ROW)
    out.limits.push_back({s.column_string(0) == "user", s.column_string(1), s.column_string(2),
                          s.column_int(3)});
  if (!done()) return false;

  if (!query("SELECT vhost, kind, name, pattern, apply_to, priority, definition FROM policies"
             " ORDER BY vhost, kind, name"))
    return false;
  while ((rc = s.step()) == SQLITE_ROW)
    out.policies.push_back({s.column_string(0), s.column_string(2),
                            s.column_string(1) == "operator_policy", s.column_string(3),
                            s.column_string(4), std::strtod(s.column_string(5).c_str(), nullptr),
                            s.column_string(6)});
  if (!done()) return false;

  if (!query("SELECT vhost, name, type, durable, auto_delete, internal, arguments FROM exchanges"
             " ORDER BY vhost, name"))
    return false;
  while ((rc = s.step()) == SQLITE_ROW)
    out.exchanges.push_back({s.column_string(0), s.column_string(1), s.column_string(2),
                             s.column_int(3) != 0, s.column_int(4) != 0, s.column_int(5) != 0,
                             s.column_string(6)});
  if (!done()) return false;

  if (!query("SELECT vhost, name, durable, auto_delete, arguments, file, message_count_hint"
             " FROM queues ORDER BY vhost, name"))
    return false;
  while ((rc = s.step()) == SQLITE_ROW)
    out.queues.push_back({s.column_string(0), s.column_string(1), s.column_int(2) != 0,
                          s.column_int(3) != 0, s.column_string(4), s.column_string(5),
                          static_cast<uint64_t>(s.column_int(6))});
  if (!done()) return false;

  if (!query("SELECT vhost, source, destination, to_exchange, key, arguments FROM bindings"
             " ORDER BY vhost, source, destination, to_exchange, key, arguments"))
    return false;
  while ((rc = s.step()) == SQLITE_ROW)
    out.bindings.push_back({s.column_string(0), s.column_string(1), s.column_string(2),
                            s.column_int(3) != 0, s.column_string(4), s.column_string(5)});
  if (!done()) return false;

  if (!query("SELECT scope, kind, key, stamp FROM deletions ORDER BY scope, kind, key"))
    return false;
  while ((rc = s.step()) == SQLITE_ROW)
    out.deletions.push_back({s.column_string(0), s.column_string(1), s.column_string(2),
                             static_cast<uint64_t>(s.column_int(3))});
  return done();
}

bool catalog::put_vhost(const vhost_row& row, std::string& error) {
  return run("INSERT OR IGNORE INTO vhosts(name) VALUES(?1)", {row.name}, error);
}

bool catalog::delete_vhost(const std::string& name, std::string& error,
                           std::vector<std::string>* removed_queue_files) {
  if (!begin(error)) return false;
  bool ok = true;
  if (removed_queue_files) {
    sqlite_stmt s;
    ok = s.prepare(db_, "SELECT file FROM queues WHERE vhost = ?1 ORDER BY name", error);
    s.bind_text(1, name);
    int rc = SQLITE_DONE;
    std::vector<std::string> files;
    while (ok && (rc = s.step()) == SQLITE_ROW) files.push_back(s.column_string(0));
    if (ok && rc != SQLITE_DONE) {
      error = db_.last_error();
      ok = false;
    }
    if (ok) removed_queue_files->insert(removed_queue_files->end(), files.begin(), files.end());
  }
  for (const char* sql : {"DELETE FROM bindings WHERE vhost = ?1",
                          "DELETE FROM exchanges WHERE vhost = ?1",
                          "DELETE FROM queues WHERE vhost = ?1",
                          "DELETE FROM permissions WHERE vhost = ?1",
                          "DELETE FROM limits WHERE scope = 'vhost' AND name = ?1",
                          "DELETE FROM topic_permissions WHERE vhost = ?1",
                          "DELETE FROM policies WHERE vhost = ?1",
                          "DELETE FROM deletions WHERE scope = ?1 AND kind != 'registry'",
                          "DELETE FROM vhosts WHERE name = ?1"})
    ok = ok && run(sql, {name}, error);
  return finish(ok, error);
}

bool catalog::put_user(const user_row& row, std::string& error) {
  return run("INSERT INTO users(name, password_hash, tags) VALUES(?1, ?2, ?3)"
             " ON CONFLICT(name) DO UPDATE SET password_hash = excluded.password_hash,"
             " tags = excluded.tags",
             {row.name, row.password_hash, row.tags}, error);
}

bool catalog::delete_user(const std::string& name, std::string& error) {
  if (!begin(error)) return false;
  bool ok = run("DELETE FROM permissions WHERE user = ?1", {name}, error) &&
            run("DELETE FROM limits WHERE scope = 'user' AND name = ?1", {name}, error) &&
            run("DELETE FROM topic_permissions WHERE user = ?1", {name}, error) &&
            run("DELETE FROM users WHERE name = ?1", {name}, error);
  return finish(ok, error);
}

bool catalog::put_permission(const permission_row& row, std::string& error) {
  return run("INSERT INTO permissions(user, vhost, configure, write, read)"
             " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(user, vhost) DO UPDATE SET"
             " configure = excluded.configure, write = excluded.write, read = excluded.read",
             {row.user, row.vhost, row.configure, row.write, row.read}, error);
}

bool catalog::delete_permission(const std::string& user, const std::string& vhost,
                                std::string& error) {
  return run("DELETE FROM permissions WHERE user = ?1 AND vhost = ?2", {user, vhost}, error);
}

bool catalog::put_topic_permission(const topic_permission_row& row, std::string& error) {
  return run("INSERT INTO topic_permissions(user, vhost, exchange, write, read)"
             " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(user, vhost, exchange) DO UPDATE SET"
             " write = excluded.write, read = excluded.read",
             {row.user, row.vhost, row.exchange, row.write, row.read}, error);
}

bool catalog::delete_topic_permissions(const std::string& user, const std::string& vhost,
                                       std::string& error) {
  return run("DELETE FROM topic_permissions WHERE user = ?1 AND vhost = ?2", {user, vhost},
             error);
}

bool catalog::put_limit(const limit_row& row, std::string& error) {
  return run("INSERT INTO limits(scope, name, limit_name, value) VALUES(?1, ?2, ?3, ?4)"
             " ON CONFLICT(scope, name, limit_name) DO UPDATE SET value = excluded.value",
             {row.user ? "user" : "vhost", row.name, row.limit, std::to_string(row.value)}, error);
}

bool catalog::delete_limit(bool user, const std::string& name, const std::string& limit,
                           std::string& error) {
  return run("DELETE FROM limits WHERE scope = ?1 AND name = ?2 AND limit_name = ?3",
             {user ? "user" : "vhost", name, limit}, error);
}

bool catalog::put_policy(const policy_row& row, std::string& error) {
  sqlite_stmt s;
  if (!s.prepare(db_,
                 "INSERT INTO policies(vhost, kind, name, pattern, apply_to, priority, definition)"
                 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(vhost, kind, name) DO UPDATE SET"
                 " pattern = excluded.pattern, apply_to = excluded.apply_to,"
                 " priority = excluded.priority, definition = excluded.definition",
                 error))
    return false;
  // bind_text keeps a pointer, not a copy: every text bound lives until run().
  char buf[64];
  std::string priority{buf, std::to_chars(buf, buf + sizeof buf, row.priority).ptr};
  std::string kind = row.operator_policy ? "operator_policy" : "policy";
  s.bind_text(1, row.vhost);
  s.bind_text(2, kind);
  s.bind_text(3, row.name);
  s.bind_text(4, row.pattern);
  s.bind_text(5, row.apply_to);
  s.bind_text(6, priority);
  s.bind_blob(7, row.definition);
  return s.run(error);
}

bool catalog::delete_policy(const std::string& vhost, bool operator_policy,
                            const std::string& name, std::string& error) {
  return run("DELETE FROM policies WHERE vhost = ?1 AND kind = ?2 AND name = ?3",
             {vhost, operator_policy ? "operator_policy" : "policy", name}, error);
}

bool catalog::put_exchange(const exchange_row& row, std::string& error) {
  sqlite_stmt s;
  if (!s.prepare(db_,
                 "INSERT INTO exchanges(vhost, name, type, durable, auto_delete, internal,"
                 " arguments) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(vhost, name) DO"
                 " UPDATE SET type = excluded.type, durable = excluded.durable,"
                 " auto_delete = excluded.auto_delete, internal = excluded.internal,"
                 " arguments = excluded.arguments",
                 error))
    return false;
  s.bind_text(1, row.vhost);
  s.bind_text(2, row.name);
  s.bind_text(3, row.type);
  s.bind_int(4, row.durable);
  s.bind_int(5, row.auto_delete);
  s.bind_int(6, row.internal);
  s.bind_blob(7, row.arguments);
  return s.run(error);
}

bool catalog::delete_exchange(const std::string& vhost, const std::string& name,
                              std::string& error) {
  if (!begin(error)) return false;
  bool ok = run("DELETE FROM bindings WHERE vhost = ?1 AND (source = ?2 OR"
                " (destination = ?2 AND to_exchange = 1))",
                {vhost, name}, error) &&
            run("DELETE FROM exchanges WHERE vhost = ?1 AND name = ?2", {vhost, name}, error);
  return finish(ok, error);
}

bool catalog::put_queue(const queue_row& row, std::string& error) {
  sqlite_stmt s;
  if (!s.prepare(db_,
                 "INSERT INTO queues(vhost, name, durable, auto_delete, arguments, file,"
                 " message_count_hint) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                 " ON CONFLICT(vhost, name) DO UPDATE SET durable = excluded.durable,"
                 " auto_delete = excluded.auto_delete, arguments = excluded.arguments,"
                 " file = excluded.file, message_count_hint = excluded.message_count_hint",
                 error))
    return false;
  std::string file = row.file.empty() ? queue_file_name(row.vhost, row.name) : row.file;
  s.bind_text(1, row.vhost);
  s.bind_text(2, row.name);
  s.bind_int(3, row.durable);
  s.bind_int(4, row.auto_delete);
  s.bind_blob(5, row.arguments);
  s.bind_text(6, file);
  s.bind_int(7, static_cast<int64_t>(row.message_count_hint));
  return s.run(error);
}

bool catalog::delete_queue(const std::string& vhost, const std::string& name,
                           std::string& error) {
  if (!begin(error)) return false;
  bool ok = run("DELETE FROM bindings WHERE vhost = ?1 AND destination = ?2 AND to_exchange = 0",
                {vhost, name}, error) &&
            run("DELETE FROM queues WHERE vhost = ?1 AND name = ?2", {vhost, name}, error);
  return finish(ok, error);
}

bool catalog::set_message_count_hint(const std::string& vhost, const std::string& name,
                                     uint64_t n, std::string& error) {
  sqlite_stmt s;
  if (!s.prepare(db_, "UPDATE queues SET message_count_hint = ?3 WHERE vhost = ?1 AND name = ?2",
                 error))
    return false;
  s.bind_text(1, vhost);
  s.bind_text(2, name);
  s.bind_int(3, static_cast<int64_t>(n));
  return s.run(error);
}

namespace {

// Runs `sql` with a binding's six columns as ?1..?6.
bool run_with_binding(sqlite_db& db, const char* sql, const binding_row& row,
                      std::string& error) {
  sqlite_stmt s;
  if (!s.prepare(db, sql, error))
    return false;
  s.bind_text(1, row.vhost);
  s.bind_text(2, row.source);
  s.bind_text(3, row.destination);
  s.bind_int(4, row.to_exchange);
  s.bind_text(5, row.key);
  s.bind_blob(6, row.arguments);
  return s.run(error);
}

}  // namespace

bool catalog::put_binding(const binding_row& row, std::string& error) {
  return run_with_binding(db_,
                          "INSERT OR IGNORE INTO bindings(vhost, source, destination, to_exchange,"
                          " key, arguments) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                          row, error);
}

bool catalog::delete_binding(const binding_row& row, std::string& error) {
  return run_with_binding(db_,
                          "DELETE FROM bindings WHERE vhost = ?1 AND source = ?2 AND"
                          " destination = ?3 AND to_exchange = ?4 AND key = ?5 AND arguments = ?6",
                          row, error);
}

bool catalog::put_deletion(const deletion_row& row, std::string& error) {
  sqlite_stmt s;
  if (!s.prepare(db_,
                 "INSERT INTO deletions(scope, kind, key, stamp) VALUES(?1, ?2, ?3, ?4)"
                 " ON CONFLICT(scope, kind, key) DO UPDATE SET stamp = max(stamp, excluded.stamp)",
                 error))
    return false;
  s.bind_text(1, row.scope);
  s.bind_text(2, row.kind);
  s.bind_blob(3, row.key);
  s.bind_int(4, static_cast<int64_t>(row.stamp));
  return s.run(error);
}

bool catalog::delete_deletion(const deletion_row& row, std::string& error) {
  sqlite_stmt s;
  if (!s.prepare(db_, "DELETE FROM deletions WHERE scope = ?1 AND kind = ?2 AND key = ?3", error))
    return false;
  s.bind_text(1, row.scope);
  s.bind_text(2, row.kind);
  s.bind_blob(3, row.key);
  return s.run(error);
}

bool catalog::prune_deletions(uint64_t before, std::string& error) {
  sqlite_stmt s;
  if (!s.prepare(db_, "DELETE FROM deletions WHERE stamp < ?1", error))
    return false;
  s.bind_int(1, static_cast<int64_t>(before));
  return s.run(error);
}

bool catalog::check(std::string& report) {
  report.clear();
  sqlite_stmt s;
  if (!s.prepare(db_, "PRAGMA quick_check", report)) return false;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    if (!report.empty()) report += "; ";
    report += s.column_string(0);
  }
  if (rc != SQLITE_DONE) {
    report = db_.last_error();
    return false;
  }
  return report == "ok";
}

}  // namespace warren::persistence
