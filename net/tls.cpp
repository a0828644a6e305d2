// Implementation of tls.hpp.
#include "net/tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <map>

namespace warren::net {

namespace asio = boost::asio;

namespace {

// The protocol version a RabbitMQ `ssl_options.versions.N` value names; 0 when none.
int version_of(const std::string& name) {
  static const std::map<std::string, int> names{{"tlsv1", TLS1_VERSION},
                                                {"tlsv1.1", TLS1_1_VERSION},
                                                {"tlsv1.2", TLS1_2_VERSION},
                                                {"tlsv1.3", TLS1_3_VERSION}};
  auto it = names.find(name);
  return it == names.end() ? 0 : it->second;
}

bool readable(const std::string& path) { return std::ifstream{path}.good(); }

std::string name_text(X509_NAME* name) {
  if (!name)
    return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio)
    return {};
  // RFC 4514 order and escaping, UTF-8 kept as it is (RabbitMQ shows "CN=client,O=Example").
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out = n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string{};
  BIO_free(bio);
  return out;
}

std::string common_name(X509_NAME* name) {
  if (!name)
    return {};
  int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i < 0)
    return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0)
    return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

}  // namespace

std::shared_ptr<asio::ssl::context> make_server_context(const tls_options& opt,
                                                        std::string& error) {
  for (auto* f : {&opt.certfile, &opt.keyfile})
    if (f->empty()) {
      error = "ssl_options.certfile and ssl_options.keyfile must both be set";
      return nullptr;
    }
  for (auto* f : {&opt.certfile, &opt.keyfile, &opt.cacertfile})
    if (!f->empty() && !readable(*f)) {
      error = "cannot read " + *f;
      return nullptr;
    }
  if (opt.verify_peer && opt.cacertfile.empty()) {
    error = "ssl_options.verify = verify_peer needs ssl_options.cacertfile";
    return nullptr;
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  auto* native = ctx->native_handle();
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::single_dh_use);
  // RabbitMQ 3.10's default: TLS 1.2 and 1.3.
  int lo = TLS1_2_VERSION, hi = TLS1_3_VERSION;
  if (!opt.versions.empty()) {
    lo = TLS1_3_VERSION;
    hi = TLS1_VERSION;
    for (auto& v : opt.versions) {
      int n = version_of(v);
      if (n == 0) {
        error = "unknown TLS version '" + v + "' (tlsv1, tlsv1.1, tlsv1.2, tlsv1.3)";
        return nullptr;
      }
      lo = std::min(lo, n);
      hi = std::max(hi, n);
    }
  }
  SSL_CTX_set_min_proto_version(native, lo);
  SSL_CTX_set_max_proto_version(native, hi);
  std::string suites13, suites12;
  for (auto& c : opt.ciphers) {
    auto& list = c.rfind("TLS_", 0) == 0 ? suites13 : suites12;
    list += (list.empty() ? "" : ":") + c;
  }
  if (!suites12.empty() && SSL_CTX_set_cipher_list(native, suites12.c_str()) != 1) {
    error = "no usable cipher in ssl_options.ciphers: " + suites12;
    return nullptr;
  }
  if (!suites13.empty() && SSL_CTX_set_ciphersuites(native, suites13.c_str()) != 1) {
    error = "no usable TLS 1.3 cipher suite in ssl_options.ciphers: " + suites13;
    return nullptr;
  }
  if (!opt.password.empty())
    ctx->set_password_callback(
      [pw = opt.password](size_t, asio::ssl::context::password_purpose) { return pw; });
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(opt.certfile, ec);
  if (ec) {
    error = "cannot use certificate " + opt.certfile + ": " + ec.message();
    return nullptr;
  }
  ctx->use_private_key_file(opt.keyfile, asio::ssl::context::pem, ec);
  // OpenSSL refuses a key that is not the certificate's as it loads it ("key values
  // mismatch"), or when checked.
  if (ec) {
    error = "cannot use private key " + opt.keyfile + ": " + ec.message();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    error = "the private key " + opt.keyfile + " does not match the certificate " + opt.certfile;
    return nullptr;
  }
  if (!opt.cacertfile.empty()) {
    ctx->load_verify_file(opt.cacertfile, ec);
    if (ec) {
      error = "cannot use CA certificates " + opt.cacertfile + ": " + ec.message();
      return nullptr;
    }
    // Tells clients which CAs' certificates are welcome.
    if (auto* names = SSL_load_client_CA_file(opt.cacertfile.c_str()))
      SSL_CTX_set_client_CA_list(native, names);
  }
  if (opt.verify_peer) {
    auto mode = asio::ssl::verify_peer;
    if (opt.fail_if_no_peer_cert)
      mode |= asio::ssl::verify_fail_if_no_peer_cert;
    ctx->set_verify_mode(mode);
    ctx->set_verify_depth(opt.depth);
  } else {
    ctx->set_verify_mode(asio::ssl::verify_none);
  }
  // No TLS 1.3 session tickets, as RabbitMQ's Erlang TLS sends none by default. A ticket
  // arrives after the handshake, while a client may already read on one thread and write its
  // first frame on another: Python's ssl module (stomp.py does exactly that) then failed the
  // write with "[SSL] internal error" now and then. TLS 1.2 sessions still resume by id.
  SSL_CTX_set_num_tickets(native, 0);
  // A resumed session of a verified client needs this, or OpenSSL refuses it.
  static const unsigned char session_context[] = "warren";
  SSL_CTX_set_session_id_context(native, session_context, sizeof session_context - 1);
  ERR_clear_error();
  return ctx;
}

std::optional<std::vector<int64_t>> certificate_expiries(const std::string& path,
                                                         std::string& error) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new_file(path.c_str(), "r"), BIO_free};
  if (!bio) {
    error = "cannot read " + path;
    ERR_clear_error();
    return std::nullopt;
  }
  std::vector<int64_t> out;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    std::tm tm{};
    bool read = ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1;
    X509_free(cert);
    if (!read) {
      error = "a certificate of " + path + " has an unreadable expiry";
      ERR_clear_error();
      return std::nullopt;
    }
    out.push_back(static_cast<int64_t>(timegm(&tm)));
  }
  // The end of the file reads as "no start line"; anything else is a certificate that could
  // not be read.
  auto last = ERR_peek_last_error();
  ERR_clear_error();
  if (last != 0 && !(ERR_GET_LIB(last) == ERR_LIB_PEM &&
                     ERR_GET_REASON(last) == PEM_R_NO_START_LINE)) {
    error = "a certificate of " + path + " cannot be read";
    return std::nullopt;
  }
  if (out.empty()) {
    error = path + " holds no PEM certificate";
    return std::nullopt;
  }
  return out;
}

tls_details read_tls_details(void* handle) {
  auto* ssl = static_cast<SSL*>(handle);
  tls_details d;
  d.on = true;
  std::string version = SSL_get_version(ssl);
  std::transform(version.begin(), version.end(), version.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  d.protocol = version;
  if (auto* cipher = SSL_get_current_cipher(ssl))
    d.cipher = SSL_CIPHER_get_name(cipher);
  if (X509* cert = SSL_get1_peer_certificate(ssl)) {
    d.peer_subject = name_text(X509_get_subject_name(cert));
    d.peer_issuer = name_text(X509_get_issuer_name(cert));
    d.peer_common_name = common_name(X509_get_subject_name(cert));
    X509_free(cert);
  }
  return d;
}

}  // namespace warren::net
