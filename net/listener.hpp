// A TCP listener on the pool's first I/O context: accepts sockets, each onto the pool's next
// context (net/io_pool.hpp), and hands each one to a callback.
#pragma once

#include <functional>
#include <string>

#include <boost/asio.hpp>

#include "net/io_pool.hpp"

namespace warren::net {

class listener {
public:
  using on_accept = std::function<void(boost::asio::ip::tcp::socket)>;

  // Binds immediately (port 0 picks a free port); throws boost::system::system_error on failure.
  listener(io_pool& pool, const std::string& address, uint16_t port, on_accept fn);

  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }
  void stop();

private:
  void accept();

  io_pool& pool_;
  boost::asio::ip::tcp::acceptor acceptor_;
  on_accept fn_;
  std::string address_;
  uint16_t port_ = 0;
};

}  // namespace warren::net
