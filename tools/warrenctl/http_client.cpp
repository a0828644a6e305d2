// Implementation of http_client.hpp.
#include "tools/warrenctl/http_client.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace warrenctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

std::string base64(const std::string& in) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 |
                 (unsigned char)in[i + 2];
    out += {a[v >> 18 & 63], a[v >> 12 & 63], a[v >> 6 & 63], a[v & 63]};
  }
  if (i < in.size()) {
    unsigned v = (unsigned char)in[i] << 16;
    if (i + 1 < in.size())
      v |= (unsigned char)in[i + 1] << 8;
    out += {a[v >> 18 & 63], a[v >> 12 & 63], i + 1 < in.size() ? a[v >> 6 & 63] : '=', '='};
  }
  return out;
}

void set_timeouts(asio::ip::tcp::socket& s, int seconds) {
  timeval tv{seconds, 0};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Writes `req` and reads the answer on `stream` (a socket, or a TLS stream over one).
template <class Stream>
void exchange(Stream& stream, http::request<http::string_body>& req, response& out) {
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  out.status = static_cast<int>(res.result_int());
  out.body = std::move(res.body());
}

}  // namespace

nlohmann::json response::json() const {
  auto j = nlohmann::json::parse(body, nullptr, false);
  return j.is_discarded() ? nlohmann::json{} : j;
}

std::string response::reason() const {
  if (!error.empty())
    return error;
  auto j = json();
  if (j.is_object()) {
    if (j.contains("reason") && j["reason"].is_string())
      return j["reason"].get<std::string>();
    if (j.contains("error") && j["error"].is_string())
      return j["error"].get<std::string>();
  }
  return "HTTP status " + std::to_string(status);
}

std::string encode(const std::string& segment) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : segment) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

response request(const endpoint& ep, const std::string& method, const std::string& path,
                 const nlohmann::json* body,
                 const std::vector<std::pair<std::string, std::string>>& headers) {
  response out;
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver{io};
    asio::ip::tcp::socket socket{io};
    asio::connect(socket, resolver.resolve(ep.host, ep.port));
    set_timeouts(socket, ep.timeout_s);
    http::request<http::string_body> req{http::string_to_verb(method), path, 11};
    req.set(http::field::host, ep.host + ":" + ep.port);
    req.set(http::field::user_agent, "warrenctl/0.1.0");
    req.set(http::field::authorization, "Basic " + base64(ep.user + ":" + ep.password));
    req.set(http::field::accept, "application/json");
    for (auto& [k, v] : headers)
      req.set(k, v);
    if (body) {
      req.set(http::field::content_type, "application/json");
      req.body() = body->dump();
    }
    req.keep_alive(false);
    req.prepare_payload();
    boost::system::error_code ec;
    if (ep.https) {
      asio::ssl::context ctx{asio::ssl::context::tls_client};
      if (ep.cacert.empty())
        ctx.set_default_verify_paths();
      else
        ctx.load_verify_file(ep.cacert);
      ctx.set_verify_mode(asio::ssl::verify_peer);
      asio::ssl::stream<asio::ip::tcp::socket&> tls{socket, ctx};
      tls.set_verify_callback(asio::ssl::host_name_verification(ep.host));
      SSL_set_tlsext_host_name(tls.native_handle(), ep.host.c_str());
      tls.handshake(asio::ssl::stream_base::client);
      exchange(tls, req, out);
      tls.shutdown(ec);
    } else {
      exchange(socket, req, out);
    }
    socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  } catch (const std::exception& e) {
    out.error = "cannot reach the broker's HTTP API at " + ep.host + ":" + ep.port + ": " +
                e.what();
  }
  return out;
}

}  // namespace warrenctl
