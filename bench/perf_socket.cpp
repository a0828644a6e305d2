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

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace warren::perf {

int ms_until(clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1000));
}

tcp_stream::tcp_stream(std::string name) : name_(std::move(name)) {}

tcp_stream::~tcp_stream() { close_socket(); }

void tcp_stream::fail(std::string why) {
  if (!failed_) error_ = std::move(why);
  failed_ = true;
}

void tcp_stream::close(int) { close_socket(); }

void tcp_stream::close_socket() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool tcp_stream::connect_to(const std::string& host, const std::string& port, size_t max_frame) {
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
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  max_frame_ = max_frame + 64;
  in_cap_ = std::max<size_t>(size_t{1} << 20, 2 * max_frame_);
  in_ = std::make_unique<char[]>(in_cap_);
  return true;
}

bool tcp_stream::flush() {
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

long tcp_stream::read_available() {
  if (in_begin_ == in_end_) {
    in_begin_ = in_end_ = 0;
  } else if (in_cap_ - in_end_ < max_frame_) {
    std::memmove(in_.get(), in_.get() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }
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
  pollfd p{fd_, static_cast<short>(POLLIN | (want_write ? POLLOUT : 0)), 0};
  return ::poll(&p, 1, timeout_ms) > 0;
}

}  // namespace warren::perf
