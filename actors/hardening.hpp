// Defaults every Warren actor installs: an unexpected message or a stray error message is
// logged and dropped. (CAF 0.17's default error handler would make the receiving actor quit,
// so an error answer to a fire-and-forget message could otherwise take down a queue.)
#pragma once

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <string>

#include "actors/messages.hpp"

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

// Fault injection (debug.fault_injection): the actor takes no message for `ms` milliseconds,
// as if it were stuck behind a slow disk, without holding a worker. What arrives meanwhile
// waits in its mailbox (skipped), and is taken in order once the stall ends.
// Until release_mailbox(), the actor takes only what `handlers` match; everything else waits
// in its mailbox (skipped) and is taken in order afterwards.
template <class Self, class... Handlers>
void hold_mailbox(Self* self, Handlers... handlers) {
  self->set_default_handler(caf::skip);
  self->become(caf::keep_behavior, std::move(handlers)...);
}

template <class Self>
void release_mailbox(Self* self, const char* kind) {
  self->unbecome();
  install_defaults(self, kind);
}

template <class Self>
void inject_stall(Self* self, const char* kind, const std::string& what, uint32_t ms) {
  spdlog::warn("fault injection: {} stalls for {} ms", what, ms);
  hold_mailbox(self, [self, kind, what](stall_atom) {
    spdlog::warn("fault injection: {} goes on", what);
    release_mailbox(self, kind);
  });
  self->delayed_send(self, std::chrono::milliseconds(ms), stall_atom::value);
}

// The text of an exception an actor failed with.
inline std::string describe(const std::exception_ptr& eptr) {
  try {
    if (eptr)
      std::rethrow_exception(eptr);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
  }
  return "unknown exception";
}

// An actor that throws is treated as crashed: `on_crash(what)` may tell whoever depends on the
// actor (it runs in the actor's context, state intact), then the actor exits with
// sec::runtime_error and the text, which its supervisor logs and acts on.
template <class F>
void on_crash(caf::scheduled_actor* self, F on_crash_fn) {
  self->set_exception_handler(
    [on_crash_fn](caf::scheduled_actor*, std::exception_ptr& eptr) -> caf::error {
      auto what = describe(eptr);
      on_crash_fn(what);
      return caf::make_error(caf::sec::runtime_error, what);
    });
}

}  // namespace warren
