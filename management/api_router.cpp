// The HTTP entry point: serves the web page and /metrics, authenticates /api requests with
// HTTP basic auth against the registry's users, splits and percent-decodes the path (so that
// the vhost "/" arrives as %2F), and hands the call to the area that owns the path.
#include <algorithm>

#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "actors/resource_alarms.hpp"
#include "management/api.hpp"
#include "management/json_amqp.hpp"
#include "management/web_assets.hpp"
#include "persistence/password_hash.hpp"
#include "protocol/amqp091/constants.hpp"

namespace warren::mgmt {

namespace http = boost::beast::http;

namespace {

net::http_response make_response(const net::http_request& req, unsigned status,
                                 std::string content_type, std::string body) {
  net::http_response res(static_cast<http::status>(status), req.version());
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-cache");
  res.body() = std::move(body);
  return res;
}

// An answer to OPTIONS (200) or a 405, as RabbitMQ's: the methods in an Allow header, no body.
net::http_response methods_response(const net::http_request& req, unsigned status,
                                    std::string_view allow) {
  net::http_response res(static_cast<http::status>(status), req.version());
  res.set(http::field::allow, boost::beast::string_view{allow.data(), allow.size()});
  res.set(http::field::cache_control, "no-cache");
  return res;
}

net::http_response to_http(const net::http_request& req, const reply& r) {
  auto res = make_response(req, r.status, "application/json",
                           r.body ? dump(*r.body) : std::string{});
  // RabbitMQ's realm: clients that answer the challenge per realm (Perl's LWP in the Nagios
  // checks, urllib's HTTPBasicAuthHandler) are set up with this name.
  if (r.status == 401)
    res.set(http::field::www_authenticate, "Basic realm=\"RabbitMQ Management\"");
  if (!r.location.empty())
    res.set(http::field::location, r.location);
  if (!r.attachment.empty())
    res.set(http::field::content_disposition, "attachment; filename=" + r.attachment);
  return res;
}

// "Basic base64(user:password)" -> (user, password).
std::optional<std::pair<std::string, std::string>> basic_credentials(
  const net::http_request& req) {
  auto it = req.find(http::field::authorization);
  if (it == req.end())
    return std::nullopt;
  std::string_view v{it->value().data(), it->value().size()};
  if (v.size() < 6 || (v.substr(0, 6) != "Basic " && v.substr(0, 6) != "basic "))
    return std::nullopt;
  auto decoded = persistence::base64_decode(v.substr(6));
  if (!decoded)
    return std::nullopt;
  auto colon = decoded->find(':');
  if (colon == std::string::npos)
    return std::nullopt;
  return std::make_pair(decoded->substr(0, colon), decoded->substr(colon + 1));
}

reply dispatch(call& c) {
  if (auto r = route_definitions(c))
    return *r;
  if (auto r = route_access(c))
    return *r;
  if (auto r = route_stats(c))
    return *r;
  if (auto r = route_debug(c))
    return *r;
  if (auto r = route_cluster(c))
    return *r;
  if (auto r = route_export(c))
    return *r;
  if (auto r = route_policies(c))
    return *r;
  return not_found();
}

bool has_tag(const std::string& tags, std::string_view tag) {
  auto all = split_tags(tags);
  return std::find(all.begin(), all.end(), tag) != all.end();
}

// /api/vhosts/{vhost}/connections and .../channels: for whoever may see the vhost.
bool per_vhost_lists(const call& c) {
  return c.path.size() == 3 && c.path[0] == "vhosts" &&
         (c.path[2] == "connections" || c.path[2] == "channels");
}

// RabbitMQ's management rules, before any handler runs: the management tags, the areas only
// administrators (or monitors) use, and the vhost named in the path.
std::optional<reply> authorize(const call& c, const std::string& tags) {
  if (!has_tag(tags, "management") && !has_tag(tags, "policymaker") &&
      !has_tag(tags, "monitoring") && !c.administrator)
    return not_authorised("Not management user");
  if (c.path.empty())
    return std::nullopt;
  auto& area = c.path[0];
  bool settings = area == "policies" || area == "operator-policies" || area == "parameters" ||
                  area == "global-parameters";
  // As RabbitMQ 3.10.8 has it: a policymaker sets the policies of the vhosts it may use (the
  // handler checks the vhost) and reads the runtime parameters; operator policies and
  // parameters are changed by administrators alone; the policy lists are open to every
  // management user.
  bool policymaker = has_tag(tags, "policymaker") || c.administrator;
  if (!policymaker && ((area == "policies" && c.method != "GET") ||
                       (area == "parameters" && c.method == "GET")))
    return not_authorised("User not authorised to access object");
  bool admin_only = area == "users" || area == "permissions" || area == "definitions" ||
                    (settings && c.method != "GET" && area != "policies") ||
                    area == "topic-permissions" ||
                    area == "user-limits" || (area == "vhost-limits" && c.method != "GET") ||
                    (area == "vhosts" && (c.method != "GET" || (c.path.size() > 2 &&
                                                                 !per_vhost_lists(c)))) ||
                    (area == "nodes" && c.method != "GET");
  if (admin_only && !c.administrator)
    return not_authorised("Not administrator user");
  if (area == "nodes" && !c.monitor)
    return not_authorised("Not monitor user");
  if (area == "vhosts" && c.path.size() == 2 && !c.sees_vhost(c.path[1]))
    return not_authorised("Not administrator user");
  if (per_vhost_lists(c) && !c.sees_vhost(c.path[1]))
    return not_authorised("User not authorised to access virtual host");
  // (/api/consumers/{vhost} lists nothing of a vhost the user cannot see, as RabbitMQ.)
  bool per_vhost = area == "queues" || area == "exchanges" || area == "bindings" ||
                   area == "aliveness-test";
  if (per_vhost && c.path.size() >= 2 && !c.sees_vhost(c.path[1]))
    return not_authorised("User not authorised to access virtual host");
  return std::nullopt;
}

net::http_response api(const context& ctx, const net::http_request& req, std::string_view path,
                       std::string_view query, bool local_loopback) {
  std::vector<std::string> segments;
  size_t pos = 0;
  while (pos <= path.size()) {
    auto slash = path.find('/', pos);
    auto raw = path.substr(pos, slash == std::string_view::npos ? std::string_view::npos
                                                                 : slash - pos);
    auto seg = percent_decode(raw);
    if (!seg)
      return to_http(req, bad_request("malformed percent-encoding in the path"));
    segments.push_back(std::move(*seg));
    if (slash == std::string_view::npos)
      break;
    pos = slash + 1;
  }
  while (!segments.empty() && segments.back().empty())
    segments.pop_back();  // "/api/queues/" is "/api/queues"
  // The method before the credentials, as RabbitMQ: OPTIONS and a method the path does not
  // take need none.
  auto allow = allowed_methods(segments);
  auto verb = req.method_string();
  if (req.method() == http::verb::options)
    return methods_response(req, 200, allow);
  if (!method_allowed(allow, {verb.data(), verb.size()}))
    return methods_response(req, 405, allow);
  // What the management UI asks before anyone logs in: OAuth 2 (UAA) sign-in is off.
  if (segments.size() == 1 && segments[0] == "auth")
    return to_http(req, ok(json{{"enable_uaa", false}, {"uaa_client_id", ""},
                                {"uaa_location", ""}}));
  auto creds = basic_credentials(req);
  caf::scoped_actor self{*ctx.sys};
  std::string error;
  std::optional<login_result> who;
  if (creds)
    who = ask<login_result>(self, ctx.registry(), error, login_atom::value, creds->first,
                            creds->second, local_loopback);
  if (who && who->loopback_only)
    return to_http(req, not_authorised("User can only log in via localhost"));
  if (!who || !who->ok)
    return to_http(req, not_authorised("Login failed"));
  std::string reason;
  if (auto it = req.find("X-Reason"); it != req.end())
    reason.assign(it->value().data(), it->value().size());
  // HEAD is GET without the body (the HTTP server drops it).
  std::string method = req.method() == http::verb::head ? std::string{"GET"}
                                                        : std::string(verb.data(), verb.size());
  bool administrator = has_tag(who->tags, "administrator");
  call c{ctx,
         std::move(method),
         std::move(segments),
         std::string{query},
         req.body(),
         who->user,
         std::move(reason),
         self,
         administrator,
         administrator || has_tag(who->tags, "monitoring"),
         {}};
  if (auto perms = ask<std::vector<permission_info>>(self, ctx.registry(), error,
                                                     list_atom::value, permission_atom::value))
    for (auto& p : *perms)
      if (p.user == c.user)
        c.permissions.emplace(p.vhost, p);
  if (auto refused = authorize(c, who->tags))
    return to_http(req, *refused);
  try {
    auto r = dispatch(c);
    if (r.status == 405)
      return methods_response(req, 405, allow);
    if (c.method == "GET" && r.status == 200 && r.body)
      if (auto bad = shape_answer(c.query, *r.body, c.path.empty() || c.path[0] != "users"))
        r = std::move(*bad);
    return to_http(req, r);
  } catch (const bad_request_error& e) {
    return to_http(req, bad_request(e.what()));
  } catch (const json::exception& e) {
    return to_http(req, bad_request(e.what()));
  }
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s, bool form) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (form && s[i] == '+') {
      out.push_back(' ');
      continue;
    }
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    int hi = -1, lo = -1;
    if (i + 2 < s.size()) {
      hi = hex(s[i + 1]);
      lo = hex(s[i + 2]);
    }
    if (hi < 0 || lo < 0) {
      if (!form)
        return std::nullopt;
      out.push_back(s[i]);
      continue;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

reply sub_call(call& c, std::string method, std::vector<std::string> path, const json& body,
               bool as_administrator) {
  std::string text = body.is_null() ? std::string{} : dump(body);
  call sub{c.ctx,      std::move(method), std::move(path), std::string{},  text,
           c.user,     std::string{},     c.self,          c.administrator, c.monitor,
           c.permissions};
  if (as_administrator && sub.path.size() > 1)
    sub.permissions[sub.path[1]] = permission_info{c.user, sub.path[1], ".*", ".*", ".*"};
  return dispatch(sub);
}

bool call::sees_vhost(const std::string& vhost) const {
  return administrator || permissions.count(vhost);
}

access::vhost_permissions call::permissions_in(const std::string& vhost) const {
  auto it = permissions.find(vhost);
  if (it == permissions.end())
    return {};
  auto& p = it->second;
  return access::vhost_permissions{p.configure, p.write, p.read};
}

bool call::allows(access::perm p, access::kind k, const std::string& vhost,
                  const std::string& name) const {
  return permissions_in(vhost).allows(p, k, name);
}

std::optional<reply> call::refuse_unless(access::perm p, access::kind k, const std::string& vhost,
                                         const std::string& name) const {
  if (allows(p, k, vhost, name))
    return std::nullopt;
  return not_authorised("Access refused.");
}

json call::parsed_body() const {
  if (body.empty())
    return json::object();
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())  // RabbitMQ's reason for both
    throw bad_request_error{"not_json"};
  return j;
}

bool body_bool(const json& body, const char* key, bool fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null())
    return fallback;
  if (it->is_boolean())
    return it->get<bool>();
  if (it->is_string() && (*it == "true" || *it == "false"))
    return *it == "true";
  throw bad_request_error{std::string{key} + " must be true or false"};
}

int64_t body_int(const json& body, const char* key, int64_t fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null())
    return fallback;
  if (it->is_number_integer() && !(it->is_number_unsigned() &&
                                    it->get<uint64_t>() > uint64_t(INT64_MAX)))
    return it->get<int64_t>();
  if (it->is_string())
    if (auto v = parse_int(it->get_ref<const std::string&>()))
      return *v;
  throw bad_request_error{std::string{key} + " must be an integer"};
}

