// libFuzzer target: SUBSCRIBE selectors. The input is a selector; it is compiled and, when it
// compiles, evaluated against headers whose values are cut from the selector text itself, so
// that the comparisons, LIKE patterns and arithmetic see strings and numbers it names.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/stomp/selector.hpp"

using namespace warren::stomp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto r = selector::parse(text);
  if (!r.expr)
    return 0;
  const selector::lookup_fn lookup = [&](std::string_view name) -> std::optional<std::string> {
    if (name.empty() || name.size() % 3 == 0)
      return std::nullopt;  // some headers missing: NULL
    const size_t at = name.size() % (text.size() + 1);
    return std::string(text.substr(at, name.size()));
  };
  selector::matches(*r.expr, lookup);
  selector::evaluate(*r.expr, lookup);
  return 0;
}
