// Client TCP stream for warren-perf's AMQP and STOMP connections: connect, a non-blocking
// socket with an output buffer written in as few syscalls as possible and an input buffer
// read in big chunks and parsed in place by the protocol layer above. Owned and used by one
// thread at a time. With TLS (amqps://, --tls) the same buffers go through OpenSSL on the same
// non-blocking socket.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace warren::perf {

using clock = std::chrono::steady_clock;

// Milliseconds left until `deadline`, clamped to [0, 1000] (one poll() at a time).
int ms_until(clock::time_point deadline);

// The TLS client settings every TLS connection uses, set once before the first: `ca_file`
// names the CAs to verify the broker against (empty: no verification, as PerfTest's amqps://
// trusts any certificate). False with `error` set when the file cannot be used.
bool init_tls(const std::string& ca_file, std::string& error);

class tcp_stream {
public:
  explicit tcp_stream(std::string name);
  virtual ~tcp_stream();
  tcp_stream(const tcp_stream&) = delete;
  tcp_stream& operator=(const tcp_stream&) = delete;

  // Connects (blocking; with `tls` the TLS handshake too), then makes the socket non-blocking
  // with TCP_NODELAY. The input buffer always has room for a frame of `max_frame` bytes after
  // what is buffered.
  bool connect_to(const std::string& host, const std::string& port, size_t max_frame,
                  bool tls = false);

  std::string& out() { return out_; }
  bool has_pending_output() const { return out_pos_ < out_.size(); }
  size_t pending_output() const { return out_.size() - out_pos_; }
  // Writes as much pending output as the socket takes. False on a socket error.
  bool flush();
  // Reads what is available. >0 bytes read, 0 would block, -1 EOF or error (see error()).
  long read_available();
  // Waits until readable (or writable when want_write); false on timeout.
  bool wait(bool want_write, int timeout_ms);

  // Buffered input not consumed yet; valid until the next read_available().
  std::string_view input() const { return {in_.get() + in_begin_, in_end_ - in_begin_}; }
  void consume(size_t n) { in_begin_ += n; }

  // The protocol's orderly close (bounded); here: just the socket.
  virtual void close(int timeout_ms = 2000);

  const std::string& name() const { return name_; }
  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }

protected:
  // Flushes until the output is written, the deadline passes or the socket fails.
  bool flush_blocking(clock::time_point deadline);
  void fail(std::string why);
  void set_error(std::string why) { error_ = std::move(why); }
  void close_socket();
  bool connected() const { return fd_ >= 0; }

private:
  bool flush_tls();
  long read_tls();

  std::string name_;
  int fd_ = -1;
  void* ssl_ = nullptr;  // SSL*, with TLS
  std::string out_;
  size_t out_pos_ = 0;
  std::unique_ptr<char[]> in_;
  size_t in_cap_ = 0, in_begin_ = 0, in_end_ = 0, max_frame_ = 0;
  bool failed_ = false;
  std::string error_;
};

}  // namespace warren::perf
