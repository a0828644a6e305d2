// Implementation of json_amqp.hpp.
#include "management/json_amqp.hpp"


namespace warren::mgmt {

namespace {

std::optional<amqp::field_value> value_from_json(const json& j, std::string& error) {
  switch (j.type()) {
    case json::value_t::null:
      return amqp::field_value{};
    case json::value_t::boolean:
      return amqp::field_value{j.get<bool>()};
    case json::value_t::number_integer:
      return amqp::field_value{j.get<int64_t>()};
    case json::value_t::number_unsigned: {
      auto u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) {
        error = "integer out of range: " + j.dump();
        return std::nullopt;
      }
      return amqp::field_value{static_cast<int64_t>(u)};
    }
    case json::value_t::number_float:
      return amqp::field_value{j.get<double>()};
    case json::value_t::string:
      return amqp::field_value{j.get<std::string>()};
    case json::value_t::object: {
      auto t = table_from_json(j, error);
      if (!t)
        return std::nullopt;
      return amqp::field_value{std::move(*t)};
    }
    case json::value_t::array: {
      amqp::field_array a;
      for (auto& x : j) {
        auto v = value_from_json(x, error);
        if (!v)
          return std::nullopt;
        a.push_back(std::move(*v));
      }
      return amqp::field_value{std::move(a)};
    }
    default:
      error = "unsupported value " + j.dump();
      return std::nullopt;
  }
}

bool optional_string(const json& j, const char* key, std::optional<std::string>& out,
                     std::string& error) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return true;
  if (!it->is_string()) {
    error = std::string{"property "} + key + " must be a string";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

template <class T>
bool optional_number(const json& j, const char* key, std::optional<T>& out, std::string& error) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return true;
  if (!it->is_number_integer()) {
    error = std::string{"property "} + key + " must be an integer";
    return false;
  }
  out = it->get<T>();
  return true;
}

}  // namespace

json to_json(const amqp::field_value& v) {
  return std::visit(
    [](const auto& x) -> json {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<T, std::monostate>)
        return nullptr;
      else if constexpr (std::is_same_v<T, amqp::decimal_value>) {
        double d = x.value;
        for (int i = 0; i < x.scale; ++i)
          d /= 10;
        return d;
      } else if constexpr (std::is_same_v<T, amqp::byte_array>)
        return x.bytes;
      else if constexpr (std::is_same_v<T, amqp::timestamp_value>)
        return x.seconds;
      else if constexpr (std::is_same_v<T, amqp::field_table>)
        return to_json(x);
      else if constexpr (std::is_same_v<T, amqp::field_array>) {
        json a = json::array();
        for (auto& e : x)
          a.push_back(to_json(e));
        return a;
      } else
        return x;
    },
    v.v);
}

json to_json(const amqp::field_table& t) {
  json o = json::object();
  for (auto& [k, v] : t)
    o[k] = to_json(v);
  return o;
}

json to_json(const amqp::basic_properties& p) {
  json o = json::object();
  auto put = [&](const char* key, const auto& opt) {
    if (opt)
      o[key] = *opt;
  };
  put("content_type", p.content_type);
  put("content_encoding", p.content_encoding);
  if (p.headers)
    o["headers"] = to_json(*p.headers);
  put("delivery_mode", p.delivery_mode);
  put("priority", p.priority);
  put("correlation_id", p.correlation_id);
  put("reply_to", p.reply_to);
  put("expiration", p.expiration);
  put("message_id", p.message_id);
  put("timestamp", p.timestamp);
  put("type", p.type);
  put("user_id", p.user_id);
  put("app_id", p.app_id);
  put("cluster_id", p.cluster_id);
  return o;
}

std::optional<amqp::field_table> table_from_json(const json& j, std::string& error) {
  if (j.is_null())
    return amqp::field_table{};
  if (!j.is_object()) {
    error = "expected an object, got " + j.dump();
    return std::nullopt;
  }
  amqp::field_table t;
  for (auto& [k, v] : j.items()) {
    auto x = value_from_json(v, error);
    if (!x)
      return std::nullopt;
    t.emplace_back(k, std::move(*x));
  }
  return t;
}

std::optional<amqp::basic_properties> properties_from_json(const json& j, std::string& error) {
  amqp::basic_properties p;
  if (j.is_null())
    return p;
  if (!j.is_object()) {
    error = "properties must be an object";
    return std::nullopt;
  }
  bool ok = optional_string(j, "content_type", p.content_type, error) &&
            optional_string(j, "content_encoding", p.content_encoding, error) &&
            optional_number(j, "delivery_mode", p.delivery_mode, error) &&
            optional_number(j, "priority", p.priority, error) &&
            optional_string(j, "correlation_id", p.correlation_id, error) &&
            optional_string(j, "reply_to", p.reply_to, error) &&
            optional_string(j, "expiration", p.expiration, error) &&
            optional_string(j, "message_id", p.message_id, error) &&
            optional_number(j, "timestamp", p.timestamp, error) &&
            optional_string(j, "type", p.type, error) &&
            optional_string(j, "user_id", p.user_id, error) &&
            optional_string(j, "app_id", p.app_id, error) &&
            optional_string(j, "cluster_id", p.cluster_id, error);
  if (!ok)
    return std::nullopt;
  if (auto h = j.find("headers"); h != j.end() && !h->is_null()) {
    auto t = table_from_json(*h, error);
    if (!t)
      return std::nullopt;
    p.headers = std::move(*t);
  }
  return p;
}

namespace {

// The length of the well-formed UTF-8 sequence at s[i] (Unicode 3.9 Table 3-7: no overlong
// forms, no surrogates, nothing past U+10FFFF, as Prometheus and JSON parsers check), or 0.
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = at(0);
  if (c < 0x80)
    return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf;  // the second byte's range
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    lo = c == 0xe0 ? 0xa0 : 0x80;
    hi = c == 0xed ? 0x9f : 0xbf;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    lo = c == 0xf0 ? 0x90 : 0x80;
    hi = c == 0xf4 ? 0x8f : 0xbf;
  } else {
    return 0;
  }
  if (i + n > s.size() || at(1) < lo || at(1) > hi)
    return 0;
  for (size_t k = 2; k < n; ++k)
    if ((at(k) >> 6) != 0x2)
      return 0;
  return n;
}

}  // namespace

bool valid_utf8(std::string_view s) {
  for (size_t i = 0, n; i < s.size(); i += n)
    if ((n = utf8_sequence(s, i)) == 0)
      return false;
  return true;
}

std::string utf8_or_replaced(std::string_view s) {
  if (valid_utf8(s))
    return std::string{s};
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    if (size_t n = utf8_sequence(s, i)) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xef\xbf\xbd";  // U+FFFD for each octet that starts no valid sequence
      ++i;
    }
  }
  return out;
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace warren::mgmt
