#include "actors/stomp_mapping.hpp"

#include <charconv>
#include <vector>

#include "actors/message_lookup.hpp"
#include "protocol/amqp091/properties.hpp"

namespace warren::stomp_map {

namespace {

// The SEND headers that become message properties (or the routing) rather than entries of
// the AMQP headers table: as RabbitMQ's adapter, every other header is kept there, STOMP's own
// (receipt, transaction, content-length...) included, and shows again in MESSAGE frames.
bool property_header(std::string_view h) {
  static constexpr std::string_view properties[] = {
    "destination", "content-type", "content-encoding", "persistent", "priority",
    "correlation-id", "reply-to", "expiration", "amqp-message-id", "timestamp", "type",
    "user-id", "app-id"};
  for (auto name : properties)
    if (h == name)
      return true;
  return false;
}

// The x- headers of a SUBSCRIBE or SEND that become queue arguments, by type.
constexpr const char* number_arguments[] = {"x-message-ttl", "x-expires", "x-max-length",
                                            "x-max-length-bytes", "x-max-priority",
                                            "x-stream-max-segment-size-bytes"};
constexpr const char* string_arguments[] = {"x-overflow", "x-dead-letter-exchange",
                                            "x-dead-letter-routing-key", "x-queue-type",
                                            "x-max-age"};

}  // namespace

std::optional<int64_t> parse_integer(std::string_view s) {
  while (!s.empty() && s.front() == ' ')
    s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ')
    s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
    if (!s.empty() && s.front() == '-')
      return std::nullopt;
  }
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size())
    return std::nullopt;
  return v;
}

std::optional<std::string> bad_integer_header(const stomp::frame& f) {
  auto check = [&](const char* name) -> std::optional<std::string> {
    auto v = f.header(name);
    if (v && !parse_integer(*v))
      return "header '" + std::string{name} + "' must be an integer, not '" + *v + "'\n";
    return std::nullopt;
  };
  const bool send = f.command == "SEND";
  for (const char* name : {send ? "priority" : "prefetch-count", send ? "timestamp" : nullptr})
    if (name)
      if (auto why = check(name))
        return why;
  for (const char* name : number_arguments)
    if (auto why = check(name))
      return why;
  return std::nullopt;
}

