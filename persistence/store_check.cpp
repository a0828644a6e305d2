// Implementation of the start-up check and the quarantine (see store_check.hpp).
// Layout under <data>/quarantine/:
//   <timestamp>-<file name>[-wal|-shm]  a damaged queue file, moved as it was
//   <timestamp>-<file name>.report      beside it: kind, queue, counts (key=value lines)
//   <timestamp>-<file name>.missing.report / .rows.report   reports of the other kinds
//   <file from the catalog>              rows that failed their checksum (queues/...db)
// Files are only ever renamed or added here; the WAL is moved before the database so that a
// crash in between can never leave an old WAL next to a fresh file at the queue's path.
#include "persistence/store_check.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <system_error>

#include "persistence/queue_store.hpp"
#include "persistence/sqlite_db.hpp"

namespace warren::persistence {

namespace fs = std::filesystem;

namespace {

constexpr size_t page_rows = 1000;

std::string join_path(const std::string& dir, const std::string& file) {
  return (fs::path{dir} / file).string();
}

// The catalog's relative file name, kept inside the directory it is joined to.
fs::path contained(const std::string& file) {
  fs::path p = fs::path{file}.lexically_normal();
  if (p.is_absolute() || p.empty() || *p.begin() == "..") return p.filename();
  return p;
}

std::string timestamp() {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// <dir>/<timestamp>-<name><suffix>, with a counter added when that is taken.
fs::path fresh_name(const fs::path& dir, const std::string& name, const std::string& suffix) {
  std::string stamp = timestamp();
  for (int n = 0;; ++n) {
    std::string prefix = n == 0 ? stamp : stamp + "." + std::to_string(n);
    fs::path candidate = dir / (prefix + "-" + name);
    std::error_code ec;
    if (!fs::exists(candidate.string() + suffix, ec) && !fs::exists(candidate, ec)) return candidate;
  }
}

uint64_t parse_count(const std::string& s) {
  uint64_t n = 0;
  std::from_chars(s.data(), s.data() + s.size(), n);
  return n;
}

std::string escape_line(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '\n' ? std::string{"\\n"} : std::string(1, c);
  return out;
}

bool write_synced(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const char* p = content.data();
  size_t left = content.size();
  bool ok = true;
  while (ok && left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) ok = false;
    else {
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  return ok;
}

bool write_report(const std::string& path, const problem& p, uint64_t salvaged,
                  const std::string& moved_to) {
  std::string text = std::string{"kind="} + to_string(p.kind) + "\nvhost=" + escape_line(p.vhost) +
                     "\nqueue=" + escape_line(p.queue) + "\nfile=" + escape_line(p.file) +
                     "\nmessages_affected=" + std::to_string(p.messages_affected) +
                     "\nmessages_salvaged=" + std::to_string(salvaged) +
                     "\nmoved_to=" + escape_line(moved_to) +
                     "\ndescription=" + escape_line(p.describe()) + "\n";
  return write_synced(path, text);
}

problem make_problem(problem_kind kind, const queue_row& q, const std::string& path) {
  problem p;
  p.kind = kind;
  p.vhost = q.vhost;
  p.queue = q.name;
  p.file = q.file;
  p.path = path;
  p.messages_affected = q.message_count_hint;
  p.estimate = true;
  return p;
}

// Checks one queue file; appends what is wrong to `out`.
void check_queue(const std::string& data_dir, const queue_row& q, bool verify,
                 std::vector<problem>& out) {
  std::string path = join_path(data_dir, contained(q.file).string());
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) {
    out.push_back(make_problem(problem_kind::missing, q, path));
    return;
  }
  problem bad = make_problem(problem_kind::corrupt_file, q, path);
  if (!fs::is_regular_file(st)) {
    bad.detail = "not a regular file";
    out.push_back(std::move(bad));
    return;
  }
  if (fs::file_size(path, ec) == 0 && !fs::exists(path + "-wal", ec)) {
    // Created but never written: an empty queue, unless the catalog thinks it held messages.
    if (q.message_count_hint > 0) {
      bad.detail = "the file is empty";
      out.push_back(std::move(bad));
    }
    return;
  }

  {
    sqlite_db db;
    std::string error;
    if (!db.open(path, SQLITE_OPEN_READWRITE, error)) {
      bad.detail = error;
      out.push_back(std::move(bad));
      return;
    }
    db.disable_checkpoint_on_close();
    sqlite_stmt s;
    std::string report;
    int rc = SQLITE_ERROR;
    if (s.prepare(db, "PRAGMA quick_check", error)) {
      while ((rc = s.step()) == SQLITE_ROW) {
        if (!report.empty()) report += "; ";
        report += s.column_string(0);
      }
    }
    s.finalize();
    if (rc != SQLITE_DONE || report != "ok") {
      bad.detail = rc == SQLITE_DONE ? report : db.last_error();
      if (bad.detail.size() > 200) bad.detail = bad.detail.substr(0, 200) + "...";
      int64_t n = 0;
      if (db.query_int("SELECT count(*) FROM messages", n, error)) {
        bad.messages_affected = static_cast<uint64_t>(n);
        bad.estimate = false;
      }
      out.push_back(std::move(bad));
      return;
    }
  }

  queue_store store;
  std::string error;
  if (!store.open(path, error)) {
    bad.detail = error;
    out.push_back(std::move(bad));
    return;
  }
  if (!verify) return;
  problem rows = make_problem(problem_kind::corrupt_messages, q, path);
  rows.estimate = false;
  uint64_t after = 0;
  for (;;) {
    queue_store::load_result r = store.load(after, page_rows);
    rows.ids.insert(rows.ids.end(), r.corrupt_ids.begin(), r.corrupt_ids.end());
    if (!r.ok) {
      bad.detail = r.error;
      bad.messages_affected = store.count();
      bad.estimate = false;
      out.push_back(std::move(bad));
      return;
    }
    if (r.last_id == after) break;
    after = r.last_id;
  }
  if (!rows.ids.empty()) {
    rows.messages_affected = rows.ids.size();
    out.push_back(std::move(rows));
  }
}

// Copies every readable row with a good checksum from the damaged file into `fresh`: rows
// in id order up to the first read error, then from the end backwards down to the next one.
uint64_t salvage(const std::string& damaged, queue_store& fresh, std::string& error) {
  sqlite_db db;
  if (!db.open(damaged, SQLITE_OPEN_READWRITE, error)) return 0;
  db.disable_checkpoint_on_close();
  std::set<uint64_t> copied;
  uint64_t committed = 0;
  bool complete = false;
  // Files of schema version 1 have no expires column.
  std::string columns = "id, properties, body, exchange, routing_key, delivered, checksum";
  bool with_expires = false;
  {
    sqlite_stmt probe;
    std::string ignored;
    with_expires = probe.prepare(db, "SELECT expires FROM messages LIMIT 0", ignored);
  }
  if (with_expires)
    columns += ", expires";
  for (const char* order : {"ASC", "DESC"}) {
    if (complete) break;
    sqlite_stmt s;
    std::string sql = "SELECT " + columns + " FROM messages ORDER BY id " + order;
    if (!s.prepare(db, sql.c_str(), error)) continue;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      stored_message m;
      m.id = static_cast<uint64_t>(s.column_int(0));
      if (copied.count(m.id)) break;  // the backward pass met the forward one
      m.properties = s.column_string(1);
      m.body = s.column_string(2);
      m.exchange = s.column_string(3);
      m.routing_key = s.column_string(4);
      int64_t delivered = s.column_int(5);
      m.delivered = delivered == 1;
      m.expires = with_expires ? s.column_int(7) : 0;
      if (s.column_type(6) != SQLITE_INTEGER || (delivered != 0 && delivered != 1) ||
          message_checksum(m) != s.column_int(6))
        continue;
      if (!fresh.append(m)) {
        error = fresh.last_error();
        return committed;
      }
      copied.insert(m.id);
      if (copied.size() % page_rows == 0) {
        if (!fresh.commit(error)) return committed;
        committed = copied.size();
      }
    }
    complete = rc == SQLITE_DONE;
  }
  if (fresh.commit(error)) committed = copied.size();
  return committed;
}

}  // namespace

const char* to_string(problem_kind kind) {
  switch (kind) {
    case problem_kind::missing: return "missing";
    case problem_kind::corrupt_file: return "corrupt_file";
    case problem_kind::corrupt_messages: return "corrupt_messages";
  }
  return "unknown";
}

std::string problem::describe() const {
  std::string out = "queue '" + queue + "' in vhost '" + vhost + "': file " + path;
  switch (kind) {
    case problem_kind::missing: out += " is missing"; break;
    case problem_kind::corrupt_file:
      out += " is corrupt";
      if (!detail.empty()) out += " (" + detail + ")";
      break;
    case problem_kind::corrupt_messages: {
      out += " has " + std::to_string(ids.size()) + " message(s) failing their checksum (id";
      out += ids.size() == 1 ? " " : "s ";
      for (size_t i = 0; i < ids.size() && i < 10; ++i)
        out += (i ? ", " : "") + std::to_string(ids[i]);
      out += ids.size() > 10 ? ", ...)" : ")";
      break;
    }
  }
  out += "; ";
  if (estimate) out += "about ";
  out += std::to_string(messages_affected) + (messages_affected == 1 ? " message" : " messages");
  return out + " affected";
}

std::vector<problem> check_store(const std::string& data_dir, const catalog_snapshot& snapshot,
                                 bool verify_checksums) {
  std::vector<problem> out;
  for (const queue_row& q : snapshot.queues)
    if (q.durable) check_queue(data_dir, q, verify_checksums, out);
  return out;
}

bool quarantine(const std::string& data_dir, const problem& p, std::string& where) {
  fs::path qdir = fs::path{data_dir} / "quarantine";
  std::error_code ec;
  if (fs::create_directories(qdir, ec)) sync_directory(data_dir);
  if (ec) {
    where = "cannot create " + qdir.string() + ": " + ec.message();
    return false;
  }
  std::string name = contained(p.file).filename().string();
  switch (p.kind) {
    case problem_kind::missing: {
      fs::path report = fresh_name(qdir, name + ".missing.report", "");
      where = report.string();
      bool ok = write_report(where, p, 0, "") && sync_directory(qdir.string());
      if (!ok) where = "cannot write " + where;
      return ok;
    }
    case problem_kind::corrupt_messages: {
      queue_store store;
      std::string error;
      std::string target = (qdir / contained(p.file)).string();
      if (!store.open(p.path, error) || !store.quarantine_rows(p.ids, target)) {
        where = error.empty() ? store.last_error() : error;
        return false;
      }
      where = target;
      write_report(fresh_name(qdir, name + ".rows.report", "").string(), p, 0, target);
      sync_directory(qdir.string());
      return true;
    }
    case problem_kind::corrupt_file: break;
  }

  fs::path dest = fresh_name(qdir, name, "-wal");
  for (const char* suffix : {"-wal", ""}) {
    std::string from = p.path + suffix;
    if (!fs::exists(from, ec) && *suffix) continue;
    fs::rename(from, dest.string() + suffix, ec);
    if (ec) {
      where = "cannot move " + from + ": " + ec.message();
      return false;
    }
  }
  fs::rename(p.path + "-shm", dest.string() + "-shm", ec);  // rebuilt on demand; move if there
  sync_directory(qdir.string());
  sync_directory(fs::path{p.path}.parent_path().string());
  where = dest.string();

  queue_store fresh;
  std::string error;
  if (!fresh.open(p.path, error)) {
    where = "moved to " + dest.string() + ", but cannot create a fresh file: " + error;
    return false;
  }
  std::string salvage_error;
  uint64_t salvaged = salvage(dest.string(), fresh, salvage_error);
  fresh.close();
  if (!write_report(dest.string() + ".report", p, salvaged, dest.string())) {
    where = "moved to " + dest.string() + ", but cannot write its report";
    return false;
  }
  sync_directory(qdir.string());
  return true;
}

size_t quarantined_messages(const std::string& data_dir) {
  fs::path qdir = fs::path{data_dir} / "quarantine";
  size_t total = 0;
  std::error_code ec;
  fs::recursive_directory_iterator it{qdir, fs::directory_options::skip_permission_denied, ec};
  for (; !ec && it != fs::recursive_directory_iterator{}; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string path = it->path().string();
    if (it->path().extension() == ".report") {
      std::ifstream in{path};
      std::string line, kind;
      uint64_t affected = 0, salvaged = 0;
      while (std::getline(in, line)) {
        if (line.rfind("kind=", 0) == 0) kind = line.substr(5);
        if (line.rfind("messages_affected=", 0) == 0) affected = parse_count(line.substr(18));
        if (line.rfind("messages_salvaged=", 0) == 0) salvaged = parse_count(line.substr(18));
      }
      if (kind == "corrupt_file" && affected > salvaged) total += affected - salvaged;
    } else if (it->path().extension() == ".db" && !fs::exists(path + ".report", ec)) {
      sqlite_db db;
      std::string error;
      int64_t marked = 0, n = 0;
      if (db.open(path, SQLITE_OPEN_READWRITE, error) &&
          db.query_int("SELECT count(*) FROM pragma_table_info('messages')"
                       " WHERE name = 'quarantined_at'",
                       marked, error) &&
          marked == 1 && db.query_int("SELECT count(*) FROM messages", n, error))
        total += static_cast<size_t>(n);
    }
  }
  return total;
}

std::vector<std::string> orphan_files(const std::string& data_dir,
                                      const catalog_snapshot& snapshot) {
  std::set<std::string> known;
  for (const queue_row& q : snapshot.queues) known.insert(contained(q.file).generic_string());
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it{fs::path{data_dir} / "queues", ec};
  for (; !ec && it != fs::directory_iterator{}; it.increment(ec)) {
    if (it->path().extension() != ".db" || !it->is_regular_file(ec)) continue;
    std::string rel = "queues/" + it->path().filename().string();
    if (!known.count(rel)) out.push_back(rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace warren::persistence
