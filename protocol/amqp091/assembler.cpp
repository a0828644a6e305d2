// Command assembly (AMQP 0-9-1 §4.2.6): method frames, and for content-bearing methods the
// content header frame and body frames that follow on the same channel, become commands.
// Anything out of order on a channel is a connection error, reported with RabbitMQ's reply
// codes and texts:
//   unknown class/method ......................... 540 NOT_IMPLEMENTED
//   undecodable method arguments / content header  502 SYNTAX_ERROR
//   frame not expected on its channel ............ 505 UNEXPECTED_FRAME
//   non-connection method on channel 0, or a
//   connection method on another channel ......... 503 COMMAND_INVALID
//   heartbeat on a channel other than 0 .......... 501 FRAME_ERROR
//   body larger than announced ................... 501 FRAME_ERROR
//   announced body size over body_limit .......... 501 FRAME_ERROR. A hard error on purpose:
//     the header is refused before its body frames arrive, and the frames still in flight
//     could not be skipped reliably by a channel-level (soft) error.
#include "protocol/amqp091/assembler.hpp"

#include <algorithm>

#include "protocol/amqp091/constants.hpp"
#include "protocol/amqp091/properties.hpp"

namespace warren::amqp {

namespace {

constexpr uint16_t connection_class = 10;
constexpr uint16_t basic_class = 60;
// Bodies are buffered as they arrive; a header alone only reserves up to this much, so that
// announced-but-unsent bodies on many channels cannot pin memory.
constexpr uint64_t reserve_cap = 1u << 20;

constexpr const char* expected_method =
    "UNEXPECTED_FRAME - expected method frame, got non method frame instead";
constexpr const char* expected_header =
    "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame "
    "instead";
constexpr const char* expected_body =
    "UNEXPECTED_FRAME - expected content body, got non content body frame instead";

}  // namespace

assemble_status assembler::fail(uint16_t code, std::string text, uint16_t cls, uint16_t mth) {
  error_code_ = code;
  error_text_ = std::move(text);
  error_class_ = cls;
  error_method_ = mth;
  return assemble_status::error;
}

assemble_status assembler::feed(const frame_view& f, command& out) {
  const auto it = std::find_if(slots_.begin(), slots_.end(),
                               [&](const slot& s) { return s.channel == f.channel; });
  slot* pending = it == slots_.end() ? nullptr : &*it;
  const auto complete = [&](slot& s) {
    out = std::move(s.cmd);
    if (&s != &slots_.back()) s = std::move(slots_.back());
    slots_.pop_back();
    return assemble_status::command;
  };

  switch (f.type) {
    case frame_type::method: {
      uint16_t cls = 0, mth = 0;
      switch (decode_method(f.payload, out.m, cls, mth)) {
        case decode_status::ok: break;
        case decode_status::unknown_method:
          return fail(not_implemented,
                      "NOT_IMPLEMENTED - unknown method (class " + std::to_string(cls) +
                          ", method " + std::to_string(mth) + ")",
                      cls, mth);
        case decode_status::malformed:
          return fail(syntax_error,
                      "SYNTAX_ERROR - cannot decode arguments of " +
                          std::string(method_name(cls, mth)),
                      cls, mth);
      }
      if (pending)  // RabbitMQ names the method still waiting for its content
        return fail(unexpected_frame, pending->header_seen ? expected_body : expected_header,
                    method_class_id(pending->cmd.m), method_method_id(pending->cmd.m));
      if (f.channel == 0 && cls != connection_class)
        return fail(command_invalid,
                    "COMMAND_INVALID - " + std::string(method_name(cls, mth)) +
                        " is not allowed on channel 0",
                    cls, mth);
      if (f.channel != 0 && cls == connection_class)
        return fail(command_invalid,
                    "COMMAND_INVALID - " + std::string(method_name(cls, mth)) +
                        " is only allowed on channel 0, got it on channel " +
                        std::to_string(f.channel),
                    cls, mth);
      out.channel = f.channel;
      out.properties.clear();
      out.body.clear();
      if (!method_has_content(out.m)) {
        out.has_content = false;
        return assemble_status::command;
      }
      slot& s = slots_.emplace_back();
      s.channel = f.channel;
      s.cmd.channel = f.channel;
      s.cmd.m = std::move(out.m);
      s.cmd.has_content = true;
      return assemble_status::none;
    }

    case frame_type::header: {
      if (!pending) return fail(unexpected_frame, expected_method);
      const uint16_t cls = method_class_id(pending->cmd.m), mth = method_method_id(pending->cmd.m);
      if (pending->header_seen) return fail(unexpected_frame, expected_body, cls, mth);
      content_header h;
      if (!decode_content_header(f.payload, h))
        return fail(syntax_error, "SYNTAX_ERROR - malformed content header frame", cls, mth);
      if (h.class_id != basic_class)
        return fail(unexpected_frame,
                    "UNEXPECTED_FRAME - expected content header for class 60, got one for "
                    "class " + std::to_string(h.class_id) + " instead",
                    cls, mth);
      property_scan scan;
      if (!scan_properties(h.properties, scan))
        return fail(syntax_error, "SYNTAX_ERROR - malformed content properties", cls, mth);
      if (h.body_size > body_limit_)
        return fail(frame_error,
                    "FRAME_ERROR - message size " + std::to_string(h.body_size) +
                        " is larger than configured max size " + std::to_string(body_limit_),
                    cls, mth);
      pending->header_seen = true;
      pending->body_size = h.body_size;
      pending->cmd.properties.assign(h.properties);
      if (h.body_size == 0) return complete(*pending);
      pending->cmd.body.reserve(static_cast<size_t>(std::min(h.body_size, reserve_cap)));
      return assemble_status::none;
    }

    case frame_type::body: {
      if (!pending) return fail(unexpected_frame, expected_method);
      const uint16_t cls = method_class_id(pending->cmd.m), mth = method_method_id(pending->cmd.m);
      if (!pending->header_seen) return fail(unexpected_frame, expected_header, cls, mth);
      std::string& body = pending->cmd.body;
      if (f.payload.size() > pending->body_size - body.size())
        return fail(frame_error,
                    "FRAME_ERROR - content body exceeds the announced size of " +
                        std::to_string(pending->body_size) + " bytes",
                    cls, mth);
      body.append(f.payload);
      if (body.size() == pending->body_size) return complete(*pending);
      return assemble_status::none;
    }

    case frame_type::heartbeat:
      if (f.channel != 0)
        return fail(frame_error,
                    "FRAME_ERROR - heartbeat frame on channel " + std::to_string(f.channel));
      return assemble_status::none;
  }
  return fail(frame_error, "FRAME_ERROR - unknown frame type");
}

}  // namespace warren::amqp
