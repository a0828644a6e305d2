// A small HTTP/1.1 server (Boost.Beast) for the management API, /metrics and the web page.
// It runs on an io_context and threads of its own, apart from the AMQP and STOMP I/O, so a
// handler may block (it asks actors and waits for their answers) without stalling a socket
// that carries messages. One request at a time per connection, keep-alive honoured; idle
// connections time out. With a TLS context it serves HTTPS only.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http.hpp>

namespace warren::net {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

class http_server {
public:
  // `local_loopback`: the client reached a loopback address of this host.
  using handler = std::function<http_response(const http_request&, bool local_loopback)>;

  // Binds immediately (port 0 picks a free port); throws boost::system::system_error.
  // With `tls`, HTTPS: a client that has not finished its handshake within
  // `handshake_timeout` is dropped.
  http_server(const std::string& address, uint16_t port, handler fn,
              std::shared_ptr<boost::asio::ssl::context> tls = nullptr,
              std::chrono::milliseconds handshake_timeout = std::chrono::seconds(5),
              size_t threads = 2);
  ~http_server();

  void start();
  void stop();  // closes the acceptor and every connection, joins the threads

  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }

private:
  void accept();

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  handler fn_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  std::chrono::milliseconds handshake_timeout_;
  std::string address_;
  uint16_t port_ = 0;
  size_t thread_count_;
  std::vector<std::thread> threads_;
};

}  // namespace warren::net
