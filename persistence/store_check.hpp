// Start-up check of a data directory against the catalog, and quarantine of what is damaged.
// check_store() looks at the message file of every durable queue and reports each missing
// file, each file SQLite cannot read soundly, and each row failing its checksum, by queue,
// vhost and file, with the number of messages affected. quarantine() moves a damaged part
// aside under <data>/quarantine/ so the broker can start serving everything else. What stays
// true: quarantine() never deletes anything: a damaged file is renamed, damaged rows are
// copied durably before they are deleted from the queue file, every readable row with a good
// checksum of a damaged file is copied back into a fresh file for the queue, and a report
// sits beside what was moved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "persistence/catalog.hpp"

namespace warren::persistence {

enum class problem_kind {
  missing,           // the queue's message file is not there
  corrupt_file,      // SQLite cannot read the file soundly, or it is not a queue file
  corrupt_messages,  // the file is sound but some rows fail their checksum
};

struct problem {
  problem_kind kind = problem_kind::missing;
  std::string vhost, queue;
  std::string file;  // relative to the data directory, as in the catalog
  std::string path;  // the data directory joined with file
  uint64_t messages_affected = 0;
  bool estimate = false;      // messages_affected is the catalog's hint, not a count
  std::vector<uint64_t> ids;  // corrupt_messages: the ids failing their checksum
  std::string detail;         // what SQLite reported, if anything

  // One line, e.g. "queue 'orders' in vhost '/': file data/queues/ab12-orders.db is missing;
  // about 10 messages affected".
  std::string describe() const;
};

const char* to_string(problem_kind kind);

// Checks the message file of every durable queue in the snapshot. verify_checksums=false
// skips reading every row (the checksums are verified again whenever a queue loads).
std::vector<problem> check_store(const std::string& data_dir, const catalog_snapshot& snapshot,
                                 bool verify_checksums = true);

// Moves the damaged part aside; `where` receives the path it went to (or, for a missing file,
// the report written). Afterwards the queue's file holds exactly the undamaged messages
// (a fresh, empty file where nothing could be read).
bool quarantine(const std::string& data_dir, const problem& p, std::string& where);

// Messages held in <data>/quarantine/: rows moved there by checksum failures, plus, for each
// quarantined file, the messages it held that could not be salvaged. Messages of missing
// files are not counted: nothing of them is kept.
size_t quarantined_messages(const std::string& data_dir);

// Message files under <data>/queues/ that no queue in the snapshot refers to (left behind by
// a crash between deleting a queue and destroying its file), relative to data_dir.
std::vector<std::string> orphan_files(const std::string& data_dir,
                                      const catalog_snapshot& snapshot);

}  // namespace warren::persistence
