// CC and BCC headers (see header_routes.hpp).
#include "protocol/amqp091/header_routes.hpp"

#include <cstdint>
#include <iterator>
#include <variant>

namespace warren::amqp {

bool may_have_header_routes(std::string_view headers_raw) {
  // A key is a short string: its length byte, then its bytes.
  return headers_raw.find(std::string_view{"\x02" "CC", 3}) != std::string_view::npos ||
         headers_raw.find(std::string_view{"\x03" "BCC", 4}) != std::string_view::npos;
}

const char* type_name(const field_value& v) {
  static constexpr const char* names[] = {
    "void",   "bool",  "byte",    "unsignedbyte", "short",  "unsignedshort",
    "signedint", "unsignedint", "long", "float", "double", "decimal",
    "longstr", "binary", "timestamp", "table", "array"};
  static_assert(std::size(names) == std::variant_size_v<field_value::storage>);
  return names[v.v.index()];
}

header_routes read_header_routes(const field_table& headers) {
  header_routes out;
  for (const char* name : {"CC", "BCC"}) {
    auto v = find_field(headers, name);
    if (!v)
      continue;
    auto array = std::get_if<field_array>(&v->v);
    if (!array) {
      out.error = std::string{"{unacceptable_type_in_header,\""} + name + "\"," + type_name(*v) +
                  "}";
      return out;
    }
    out.has_bcc |= name[0] == 'B';
    for (auto& e : *array)  // elements of other types are passed over, as RabbitMQ does
      if (auto s = std::get_if<std::string>(&e.v))
        out.keys.push_back(*s);
  }
  return out;
}

std::string encode_routes(const std::vector<std::string>& keys) {
  std::string out;
  for (auto& k : keys) {
    auto len = static_cast<uint32_t>(k.size());
    out.append(reinterpret_cast<const char*>(&len), sizeof len);
    out += k;
  }
  return out;
}

}  // namespace warren::amqp
