// Password hashes as the catalog stores them, in RabbitMQ's rabbit_password_hashing_sha256
// format: base64(salt ++ SHA-256(salt ++ password)) with a 4-byte random salt. A hash
// exported from RabbitMQ (definitions, `password_hash` in its HTTP API) therefore works here
// and the other way round. Also the base64 codec that HTTP basic auth needs. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace warren::persistence {

std::string base64_encode(std::string_view bytes);
// nullopt when `text` is not valid base64 (padding optional).
std::optional<std::string> base64_decode(std::string_view text);

// A new hash with a random salt.
std::string hash_password(std::string_view password);
// The hash with a given 4-byte salt (tests, and checking a stored hash).
std::string hash_password(std::string_view password, std::string_view salt);
// True when `password` matches `stored` (a hash_password() result). An empty stored hash
// matches nothing: such a user cannot log in with a password.
bool check_password(std::string_view password, std::string_view stored);

}  // namespace warren::persistence
