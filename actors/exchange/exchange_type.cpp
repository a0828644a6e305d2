// The registry of exchange types.
#include "actors/exchange/exchange_type.hpp"

namespace warren::exchange {

std::unique_ptr<exchange_type> make_direct();
std::unique_ptr<exchange_type> make_fanout();
std::unique_ptr<exchange_type> make_topic();
std::unique_ptr<exchange_type> make_headers();
std::unique_ptr<exchange_type> make_super_stream();

std::unique_ptr<exchange_type> make_exchange_type(std::string_view type) {
  if (type == "direct")
    return make_direct();
  if (type == "fanout")
    return make_fanout();
  if (type == "topic")
    return make_topic();
  if (type == "headers")
    return make_headers();
  if (type == super_stream_type)
    return make_super_stream();
  return nullptr;
}

bool is_known_type(std::string_view type) {
  return type == "direct" || type == "fanout" || type == "topic" || type == "headers" ||
         type == super_stream_type;
}

}  // namespace warren::exchange