reply ok(json body) { return reply{200, std::move(body), {}, {}}; }
reply no_content() { return reply{204, std::nullopt, {}, {}}; }
reply created() { return reply{201, std::nullopt, {}, {}}; }

reply not_authorised(std::string reason) {
  return error_reply(401, "not_authorised", std::move(reason));
}

reply error_reply(unsigned status, std::string error, std::string reason) {
  return reply{status, json{{"error", std::move(error)}, {"reason", std::move(reason)}}, {}, {}};
}

reply not_found(std::string reason) {
  return error_reply(404, "Object Not Found", std::move(reason));
}
reply bad_request(std::string reason) { return error_reply(400, "bad_request", std::move(reason)); }
reply method_not_allowed() {
  return error_reply(405, "Method Not Allowed", "the method is not allowed on this resource");
}

reply from_amqp(uint16_t code, const std::string& text) {
  // "PRECONDITION_FAILED - inequivalent arg ..." -> "inequivalent arg ..."
  auto dash = text.find(" - ");
  std::string reason = dash == std::string::npos ? text : text.substr(dash + 3);
  switch (code) {
    case amqp::not_found:
      return not_found(reason);
    case amqp::access_refused:  // (RabbitMQ's API answers every refusal so)
      return not_authorised("Access refused.");
    default:
      return bad_request(reason);
  }
}