namespace {

// RabbitMQ's adapter takes "%2F" in a name for a "/" (and no other escape).
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.substr(i, 3) == "%2F") {
      out += '/';
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

// As rabbit_routing_parser: the destination split at every "/", each kind taking exactly the
// segments it names (a queue, topic or temporary queue one, an exchange one or two, none of
// them empty but an exchange's key), so "/queue/" and "/queue/a/b" are refused rather than
// named.
std::optional<destination> parse_destination(std::string_view text, destination_error& error) {
  if (text.empty()) {  // present but empty (absent is the caller's "Missing destination")
    error.message = "Invalid destination";
    error.detail = "Destination cannot be blank";
    return std::nullopt;
  }
  std::vector<std::string_view> parts;
  for (size_t from = 0;;) {
    auto slash = text.find('/', from);
    parts.push_back(text.substr(from, slash == std::string_view::npos ? slash : slash - from));
    if (slash == std::string_view::npos)
      break;
    from = slash + 1;
  }
  if (parts.size() == 1)  // a bare name, as in the Net::Stomp example: a queue
    return destination{dest_kind::queue, unescape(text), {}};
  auto invalid = [&](const char* kind, size_t first) -> std::optional<destination> {
    std::string rest;
    for (size_t i = first; i < parts.size(); ++i)
      rest += "/" + std::string{parts[i]};
    error.message = "Invalid destination";
    error.detail = "'" + rest + "' is not a valid " + kind + " destination\n";
    return std::nullopt;
  };
  auto one = [&](dest_kind kind, const char* name, size_t first) -> std::optional<destination> {
    if (parts.size() != first + 1 || parts[first].empty())
      return invalid(name, first);
    return destination{kind, unescape(parts[first]), {}};
  };
  auto type = parts[0].empty() ? parts[1] : std::string_view{};
  if (type == "queue")
    return one(dest_kind::queue, "queue", 2);
  if (type == "temp-queue")
    return one(dest_kind::temp_queue, "temp_queue", 2);
  if (type == "topic") {
    auto d = one(dest_kind::topic, "topic", 2);
    if (d)
      *d = destination{dest_kind::topic, "amq.topic", std::move(d->name)};
    return d;
  }
  if (type == "amq" && parts.size() > 2 && parts[2] == "queue")
    return one(dest_kind::amq_queue, "amqqueue", 3);
  if (type == "exchange") {
    if (parts.size() < 3 || parts.size() > 4 || parts[2].empty())
      return invalid("exchange", 2);
    return destination{dest_kind::exchange, unescape(parts[2]),
                       parts.size() == 4 ? unescape(parts[3]) : std::string{}};
  }
  if (type == "reply-queue" && parts.size() > 2) {  // the rest, slashes and all
    auto name = text.substr(std::string_view{"/reply-queue/"}.size());
    if (name.empty())
      return invalid("reply_queue", 2);
    return destination{dest_kind::reply_queue, unescape(name), {}};
  }
  error.message = "Unknown destination";
  error.detail = "'" + std::string{text} +
                 "' is not a valid destination.\nValid destination types are: /temp-queue, "
                 "/exchange, /topic, /queue, /amq/queue, /reply-queue/.\n";
  return std::nullopt;
}

std::pair<std::string, std::string> publish_target(const destination& d) {
  switch (d.kind) {
    case dest_kind::topic:
    case dest_kind::exchange:
      return {d.name, d.key};
    default:
      return {"", d.name};
  }
}

std::string properties_from_send(const stomp::frame& send, uint8_t& delivery_mode) {
  amqp::basic_properties p;
  auto get = [&](std::string_view h) -> const std::string* { return send.header(h); };
  if (auto v = get("content-type"))
    p.content_type = *v;
  if (auto v = get("content-encoding"))
    p.content_encoding = *v;
  if (auto v = get("correlation-id"))
    p.correlation_id = *v;
  if (auto v = get("reply-to"))
    p.reply_to = *v;
  if (auto v = get("expiration"))
    p.expiration = *v;
  if (auto v = get("amqp-message-id"))
    p.message_id = *v;
  if (auto v = get("type"))
    p.type = *v;
  if (auto v = get("user-id"))
    p.user_id = *v;
  if (auto v = get("app-id"))
    p.app_id = *v;
  if (auto v = get("priority"))
    if (auto n = parse_integer(*v); n && *n >= 0 && *n <= 255)
      p.priority = static_cast<uint8_t>(*n);
  if (auto v = get("timestamp"))
    if (auto n = parse_integer(*v); n && *n >= 0)
      p.timestamp = static_cast<uint64_t>(*n);
  delivery_mode = 0;
  if (auto v = get("persistent"); v && *v == "true") {
    p.delivery_mode = 2;
    delivery_mode = 2;
  }
  amqp::field_table headers;
  for (auto& [k, v] : send.headers) {
    if (property_header(k) || amqp::find_field(headers, k))
      continue;  // repeated headers: the first one wins
    headers.emplace_back(k, v);
  }
  if (!headers.empty())
    p.headers = std::move(headers);
  std::string raw;
  amqp::encode_properties(p, raw);
  return raw;
}

amqp::field_table queue_arguments(const stomp::frame& f) {
  amqp::field_table args;
  for (auto key : number_arguments)
    if (auto v = f.header(key)) {
      if (auto n = parse_integer(*v))
        args.emplace_back(key, *n);
      else
        args.emplace_back(key, *v);
    }
  for (auto key : string_arguments)
    if (auto v = f.header(key))
      args.emplace_back(key, *v);
  return args;
}

std::string error_name(std::string_view amqp_text) {
  const size_t end = amqp_text.find(" - ");
  if (end == 0 || end == std::string_view::npos)
    return "internal_error";
  std::string name;
  for (const char c : amqp_text.substr(0, end)) {
    if ((c < 'A' || c > 'Z') && c != '_')
      return "internal_error";
    name += c == '_' ? '_' : static_cast<char>(c - 'A' + 'a');
  }
  return name;
}

std::string destination_of(const message& m) {
  std::string_view exchange = m.exchange();
  std::string_view key = m.routing_key();
  if (exchange.empty())
    return "/queue/" + std::string{key};
  if (exchange == "amq.topic")
    return "/topic/" + std::string{key};
  return "/exchange/" + std::string{exchange} + "/" + std::string{key};
}

void add_message_headers(const message& m, stomp::frame& out) {
  amqp::basic_properties p;
  if (!amqp::decode_properties(m.properties(), p))
    return;
  auto put = [&](const char* name, const std::optional<std::string>& v) {
    if (v)
      out.headers.emplace_back(name, *v);
  };
  put("content-type", p.content_type);
  put("content-encoding", p.content_encoding);
  put("correlation-id", p.correlation_id);
  if (p.reply_to) {
    // An AMQP reply_to names a queue; STOMP clients see it as a destination (RabbitMQ).
    out.headers.emplace_back("reply-to", p.reply_to->rfind('/', 0) == 0
                                           ? *p.reply_to
                                           : "/reply-queue/" + *p.reply_to);
  }
  put("expiration", p.expiration);
  put("amqp-message-id", p.message_id);
  put("type", p.type);
  put("user-id", p.user_id);
  put("app-id", p.app_id);
  if (p.priority)
    out.headers.emplace_back("priority", std::to_string(*p.priority));
  if (p.timestamp)
    out.headers.emplace_back("timestamp", std::to_string(*p.timestamp));
  if (p.delivery_mode && *p.delivery_mode == 2)
    out.headers.emplace_back("persistent", "true");
  if (p.headers) {
    for (auto& [k, v] : *p.headers) {
      // The frame's own headers come first and win; its content-length is written with it.
      if (k == "content-length" || out.header(k))
        continue;
      if (auto text = field_text(v))
        out.headers.emplace_back(k, *text);
    }
  }
}

}  // namespace warren::stomp_map
