// Implementation of http_server.hpp.
#include "net/http_server.hpp"

#include <optional>

#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>

#include "actors/access.hpp"

namespace warren::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto idle_timeout = std::chrono::seconds(60);
constexpr size_t body_limit = 64 << 20;

// Stream is beast::tcp_stream (HTTP) or beast::ssl_stream<beast::tcp_stream> (HTTPS).
template <class Stream>
class http_session : public std::enable_shared_from_this<http_session<Stream>> {
public:
  template <class... TlsContext>
  http_session(asio::ip::tcp::socket socket, const http_server::handler& fn,
               std::chrono::milliseconds handshake_timeout, TlsContext&... ctx)
    : stream_(std::move(socket), ctx...), fn_(fn), handshake_timeout_(handshake_timeout) {
    boost::system::error_code ec;
    auto local = beast::get_lowest_layer(stream_).socket().local_endpoint(ec);
    local_loopback_ = !ec && access::is_loopback_address(local.address().to_string());
  }

  void start() {
    if constexpr (tls) {
      beast::get_lowest_layer(stream_).expires_after(handshake_timeout_);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec)
                                  return self->close();
                                self->read();
                              });
    } else {
      read();
    }
  }

private:
  static constexpr bool tls = !std::is_same_v<Stream, beast::tcp_stream>;

  void read() {
    parser_.emplace();
    parser_->body_limit(body_limit);
    beast::get_lowest_layer(stream_).expires_after(idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::ssl::error::stream_truncated) {
      close();
      return;
    }
    if (ec) {
      http_response bad(http::status::bad_request, 11);
      bad.set(http::field::content_type, "text/plain");
      bad.body() = ec.message() + "\n";
      bad.keep_alive(false);
      bad.prepare_payload();
      write(std::move(bad));
      return;
    }
    auto req = parser_->release();
    http_response res;
    try {
      res = fn_(req, local_loopback_);
    } catch (const std::exception& e) {
      auto method = req.method_string();
      auto target = req.target();
      spdlog::error("http: {} {} failed: {}", std::string(method.data(), method.size()),
                    std::string(target.data(), target.size()), e.what());
      res = http_response(http::status::internal_server_error, req.version());
      res.set(http::field::content_type, "application/json");
      res.body() = R"({"error":"internal_server_error","reason":"see the broker log"})";
    }
    res.version(req.version());
    res.keep_alive(req.keep_alive() && res.keep_alive());
    res.set(http::field::server, "Warren/0.1.0");
    res.prepare_payload();
    if (req.method() == http::verb::head)  // GET's answer, with its length, and no body
      res.body().clear();
    write(std::move(res));
  }

  void write(http_response res) {
    auto msg = std::make_shared<http_response>(std::move(res));
    beast::get_lowest_layer(stream_).expires_after(idle_timeout);
    http::async_write(stream_, *msg,
                      [self = this->shared_from_this(), msg](beast::error_code ec, size_t) {
                        if (ec || !msg->keep_alive())
                          return self->close();
                        self->read();
                      });
  }

  void close() {
    if constexpr (tls) {
      if (!closing_) {  // a close_notify first, as long as the peer takes it
        closing_ = true;
        beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(1));
        stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->close(); });
        return;
      }
    }
    auto& lowest = beast::get_lowest_layer(stream_);
    beast::error_code ec;
    lowest.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    lowest.close();
  }

  Stream stream_;
  bool closing_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const http_server::handler& fn_;
  std::chrono::milliseconds handshake_timeout_;
  bool local_loopback_ = false;
};

}  // namespace

http_server::http_server(const std::string& address, uint16_t port, handler fn,
                         std::shared_ptr<asio::ssl::context> tls,
                         std::chrono::milliseconds handshake_timeout, size_t threads)
  : acceptor_(io_),
    fn_(std::move(fn)),
    tls_(std::move(tls)),
    handshake_timeout_(handshake_timeout),
    address_(address),
    thread_count_(threads) {
  asio::ip::tcp::endpoint ep{asio::ip::make_address(address), port};
  acceptor_.open(ep.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
}

http_server::~http_server() { stop(); }

void http_server::start() {
  accept();
  for (size_t i = 0; i < thread_count_; ++i)
    threads_.emplace_back([this] { io_.run(); });
}

void http_server::accept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec,
                                                         asio::ip::tcp::socket s) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open())
      return;
    using tls_stream = beast::ssl_stream<beast::tcp_stream>;
    if (!ec && tls_)
      std::make_shared<http_session<tls_stream>>(std::move(s), fn_, handshake_timeout_, *tls_)
        ->start();
    else if (!ec)
      std::make_shared<http_session<beast::tcp_stream>>(std::move(s), fn_, handshake_timeout_)
        ->start();
    accept();
  });
}

void http_server::stop() {
  if (threads_.empty())
    return;
  asio::post(io_, [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  io_.stop();
  for (auto& t : threads_)
    if (t.joinable())
      t.join();
  threads_.clear();
}

}  // namespace warren::net
