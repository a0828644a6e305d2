// AMQP producer and consumer loops of warren-perf, and the confirm tracking and pacing they
// share with the STOMP loops (see perf_workers.hpp). Each loop owns one non-blocking
// connection: it writes when it has output, reads whatever arrived, parses every frame of the
// chunk, and sleeps in poll() only when neither made progress.
#include "bench/perf_workers.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "protocol/amqp091/properties.hpp"
#include "protocol/amqp091/wire.hpp"

namespace warren::perf {

namespace {

double rusage_seconds(int who) {
  rusage ru{};
  ::getrusage(who, &ru);
  auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

void report_failure(const connection& c, run_state& rs) {
  if (rs.stop.load() && !c.closed_by_broker()) return;  // teardown noise after the run
  std::fprintf(stderr, "warren-perf: %s: %s\n", c.name().c_str(), c.error().c_str());
  if (c.closed_by_broker()) rs.broker_closed = true;
  rs.failed = true;
}

// Reads a basic.ack / basic.nack payload: class, method, delivery-tag, flag bits.
void read_ack(std::string_view payload, uint64_t& tag, bool& multiple) {
  amqp::reader r(payload.substr(4));
  tag = r.u64();
  multiple = (r.u8() & 1) != 0;
}

}  // namespace

confirm_tracker::confirm_tracker(uint32_t window) {
  size_t cap = 1;
  while (cap < 2 * static_cast<size_t>(window)) cap <<= 1;
  settled_.assign(cap, 0);
  mask_ = cap - 1;
}

uint64_t confirm_tracker::settle(uint64_t tag, bool multiple) {
  if (tag >= next_) tag = next_ - 1;
  uint64_t n = 0;
  if (tag < lowest_) return 0;
  if (multiple) {
    for (uint64_t t = lowest_; t <= tag; ++t) n += mark(t);
  } else {
    n += mark(tag);
  }
  while (lowest_ < next_ && settled_[lowest_ & mask_]) settled_[lowest_++ & mask_] = 0;
  unsettled_ -= n;
  return n;
}

uint64_t confirm_tracker::mark(uint64_t t) {
  auto& s = settled_[t & mask_];
  if (s) return 0;
  s = 1;
  return 1;
}

producer_core::producer_core(run_state& rs, producer_stats& st, std::string tmpl_in,
                             size_t stamp_at)
  : o(rs.opt),
    st(st),
    confirms(rs.opt.confirm_window == 0 ? 1 : rs.opt.confirm_window),
    tmpl(std::move(tmpl_in)),
    msg_len(tmpl.size()),
    stamp_at_(stamp_at),
    batch_(static_cast<size_t>(rs.opt.batch)),
    high_water_(std::max<size_t>(msg_len * batch_, 64 * 1024)),
    rs_(rs) {}

void producer_core::wait_for_go() {
  while (!rs_.go.load() && !rs_.stop.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  start_ = rs_.start_ns.load();
  cpu0_ = thread_cpu_seconds();
  wall0_ = now_ns();
}

uint64_t producer_core::fill(std::string& out, size_t pending, size_t* first) {
  if (pending >= high_water_)
    return 0;
  uint64_t n = batch_;
  if (o.count) n = std::min(n, o.count - published);
  if (o.confirm_window)
    n = std::min({n, o.confirm_window - confirms.unsettled(), confirms.room()});
  const uint64_t now = now_ns();
  if (o.rate > 0 && n) {
    const auto due = static_cast<uint64_t>(static_cast<double>(now - start_) * o.rate / 1e9) + 1;
    n = std::min(n, due > published ? due - published : 0);
  }
  if (!n) return 0;
  size_t at = out.size();
  if (first) *first = at;
  out.resize(at + n * msg_len);
  for (uint64_t i = 0; i < n; ++i, at += msg_len) {
    std::memcpy(out.data() + at, tmpl.data(), msg_len);
    std::memcpy(out.data() + at + stamp_at_, &now, 8);
    ++seq_;
    std::memcpy(out.data() + at + stamp_at_ + 8, &seq_, 4);
  }
  published += n;
  if (o.confirm_window) confirms.published(n);
  st.sent.store(published, std::memory_order_relaxed);
  return n;
}

int producer_core::idle_ms(bool blocked) const {
  if (o.rate <= 0 || blocked) return 100;
  const double next_due_ns = static_cast<double>(published) * 1e9 / o.rate;
  const double wait_ns = next_due_ns - static_cast<double>(now_ns() - start_);
  return std::clamp(static_cast<int>(std::ceil(wait_ns / 1e6)), 0, 100);
}

bool producer_core::all_settled() const {
  return o.count && published >= o.count && confirms.unsettled() == 0;
}

void producer_core::finish() {
  st.usage.cpu_s = thread_cpu_seconds() - cpu0_;
  st.usage.wall_s = static_cast<double>(now_ns() - wall0_) / 1e9;
}

double thread_cpu_seconds() { return rusage_seconds(RUSAGE_THREAD); }
double process_cpu_seconds() { return rusage_seconds(RUSAGE_SELF); }

void run_producer(connection& c, const producer_config& cfg, run_state& rs, producer_stats& st) {
  const options& o = rs.opt;
  // One message, pre-encoded: publish method frame, header frame, body frame(s). Each copy
  // gets the send time (8 bytes) and a sequence number (4 bytes) at the start of the body.
  std::string tmpl;
  amqp::basic_publish pub;
  pub.exchange = cfg.exchange;
  pub.routing_key = cfg.routing_key;
  pub.mandatory = o.mandatory;
  amqp::encode_method(tmpl, 1, pub);
  amqp::basic_properties props;
  if (o.persistent) props.delivery_mode = 2;
  std::string raw_props;
  amqp::encode_properties(props, raw_props);
  amqp::encode_header_frame(tmpl, 1, o.body_size, raw_props);
  const size_t stamp_at = tmpl.size() + 7;  // first body frame's payload
  amqp::encode_body_frames(tmpl, 1, std::string(o.body_size, 'w'), c.frame_max());

  producer_core p{rs, st, std::move(tmpl), stamp_at};
  p.wait_for_go();
  uint64_t returns = 0;
  bool fence_sent = false, fence_ok = false;
  amqp::frame_view f;

  while (!rs.stop.load(std::memory_order_relaxed)) {
    bool progress = false;
    // 1. Fill: up to a batch of publishes into the output buffer.
    if (!c.blocked() && p.fill(c.out(), c.pending_output())) progress = true;
    // 2. Write what the socket takes.
    if (!write_some(c, progress)) break;
    // 3. Read confirms, returns, flow control, closes.
    const long got = c.read_available();
    if (got < 0) break;
    if (got > 0) {
      progress = true;
      while (c.next_frame(f)) {
        if (f.type != amqp::frame_type::method) continue;  // returned content, heartbeats
        uint16_t cls = 0, mth = 0;
        method_ids(f.payload, cls, mth);
        if (cls == 60 && (mth == 80 || mth == 120)) {
          uint64_t tag = 0;
          bool multiple = false;
          read_ack(f.payload, tag, multiple);
          const uint64_t n = p.confirms.settle(tag, multiple);
          auto& counter = mth == 80 ? st.confirmed : st.nacked;
          counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
          continue;
        }
        if (cls == 60 && mth == 11) {  // basic.qos-ok: the end-of-run fence came back
          fence_ok = true;
          continue;
        }
        amqp::method m;
        if (c.handle_control(f, m) == control::fatal) break;
        if (auto* r = std::get_if<amqp::basic_return>(&m)) {
          if (returns++ == 0)
            std::fprintf(stderr, "warren-perf: %s: message returned: %u %s (exchange '%s', key '%s')\n",
                         c.name().c_str(), r->reply_code, r->reply_text.c_str(),
                         r->exchange.c_str(), r->routing_key.c_str());
          st.returned.store(returns, std::memory_order_relaxed);
        }
      }
      if (c.failed()) break;
    }
    // With -C: once everything is published (and confirmed), a no-op synchronous method is
    // the fence; the broker answers it after any return or channel error for earlier publishes.
    if (p.all_settled()) {
      if (fence_ok) {
        st.done = true;
        break;
      }
      if (!fence_sent) {
        amqp::encode_method(c.out(), 1, amqp::basic_qos{});
        fence_sent = progress = true;
      }
    }
    // 4. Nothing moved: sleep until the socket or the rate limiter has something.
    if (!progress) {
      const int timeout_ms = p.idle_ms(c.blocked());
      if (timeout_ms > 0 || c.has_pending_output()) c.wait(c.has_pending_output(), timeout_ms);
    }
  }
  p.finish();
  if (c.failed()) report_failure(c, rs);
  c.close();
}

void run_consumer(connection& c, run_state& rs, consumer_stats& st) {
  const options& o = rs.opt;
  const bool manual = !o.auto_ack;
  const uint32_t every = std::max<uint32_t>(o.multi_ack_every, 1);
  const double cpu0 = thread_cpu_seconds();
  const uint64_t wall0 = now_ns();
  uint64_t received = 0, tag = 0, body_left = 0;
  bool want_header = false, in_body = false;
  char stamp[12];
  size_t stamp_len = 0;
  uint32_t unacked = 0;
  amqp::frame_view f;

  auto complete = [&] {
    const uint64_t now = now_ns();
    if (stamp_len >= 8) {
      uint64_t sent_at = 0;
      std::memcpy(&sent_at, stamp, 8);
      if (sent_at <= now) st.latency.record(now - sent_at);
    }
    st.received.store(++received, std::memory_order_relaxed);
    st.last_receive_ns.store(now, std::memory_order_relaxed);
    if (manual && ++unacked >= every) {
      amqp::basic_ack ack;
      ack.delivery_tag = tag;
      ack.multiple = every > 1;
      amqp::encode_method(c.out(), 1, ack);
      unacked = 0;
    }
  };

  while (!rs.stop.load(std::memory_order_relaxed)) {
    if (c.has_pending_output() && !c.flush()) break;
    const long got = c.read_available();
    if (got < 0) break;
    // Frames may be waiting from before a read: the deliveries that came in the same read as
    // basic.consume-ok stay in the input, and with a prefetch the broker sends nothing more
    // until they are acknowledged.
    bool parsed = false;
    while (c.next_frame(f)) {
      parsed = true;
      if (f.type == amqp::frame_type::method) {
        uint16_t cls = 0, mth = 0;
        method_ids(f.payload, cls, mth);
        if (cls == 60 && mth == 60) {  // basic.deliver: consumer-tag, delivery-tag, ...
          amqp::reader r(f.payload.substr(4));
          r.shortstr();
          tag = r.u64();
          want_header = true;
          in_body = false;
          continue;
        }
        amqp::method m;
        if (c.handle_control(f, m) == control::fatal) break;
        if (std::holds_alternative<amqp::basic_cancel>(m)) {
          std::fprintf(stderr, "warren-perf: %s: the broker cancelled the consumer\n",
                       c.name().c_str());
          rs.failed = true;
        }
      } else if (f.type == amqp::frame_type::header && want_header) {
        amqp::content_header h;
        want_header = false;
        if (!amqp::decode_content_header(f.payload, h)) continue;
        body_left = h.body_size;
        stamp_len = 0;
        if (body_left == 0)
          complete();
        else
          in_body = true;
      } else if (f.type == amqp::frame_type::body && in_body) {
        const size_t take = std::min(sizeof stamp - stamp_len, f.payload.size());
        std::memcpy(stamp + stamp_len, f.payload.data(), take);
        stamp_len += take;
        body_left -= std::min<uint64_t>(body_left, f.payload.size());
        if (body_left == 0) {
          in_body = false;
          complete();
        }
      }
    }
    if (c.failed()) break;
    if (got == 0 && !parsed) c.wait(c.has_pending_output(), 100);
  }
  st.usage.cpu_s = thread_cpu_seconds() - cpu0;
  st.usage.wall_s = static_cast<double>(now_ns() - wall0) / 1e9;
  if (c.failed()) report_failure(c, rs);
  c.close();
}

}  // namespace warren::perf
