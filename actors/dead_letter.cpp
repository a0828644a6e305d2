// Dead-lettering (see dead_letter.hpp): the x-death bookkeeping of rabbit_dead_letter 3.10, and
// the header a quorum queue adds.
#include "actors/dead_letter.hpp"

#include <algorithm>
#include <limits>

#include "protocol/amqp091/header_routes.hpp"
#include "protocol/amqp091/properties.hpp"
#include "protocol/amqp091/wire.hpp"

namespace warren {
namespace {

const std::string* string_field(const amqp::field_table& t, std::string_view key) {
  auto v = amqp::find_field(t, key);
  return v ? std::get_if<std::string>(&v->v) : nullptr;
}

void set_field(amqp::field_table& t, std::string_view key, amqp::field_value v) {
  for (auto& [k, x] : t)
    if (k == key) {
      x = std::move(v);
      return;
    }
  t.emplace_back(std::string{key}, std::move(v));
}

// The x-death array of a headers table, or nullptr.
const amqp::field_array* deaths_of(const amqp::field_table& headers) {
  auto v = amqp::find_field(headers, "x-death");
  return v ? std::get_if<amqp::field_array>(&v->v) : nullptr;
}

}  // namespace

const char* reason_name(death_reason r) {
  switch (r) {
    case death_reason::rejected: return "rejected";
    case death_reason::expired: return "expired";
    case death_reason::maxlen: return "maxlen";
    case death_reason::delivery_limit: return "delivery_limit";
  }
  return "rejected";
}

message_ptr dead_letter(const message& m, death_reason reason, std::string_view queue,
                        std::string_view dlx, const std::optional<std::string>& routing_key,
                        uint64_t now_seconds) {
  amqp::basic_properties p;
  if (!amqp::decode_properties(m.properties(), p))
    return nullptr;
  auto& headers = p.headers ? *p.headers : p.headers.emplace();
  auto cc = amqp::read_header_routes(headers);  // BCC went when the message was published
  std::string reason_text = reason_name(reason);
  amqp::field_array deaths;
  if (auto old = deaths_of(headers))
    deaths = *old;
  auto same = std::find_if(deaths.begin(), deaths.end(), [&](const amqp::field_value& d) {
    auto t = d.as_table();
    if (!t)
      return false;
    auto q = string_field(*t, "queue");
    auto r = string_field(*t, "reason");
    return q && r && *q == queue && *r == reason_text;
  });
  if (same != deaths.end()) {
    amqp::field_table entry = *same->as_table();
    auto count = amqp::find_field(entry, "count");
    int64_t n = count && count->as_int() ? *count->as_int() : 0;
    // A client may have put any count there.
    set_field(entry, "count", n == std::numeric_limits<int64_t>::max() ? n : n + 1);
    deaths.erase(same);
    deaths.insert(deaths.begin(), amqp::field_value{std::move(entry)});
  } else {
    if (deaths.empty()) {
      set_field(headers, "x-first-death-reason", reason_text);
      set_field(headers, "x-first-death-queue", std::string{queue});
      set_field(headers, "x-first-death-exchange", std::string{m.exchange()});
    }
    amqp::field_table entry;
    entry.emplace_back("count", int64_t{1});
    entry.emplace_back("reason", reason_text);
    entry.emplace_back("queue", std::string{queue});
    entry.emplace_back("time", amqp::timestamp_value{now_seconds});
    entry.emplace_back("exchange", std::string{m.exchange()});
    amqp::field_array keys{std::string{m.routing_key()}};
    for (auto& k : cc.keys)
      keys.emplace_back(k);
    entry.emplace_back("routing-keys", std::move(keys));
    if (p.expiration)
      entry.emplace_back("original-expiration", *p.expiration);
    deaths.insert(deaths.begin(), amqp::field_value{std::move(entry)});
  }
  set_field(headers, "x-death", std::move(deaths));
  // With a dead-letter routing key, that key alone routes it and CC goes; without one, the
  // keys it was published with (BCC's too, while the message has them) route it again.
  std::string extra;
  if (routing_key)
    amqp::erase_field(headers, "CC");
  else if (!m.extra_routes().empty())
    extra = std::string{m.extra_routes()};
  else if (!cc.keys.empty())
    extra = amqp::encode_routes(cc.keys);
  p.expiration.reset();
  std::string raw;
  amqp::encode_properties(p, raw);
  std::string_view key = routing_key ? std::string_view{*routing_key} : m.routing_key();
  message::fields f{dlx, key, raw, m.delivery_mode(), true};
  f.dead_lettered = true;
  f.extra_routes = extra;
  return message::make(f, m.body());
}

message_ptr with_header(const message& m, std::string_view key, amqp::field_value value) {
  amqp::basic_properties p;
  if (!amqp::decode_properties(m.properties(), p))
    return nullptr;
  set_field(p.headers ? *p.headers : p.headers.emplace(), key, std::move(value));
  std::string raw;
  amqp::encode_properties(p, raw);
  message::fields f{m.exchange(), m.routing_key(), raw, m.delivery_mode(), true,
                    m.has_expiration()};
  f.dead_lettered = m.dead_lettered();
  f.extra_routes = m.extra_routes();
  return message::make(f, m.body());
}

bool dead_letter_cycle(const message& m, std::string_view queue) {
  amqp::property_scan scan;
  if (!amqp::scan_properties(m.properties(), scan) || !scan.has_headers)
    return false;
  amqp::reader r{scan.headers_raw};
  auto headers = r.table();
  if (r.failed())
    return false;
  auto deaths = deaths_of(headers);
  if (!deaths)
    return false;
  for (auto& d : *deaths) {
    auto t = d.as_table();
    if (!t)
      return false;  // not ours: a client put it there, so not a cycle of ours either
    auto reason = string_field(*t, "reason");
    if (reason && *reason == "rejected")
      return false;
    auto q = string_field(*t, "queue");
    if (q && *q == queue)
      return true;
  }
  return false;
}

}  // namespace warren
