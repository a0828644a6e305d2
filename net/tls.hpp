// TLS for the listeners (AMQPS, STOMP over TLS, HTTPS for the management API): the
// `ssl_options.*` settings as RabbitMQ names them, the OpenSSL context made from them, and
// what a connection shows of its TLS session (protocol, cipher, the client's certificate).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

namespace warren::net {

struct tls_options {
  std::string certfile;    // the server's certificate (PEM), with its chain after it
  std::string keyfile;     // its private key (PEM)
  std::string cacertfile;  // the CAs whose client certificates are accepted (PEM)
  std::string password;    // of the private key, if it is encrypted
  bool verify_peer = false;  // verify_peer: ask for a client certificate and check it
  bool fail_if_no_peer_cert = false;  // with verify_peer: refuse a client that sends none
  int depth = 10;  // longest chain of intermediate CAs accepted below the trusted one
  std::vector<std::string> versions;  // "tlsv1.2", "tlsv1.3"; empty: what OpenSSL allows
  std::vector<std::string> ciphers;   // OpenSSL names; TLS 1.3 suites start with "TLS_"
  int handshake_timeout_ms = 5000;

  bool configured() const { return !certfile.empty() || !keyfile.empty(); }
};

// A server context from `opt`; nullptr and `error` set when a file cannot be read or does not
// fit (a key that is not the certificate's, a bad version or cipher name).
std::shared_ptr<boost::asio::ssl::context> make_server_context(const tls_options& opt,
                                                               std::string& error);

// When each certificate of the PEM file `path` expires (its notAfter, seconds since the epoch,
// UTC), in the file's order; nullopt and `error` set when the file cannot be read or holds no
// certificate.
std::optional<std::vector<int64_t>> certificate_expiries(const std::string& path,
                                                         std::string& error);

// What a connection shows of its TLS session, as RabbitMQ's connection listing names it.
struct tls_details {
  bool on = false;
  std::string protocol;  // "tlsv1.3"
  std::string cipher;    // OpenSSL's name: "TLS_AES_256_GCM_SHA384"
  // The client's certificate, if it sent one: subject and issuer as RFC 4514 strings
  // ("CN=client,O=Example"), and the subject's common name.
  std::string peer_subject;
  std::string peer_issuer;
  std::string peer_common_name;
  bool has_peer_cert() const { return !peer_subject.empty(); }
};

// Reads the details of an established session (`ssl` is an SSL*).
tls_details read_tls_details(void* ssl);

}  // namespace warren::net
