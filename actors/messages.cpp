// message: one block for a published message (see messages.hpp).
#include "actors/messages.hpp"

#include <cstring>
#include <new>

namespace warren {

namespace {

uint32_t checked_len(std::string_view s) {
  if (s.size() > UINT32_MAX)
    throw std::length_error("message field larger than 4 GiB");
  return static_cast<uint32_t>(s.size());
}

char* append(char* out, std::string_view s) {
  if (!s.empty())
    std::memcpy(out, s.data(), s.size());
  return out + s.size();
}

}  // namespace

message_ptr message::build(const fields& f, std::string_view inline_body,
                           std::unique_ptr<std::string> adopted) {
  auto exchange_len = checked_len(f.exchange);
  auto routing_key_len = checked_len(f.routing_key);
  auto properties_len = checked_len(f.properties);
  const bool routed = !f.extra_routes.empty();  // CC or BCC: rare
  auto extra = f.exchange.size() + f.routing_key.size() + f.properties.size() + inline_body.size();
  if (routed)
    extra += sizeof(uint32_t) + checked_len(f.extra_routes);
  void* mem = ::operator new(sizeof(message) + extra);
  auto* m = new (mem) message;
  m->exchange_len_ = exchange_len;
  m->routing_key_len_ = routing_key_len;
  m->properties_len_ = properties_len;
  m->inline_body_len_ = static_cast<uint16_t>(inline_body.size());  // at most inline_body_max
  m->delivery_mode_ = f.delivery_mode;
  m->has_headers_ = f.has_headers;
  m->has_expiration_ = f.has_expiration;
  m->dead_lettered_ = f.dead_lettered;
  m->has_extra_routes_ = routed;
  m->adopted_body_ = std::move(adopted);
  auto* out = append(m->bytes(), f.exchange);
  out = append(out, f.routing_key);
  out = append(out, f.properties);
  out = append(out, inline_body);
  if (routed) {
    auto routes_len = static_cast<uint32_t>(f.extra_routes.size());
    std::memcpy(out, &routes_len, sizeof routes_len);
    append(out + sizeof routes_len, f.extra_routes);
  }
  return message_ptr{m, false};
}

message_ptr message::make(const fields& f, std::string&& body) {
  if (body.size() > inline_body_max)
    return build(f, {}, std::make_unique<std::string>(std::move(body)));
  return build(f, body, nullptr);
}

message_ptr message::make(const fields& f, std::string_view body) {
  if (body.size() > inline_body_max)
    return build(f, {}, std::make_unique<std::string>(body));
  return build(f, body, nullptr);
}

void message::destroy(const message* m) noexcept {
  m->~message();
  ::operator delete(const_cast<message*>(m));
}

}  // namespace warren
