#include "net/listener.hpp"

#include <spdlog/spdlog.h>

namespace warren::net {

namespace asio = boost::asio;

listener::listener(io_pool& pool, const std::string& address, uint16_t port, on_accept fn)
  : pool_(pool), acceptor_(pool.main()), fn_(std::move(fn)), address_(address) {
  asio::ip::tcp::endpoint ep{asio::ip::make_address(address), port};
  acceptor_.open(ep.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
  accept();
}

void listener::accept() {
  // The socket belongs to the context that will read it from now on.
  acceptor_.async_accept(
    pool_.next(), [this](const boost::system::error_code& ec, asio::ip::tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open())
        return;
      if (!ec)
        fn_(std::move(s));
      else
        spdlog::warn("accept on {}:{} failed: {}", address_, port_, ec.message());
      accept();
    });
}

void listener::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

}  // namespace warren::net
