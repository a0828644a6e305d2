// STOMP producer and consumer loops of warren-perf (see perf_workers.hpp). The producer
// copies a pre-encoded SEND frame per message and patches its send time, sequence and (with
// -c) its receipt id; RECEIPTs settle like publisher confirms. With -C the end-of-run fence
// is DISCONNECT with a receipt. The consumer scans MESSAGE frames in place and ACKs them
// (client-individual, or cumulatively in client mode with --multi-ack-every).
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <thread>

#include "bench/perf_workers.hpp"

namespace warren::perf {

namespace {

constexpr size_t receipt_digits = 10;

void report_failure(const stomp_connection& c, run_state& rs) {
  if (rs.stop.load() && !c.closed_by_broker()) return;  // teardown noise after the run
  std::fprintf(stderr, "warren-perf: %s: %s\n", c.name().c_str(), c.error().c_str());
  if (c.closed_by_broker()) rs.broker_closed = true;
  rs.failed = true;
}

void put_digits(char* at, uint64_t v) {
  for (size_t i = receipt_digits; i-- > 0; v /= 10) at[i] = static_cast<char>('0' + v % 10);
}

void add(std::atomic<uint64_t>& counter, uint64_t n) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace

void run_stomp_producer(stomp_connection& c, const producer_config& cfg, run_state& rs,
                        producer_stats& st) {
  const options& o = rs.opt;
  const uint32_t window = o.confirm_window;
  // One SEND frame, pre-encoded; each copy gets the send time (8 bytes) and a sequence number
  // (4 bytes) at the start of the body, and with -c a receipt id (its confirm tag).
  stomp::frame send;
  send.command = "SEND";
  send.headers.emplace_back("destination", cfg.destination);
  if (o.persistent) send.headers.emplace_back("persistent", "true");
  if (window) send.headers.emplace_back("receipt", std::string(receipt_digits, '0'));
  send.body.assign(o.body_size, 'w');
  const std::string tmpl = stomp::encode(send, stomp::version::v1_2);
  const size_t stamp_at = tmpl.size() - 1 - o.body_size;
  const size_t receipt_at = window ? tmpl.find("\nreceipt:") + 9 : 0;

  producer_core p{rs, st, tmpl, stamp_at};
  p.wait_for_go();
  std::string fence_id;
  bool fence_ok = false;
  stomp_view f;

  while (!rs.stop.load(std::memory_order_relaxed)) {
    bool progress = false;
    // 1. Fill: up to a batch of SEND frames into the output buffer; with -c each gets its
    // number (1, 2, ...) as receipt id.
    size_t first = 0;
    if (const uint64_t n = p.fill(c.out(), c.pending_output(), &first)) {
      if (window)
        for (uint64_t i = 0; i < n; ++i)
          put_digits(c.out().data() + first + i * p.msg_len + receipt_at, p.published - n + i + 1);
      progress = true;
    }
    // 2. Write what the socket takes.
    if (!write_some(c, progress)) break;
    // 3. Read receipts (and ERROR, which next_frame turns into a failure).
    const long got = c.read_available();
    if (got < 0) break;
    if (got > 0) {
      progress = true;
      while (c.next_frame(f)) {
        if (f.command != "RECEIPT") continue;
        if (!fence_id.empty() && f.receipt_id == fence_id) {
          fence_ok = true;
          continue;
        }
        uint64_t tag = 0;
        const auto id = f.receipt_id;
        if (std::from_chars(id.data(), id.data() + id.size(), tag).ec == std::errc{})
          add(st.confirmed, p.confirms.settle(tag, false));
      }
      if (c.failed()) break;
    }
    // With -C: once everything is sent (and receipted), DISCONNECT with a receipt is the
    // fence; the broker answers it after every earlier SEND.
    if (p.all_settled()) {
      if (fence_ok) {
        st.done = true;
        break;
      }
      if (fence_id.empty()) {
        fence_id = c.send_disconnect();
        progress = true;
      }
    }
    // 4. Nothing moved: sleep until the socket or the rate limiter has something.
    if (!progress) {
      const int timeout_ms = p.idle_ms(false);
      if (timeout_ms > 0 || c.has_pending_output()) c.wait(c.has_pending_output(), timeout_ms);
    }
  }
  p.finish();
  if (c.failed()) report_failure(c, rs);
  c.close();
}

void run_stomp_consumer(stomp_connection& c, run_state& rs, consumer_stats& st) {
  const options& o = rs.opt;
  const bool manual = !o.auto_ack;
  const uint32_t every = std::max<uint32_t>(o.multi_ack_every, 1);
  const double cpu0 = thread_cpu_seconds();
  const uint64_t wall0 = now_ns();
  uint64_t received = 0;
  uint32_t unacked = 0;
  stomp_view f;

  while (!rs.stop.load(std::memory_order_relaxed)) {
    // Frames may already be buffered (the SUBSCRIBE's receipt wait can leave some).
    while (c.next_frame(f)) {
      if (f.command != "MESSAGE") continue;  // RECEIPT
      const uint64_t now = now_ns();
      if (f.body.size() >= 8) {
        uint64_t sent_at = 0;
        std::memcpy(&sent_at, f.body.data(), 8);
        if (sent_at <= now) st.latency.record(now - sent_at);
      }
      st.received.store(++received, std::memory_order_relaxed);
      st.last_receive_ns.store(now, std::memory_order_relaxed);
      if (manual && ++unacked >= every) {  // the ack header's value goes back as it came
        std::string& out = c.out();
        out += "ACK\nid:";
        out += f.ack;
        out += "\n\n";
        out.push_back('\0');
        unacked = 0;
      }
    }
    if (c.failed()) break;
    if (c.has_pending_output() && !c.flush()) break;
    const long got = c.read_available();
    if (got < 0) break;
    if (got == 0) c.wait(c.has_pending_output(), 100);
  }
  st.usage.cpu_s = thread_cpu_seconds() - cpu0;
  st.usage.wall_s = static_cast<double>(now_ns() - wall0) / 1e9;
  if (c.failed()) report_failure(c, rs);
  c.close();
}

}  // namespace warren::perf
