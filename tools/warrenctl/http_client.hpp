// warrenctl's HTTP/1.1 client: one synchronous request per call (Boost.Beast), over TLS with
// `https` (the broker's certificate and host name verified), HTTP basic auth, JSON in and out. Socket reads and writes time out, so a hung broker cannot hang the
// command.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace warrenctl {

struct endpoint {
  std::string host = "127.0.0.1";
  std::string port = "15672";
  std::string user = "guest";
  std::string password = "guest";
  int timeout_s = 30;
  bool https = false;  // TLS to the management API (management.ssl.port)
  std::string cacert;  // the CAs to verify it against; empty: the system's
};

struct response {
  int status = 0;        // 0 when no answer came (error says why)
  std::string body;
  std::string error;     // connection-level failure
  nlohmann::json json() const;  // null when the body is not JSON
  // The broker's "reason" (or "error") from a JSON error body, else the status line.
  std::string reason() const;
};

response request(const endpoint& ep, const std::string& method, const std::string& path,
                 const nlohmann::json* body = nullptr,
                 const std::vector<std::pair<std::string, std::string>>& headers = {});

// Percent-encodes one path segment ("/" -> "%2F").
std::string encode(const std::string& segment);

}  // namespace warrenctl
