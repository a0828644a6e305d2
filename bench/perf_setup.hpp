// Set-up and tear-down of one warren-perf run: the queue names, the topology declared over
// AMQP (queues, exchange, bindings, --extra-bindings; for STOMP through --amqp-uri), and the
// producer, consumer and idle connections of either protocol, opened and ready, each worker
// with the body of its thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/perf_connection.hpp"
#include "bench/perf_options.hpp"
#include "bench/perf_workers.hpp"

namespace warren::perf {

struct run_plan {
  std::vector<std::string> queues;
  std::unique_ptr<connection> setup;  // AMQP connection that declared the topology, or null
  bool declared = false;              // and will delete it after the run
  std::vector<std::unique_ptr<tcp_stream>> links;  // producers, consumers, idle connections
  std::vector<tcp_stream*> idle;
  std::vector<std::unique_ptr<producer_stats>> pstats;
  std::vector<std::unique_ptr<consumer_stats>> cstats;
  std::vector<std::function<void()>> workers;  // one thread each
  uint64_t subscribe_ns = 0;  // just before the first consumer subscribed
};

// Declares the topology and opens every connection. Returns 0, or an exit status (1, or 3
// when the broker refused something) after printing why.
int prepare_run(const options& o, run_state& rs, run_plan& plan);

// Deletes what prepare_run declared (unless --keep-queues) and closes the set-up connection.
void finish_run(const options& o, run_plan& plan);

// The binding key of extra binding i: it contains the word xb<i>, so it matches no key
// without such a word.
std::string extra_binding_key(int i);

}  // namespace warren::perf
