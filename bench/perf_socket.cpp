// Client TCP stream of warren-perf (see perf_socket.hpp): name resolution and connect,
// buffered non-blocking writes and chunked reads into a buffer parsed in place.
#include "bench/perf_socket.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace warren::perf {

int ms_until(clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1000));
}

namespace {

SSL_CTX* tls_context = nullptr;

std::string tls_error() {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

}  // namespace

bool init_tls(const std::string& ca_file, std::string& error) {
  if (tls_context) return true;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    error = "cannot make a TLS context: " + tls_error();
    return false;
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
      error = "cannot use CA file " + ca_file + ": " + tls_error();
      SSL_CTX_free(ctx);
      return false;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  tls_context = ctx;
  return true;
}

tcp_stream::tcp_stream(std::string name) : name_(std::move(name)) {}

tcp_stream::~tcp_stream() { close_socket(); }

void tcp_stream::fail(std::string why) {
  if (!failed_) error_ = std::move(why);
  failed_ = true;
}

void tcp_stream::close(int) { close_socket(); }

void tcp_stream::close_socket() {
  if (ssl_) SSL_free(static_cast<SSL*>(ssl_));
  ssl_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool tcp_stream::connect_to(const std::string& host, const std::string& port, size_t max_frame,
                            bool tls) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    fail("cannot resolve " + host + ": " + gai_strerror(rc));
    return false;
  }
  int last_errno = 0;
  for (addrinfo* a = res; a && fd_ < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      fd_ = fd;
    } else {
      last_errno = errno;
      ::close(fd);
    }
  }
  ::freeaddrinfo(res);
  if (fd_ < 0) {
    fail("cannot connect to " + host + ":" + port + ": " + std::strerror(last_errno));
    return false;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (tls) {
    std::string err;
    if (!init_tls("", err)) {
      fail(err);
      return false;
    }
    SSL* ssl = SSL_new(tls_context);
    ssl_ = ssl;
    SSL_set_fd(ssl, fd_);
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set1_host(ssl, host.c_str());
    if (SSL_connect(ssl) != 1) {  // still blocking: the handshake in one go
      fail("TLS handshake with " + host + ":" + port + " failed: " + tls_error());
      return false;
    }
  }
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  max_frame_ = max_frame + 64;
  in_cap_ = std::max<size_t>(size_t{1} << 20, 2 * max_frame_);
  in_ = std::make_unique<char[]>(in_cap_);
  return true;
}

bool tcp_stream::flush() {
  if (ssl_) return flush_tls();
  while (out_pos_ < out_.size()) {
    const ssize_t n = ::send(fd_, out_.data() + out_pos_, out_.size() - out_pos_,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out_pos_ += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Drop the written prefix once it is most of the buffer, so a socket that never
      // drains completely cannot make the buffer grow without bound.
      if (out_pos_ >= out_.size() / 2) {
        out_.erase(0, out_pos_);
        out_pos_ = 0;
      }
      return true;
    } else {
      fail(std::string("write failed: ") + std::strerror(errno));
      return false;
    }
  }
  out_.clear();
  out_pos_ = 0;
  return true;
}

bool tcp_stream::flush_blocking(clock::time_point deadline) {
  while (!failed_) {
    if (!flush()) return false;
    if (!has_pending_output()) return true;
    if (clock::now() >= deadline) {
      fail("timed out writing to the broker");
      return false;
    }
    wait(true, ms_until(deadline));
  }
  return false;
}

bool tcp_stream::flush_tls() {
  auto* ssl = static_cast<SSL*>(ssl_);
  while (out_pos_ < out_.size()) {
    const int n = SSL_write(ssl, out_.data() + out_pos_,
                            static_cast<int>(std::min<size_t>(out_.size() - out_pos_, 1 << 30)));
    if (n > 0) {
      out_pos_ += static_cast<size_t>(n);
      continue;
    }
    const int err = SSL_get_error(ssl, n);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
      // Retried later with the same bytes first (the buffer may move: ACCEPT_MOVING).
      if (out_pos_ >= out_.size() / 2) {
        out_.erase(0, out_pos_);
        out_pos_ = 0;
      }
      return true;
    }
    fail("TLS write failed: " + tls_error());
    return false;
  }
  out_.clear();
  out_pos_ = 0;
  return true;
}

// Reads every record OpenSSL can give without blocking, so that none waits decrypted in
// OpenSSL while poll() sees an empty socket.
long tcp_stream::read_tls() {
  auto* ssl = static_cast<SSL*>(ssl_);
  long total = 0;
  while (in_cap_ > in_end_) {
    const int n = SSL_read(ssl, in_.get() + in_end_,
                           static_cast<int>(std::min<size_t>(in_cap_ - in_end_, 1 << 30)));
    if (n > 0) {
      in_end_ += static_cast<size_t>(n);
      total += n;
      continue;
    }
    const int err = SSL_get_error(ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
    if (total > 0) break;  // the error comes back on the next call
    fail(err == SSL_ERROR_ZERO_RETURN ? "the broker closed the TLS connection"
                                      : "TLS read failed: " + tls_error());
    return -1;
  }
  return total;
}

long tcp_stream::read_available() {
  if (in_begin_ == in_end_) {
    in_begin_ = in_end_ = 0;
  } else if (in_cap_ - in_end_ < max_frame_) {
    std::memmove(in_.get(), in_.get() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }
  if (ssl_) return read_tls();
  for (;;) {
    const ssize_t n = ::recv(fd_, in_.get() + in_end_, in_cap_ - in_end_, MSG_DONTWAIT);
    if (n > 0) {
      in_end_ += static_cast<size_t>(n);
      return n;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (n == 0)
      fail("the broker closed the TCP connection");
    else
      fail(std::string("read failed: ") + std::strerror(errno));
    return -1;
  }
}

bool tcp_stream::wait(bool want_write, int timeout_ms) {
  if (ssl_ && SSL_pending(static_cast<SSL*>(ssl_)) > 0) return true;
  pollfd p{fd_, static_cast<short>(POLLIN | (want_write ? POLLOUT : 0)), 0};
  return ::poll(&p, 1, timeout_ms) > 0;
}

}  // namespace warren::perf
