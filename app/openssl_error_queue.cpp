// CAF 0.17's openssl module (TLS between cluster nodes) calls SSL_read, SSL_write, SSL_accept
// and SSL_connect without emptying the thread's OpenSSL error queue first, then asks
// SSL_get_error, which reads that queue. An error left there by another connection on the
// same middleman thread (a client of the cluster port that failed its handshake or hung up)
// made a healthy link to another node look broken, and CAF closed it: both nodes saw the other
// down. These definitions in the executable take the place of OpenSSL's for every library (the
// dynamic linker binds to the executable's symbols first); each empties the queue, as OpenSSL
// asks of its callers, and calls OpenSSL's own. Asio empties it already; for Asio's TLS
// listeners this is one more call that finds the queue empty.
#include <dlfcn.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace {

template <class F>
F openssl_own(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static auto own = openssl_own<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return own(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static auto own = openssl_own<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return own(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  static auto own = openssl_own<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return own(ssl);
}

int SSL_connect(SSL* ssl) {
  static auto own = openssl_own<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return own(ssl);
}

}  // extern "C"
