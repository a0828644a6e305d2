#include "supervisor/connection_supervisor.hpp"

#include <unordered_set>

#include "actors/hardening.hpp"
#include "actors/messages.hpp"

namespace warren {

namespace {

struct conn_sup_state {
  std::unordered_set<caf::actor_addr> live;
  std::vector<caf::response_promise> waiting;
  static inline const char* name = "connection_supervisor";
};

void answer_if_done(caf::stateful_actor<conn_sup_state>* self) {
  auto& st = self->state;
  if (!st.live.empty())
    return;
  for (auto& rp : st.waiting)
    rp.deliver(true);
  st.waiting.clear();
}

}  // namespace

caf::actor spawn_connection_supervisor(caf::actor_system& sys) {
  auto init = [](caf::stateful_actor<conn_sup_state>* self,
                 std::chrono::seconds grace) -> caf::behavior {
  install_defaults(self, "connection supervisor");
    self->set_down_handler([=](caf::down_msg& dm) {
      self->state.live.erase(dm.source);
      answer_if_done(self);
    });
    return {
      [=](start_atom, caf::actor& conn) {
        self->monitor(conn);
        self->state.live.insert(conn.address());
      },
      [=](shutdown_atom) -> caf::result<bool> {
        auto& st = self->state;
        if (st.live.empty())
          return true;
        for (auto& a : st.live)
          if (auto h = caf::actor_cast<caf::actor>(a))
            self->send(h, shutdown_atom::value);
        st.waiting.push_back(self->make_response_promise());
        // Give clients a moment to answer connection.close, then stop waiting.
        self->delayed_send(self, grace, tick_atom::value);
        return st.waiting.back();
      },
      [=](tick_atom) {
        for (auto& rp : self->state.waiting)
          rp.deliver(true);
        self->state.waiting.clear();
      },
    };
  };
  // Clients get this long to answer connection.close before shutdown goes on without them.
  return sys.spawn(init, std::chrono::seconds(5));
}

}  // namespace warren
