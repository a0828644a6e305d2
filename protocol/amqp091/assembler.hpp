// Turns a sequence of frames on one connection into commands (AMQP 0-9-1 §4.2.6): a method
// frame, and for content-bearing methods (basic.publish) the header frame and body frames that
// must follow on the same channel. Content frames for different channels may interleave; on one
// channel anything out of order is 505 UNEXPECTED_FRAME. Pure: no I/O, no actors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/amqp091/frame.hpp"
#include "protocol/amqp091/methods.hpp"

namespace warren::amqp {

struct command {
  uint16_t channel = 0;
  method m;
  bool has_content = false;
  std::string properties;  // raw property bytes (flags + list) from the header frame
  std::string body;
};

enum class assemble_status {
  none,       // frame consumed, no command complete yet (or a heartbeat on channel 0)
  command,    // `out` holds a complete command
  error,      // connection error: see error_code / error_text, and class/method ids if known
};

class assembler {
public:
  // body_limit: largest accepted body size (checked before allocating).
  explicit assembler(uint64_t body_limit = 128ull * 1024 * 1024) : body_limit_(body_limit) {}

  assemble_status feed(const frame_view& f, command& out);

  uint16_t error_code() const { return error_code_; }
  const std::string& error_text() const { return error_text_; }
  uint16_t error_class_id() const { return error_class_; }
  uint16_t error_method_id() const { return error_method_; }

private:
  struct pending;
  // Channels with a content-bearing method waiting for header/body frames. Few at a time.
  struct slot {
    // User-provided: emplace_back() would otherwise zero all of it (a variant of every
    // method) before running the member initializers, on every content-bearing method.
    slot() {}
    uint16_t channel = 0;
    bool header_seen = false;
    uint64_t body_size = 0;
    command cmd;
  };
  std::vector<slot> slots_;
  uint64_t body_limit_;
  uint16_t error_code_ = 0;
  std::string error_text_;
  uint16_t error_class_ = 0;
  uint16_t error_method_ = 0;

  assemble_status fail(uint16_t code, std::string text, uint16_t cls = 0, uint16_t mth = 0);
};

}  // namespace warren::amqp
