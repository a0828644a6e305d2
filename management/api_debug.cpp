// POST /api/debug/crash/{queue|exchange}/{vhost}/{name}, /api/debug/crash/vhost/{vhost} and
// /api/debug/crash/connection/{name}: fault injection for the supervision tree. The actor is
// made to fail the way an unhandled exception would.
// POST /api/debug/stall/{queue|exchange}/{vhost}/{name} with {"ms": N}: the actor takes no
// message for N milliseconds (at most 60,000) while its mailbox fills, as behind a slow disk.
// Only with debug.fault_injection = true, and only for administrators.
#include <spdlog/spdlog.h>

#include "management/api.hpp"

namespace warren::mgmt {

namespace {

reply crashed(bool found, const std::string& what) {
  if (!found)
    return not_found("no " + what);
  spdlog::warn("fault injection: made {} fail", what);
  return no_content();
}

}  // namespace

std::optional<reply> route_debug(call& c) {
  if (c.path.empty() || c.path[0] != "debug")
    return std::nullopt;
  if (c.path.size() < 2 || (c.path[1] != "crash" && c.path[1] != "stall"))
    return not_found();
  if (c.method != "POST")
    return method_not_allowed();
  if (!c.ctx.fault_injection)
    return error_reply(403, "forbidden",
                       "fault injection is disabled (set debug.fault_injection = true)");
  if (!c.administrator)
    return error_reply(403, "access_refused", "fault injection needs the administrator tag");
  std::string error;
  auto kind = c.path.size() > 2 ? c.path[2] : std::string{};
  if (c.path[1] == "stall") {
    if ((kind != "queue" && kind != "exchange") || c.path.size() != 5)
      return not_found();
    auto body = c.parsed_body();
    uint64_t ms = 1000;
    if (body.is_object() && body.contains("ms")) {
      if (!body["ms"].is_number_unsigned())
        return bad_request("ms: a number of milliseconds");
      ms = body["ms"].get<uint64_t>();
    }
    if (ms > 60000)
      return bad_request("ms: at most 60000");
    caf::atom_value which = kind == "queue" ? caf::atom_value{queue_atom::value}
                                            : caf::atom_value{exchange_atom::value};
    auto r = ask<bool>(c.self, c.ctx.registry(), error, stall_atom::value, which, c.path[3],
                       c.path[4], static_cast<uint32_t>(ms));
    if (!r || !*r)
      return not_found("no " + kind + " '" + c.path[4] + "' in vhost '" + c.path[3] + "'");
    return no_content();
  }
  if ((kind == "queue" || kind == "exchange") && c.path.size() == 5) {
    auto& vhost = c.path[3];
    auto& name = c.path[4];
    caf::atom_value which = kind == "queue" ? caf::atom_value{queue_atom::value}
                                            : caf::atom_value{exchange_atom::value};
    auto r = ask<bool>(c.self, c.ctx.registry(), error, crash_atom::value, which, vhost, name);
    return crashed(r && *r, kind + " '" + name + "' in vhost '" + vhost + "'");
  }
  if (kind == "vhost" && c.path.size() == 4) {
    auto r = ask<bool>(c.self, c.ctx.registry(), error, crash_atom::value, vhost_atom::value,
                       c.path[3]);
    return crashed(r && *r, "vhost '" + c.path[3] + "'");
  }
  if (kind == "connection" && c.path.size() == 4) {
    auto snap = c.ctx.stats->get();
    for (auto& [id, s] : snap->connections) {
      if (connection_name(s->cur) != c.path[3])
        continue;
      auto conn = caf::actor_cast<caf::actor>(s->cur.addr);
      if (conn)
        c.self->send(conn, crash_atom::value);
      return crashed(conn != nullptr, "connection '" + c.path[3] + "'");
    }
    return crashed(false, "connection '" + c.path[3] + "'");
  }
  return not_found();
}

}  // namespace warren::mgmt