json rate(double r) { return json{{"rate", r}}; }

void refresh_stats(call& c, const caf::actor& target) {
  if (c.ctx.collector && target)
    caf::send_as(c.ctx.collector, target, report_atom::value);
}

std::string percent_encode(std::string_view s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

std::string connection_name(const metrics::connection_stats& s) {
  return s.peer + " -> " + s.local;
}

std::string host_of(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  return colon == std::string::npos ? host_port : host_port.substr(0, colon);
}

uint16_t port_of(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos)
    return 0;
  try {
    return static_cast<uint16_t>(std::stoul(host_port.substr(colon + 1)));
  } catch (...) {
    return 0;
  }
}

net::http_response handle_http(const context& ctx, const net::http_request& req,
                               bool local_loopback) {
  std::string_view target{req.target().data(), req.target().size()};
  auto q = target.find('?');
  auto path = target.substr(0, q);
  auto query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  bool get = req.method() == http::verb::get || req.method() == http::verb::head;
  if (path == "/api" || path.rfind("/api/", 0) == 0)
    return api(ctx, req, path.size() > 5 ? path.substr(5) : std::string_view{}, query,
               local_loopback);
  if (req.method() == http::verb::options)  // (the page and /metrics)
    return methods_response(req, 200, read_only);
  if (path == "/metrics") {
    if (!get)
      return methods_response(req, 405, read_only);
    auto snap = ctx.stats->get();
    std::optional<metrics::alarm_gauges> alarms;
    auto exporter = ctx.exporter;
    {
      caf::scoped_actor self{*ctx.sys};
      std::string error;
      if (auto a = ask<alarm_status>(self, current_alarms(*ctx.sys), error, get_atom::value))
        alarms = metrics::alarm_gauges{a->memory, a->disk, a->memory_limit, a->disk_free_limit};
      exporter.cluster = cluster_name(ctx, self);
    }
    return make_response(req, 200, "text/plain; version=0.0.4; charset=utf-8",
                         metrics::render_metrics(*snap, exporter, alarms));
  }
  if (get) {
    if (auto asset = find_web_asset(path == "/" ? "/index.html" : path))
      return make_response(req, 200, std::string{asset->content_type}, std::string{asset->data});
  }
  return to_http(req, not_found());
}

}  // namespace warren::mgmt
