// Password hashes in RabbitMQ's rabbit_password_hashing_sha256 format and the base64 codec.
#include <catch2/catch.hpp>

#include "persistence/password_hash.hpp"

using namespace warren::persistence;

TEST_CASE("base64 round trips and known vectors (RFC 4648 §10)") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_decode("Zm9vYmE=") == std::optional<std::string>{"fooba"});
  CHECK(base64_decode("Zm9vYmE") == std::optional<std::string>{"fooba"});
  CHECK(base64_decode("Z3Vlc3Q6Z3Vlc3Q=") == std::optional<std::string>{"guest:guest"});
  CHECK_FALSE(base64_decode("Zm9v!"));
  CHECK_FALSE(base64_decode("Z"));
  std::string all;
  for (int i = 0; i < 256; ++i)
    all.push_back(static_cast<char>(i));
  CHECK(base64_decode(base64_encode(all)) == std::optional<std::string>{all});
}

TEST_CASE("a hash is salted SHA-256 and checks only its own password") {
  // RabbitMQ's format: base64(salt ++ sha256(salt ++ password)); this one was made with
  // salt 908DC60A and password "test12" (the example in RabbitMQ's password docs).
  CHECK(check_password("test12", "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"));
  CHECK_FALSE(check_password("test13", "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"));
  auto h1 = hash_password("guest");
  auto h2 = hash_password("guest");
  CHECK(h1 != h2);  // random salts
  CHECK(check_password("guest", h1));
  CHECK(check_password("guest", h2));
  CHECK_FALSE(check_password("Guest", h1));
  CHECK_FALSE(check_password("", h1));
  CHECK_FALSE(check_password("guest", ""));
  CHECK_FALSE(check_password("guest", "not base64!"));
  CHECK(hash_password("x", std::string("\x01\x02\x03\x04", 4)) ==
        hash_password("x", std::string("\x01\x02\x03\x04", 4)));
}
