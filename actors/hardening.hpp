// Defaults every Warren actor installs: an unexpected message or a stray error message is
// logged and dropped. (CAF 0.17's default error handler would make the receiving actor quit,
// so an error answer to a fire-and-forget message could otherwise take down a queue.)
#pragma once

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace warren {

inline void install_defaults(caf::scheduled_actor* self, const char* kind) {
  self->set_default_handler(
    [kind](caf::scheduled_actor*, caf::message_view& x) -> caf::result<caf::message> {
      auto msg = x.copy_content_to_message();
      std::string what = msg.size() > 0 && msg.match_element<caf::atom_value>(0)
                           ? caf::to_string(msg.get_as<caf::atom_value>(0))
                           : "(no atom)";
      spdlog::error("{} actor: dropped unexpected message {} with {} element(s)", kind, what,
                    msg.size());
      return caf::sec::unexpected_message;
    });
  self->set_error_handler([kind](caf::scheduled_actor* a, caf::error& err) {
    spdlog::debug("{} actor: ignored error message {}", kind, a->home_system().render(err));
  });
}

}  // namespace warren
