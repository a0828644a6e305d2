// STOMP frame parser and encoder. The parser accepts this grammar (STOMP 1.2 Augmented BNF,
// relaxed so that one parser serves 1.0, 1.1 and 1.2):
//
//   stream        = *( heart-beat | frame )
//   heart-beat    = EOL                                  ; returned as parse_status::heartbeat
//   EOL           = [CR] LF                              ; CRLF accepted for every version
//   frame         = command EOL *( header EOL ) EOL body NULL
//   command       = 1*<octet 0x21-0x7E>                  ; unknown commands are returned too
//   header        = header-name ":" header-value         ; split at the first ':'
//   header-name   = 1*<any octet except NUL, LF, ":">    ; and except CR in 1.2
//   header-value  = *<any octet except NUL, LF>          ; and except CR in 1.2
//   body          = <content-length octets>              ; when a content-length header is
//                 | *<any octet except NULL>             ; present (first one wins), else up to
//                                                        ; the first NUL
//
// Headers of 1.1 and 1.2 frames other than CONNECT, STOMP and CONNECTED are unescaped
// (STOMP 1.2 Value Encoding: \r \n \c \\; 1.1 lacks \r); an undefined escape is an error.
// EOLs after a frame's NUL are left in the input and come back as heart-beats.
#include "protocol/stomp/frame.hpp"

#include <algorithm>
#include <cstring>

namespace warren::stomp {

namespace {

constexpr std::string_view content_length_name = "content-length";

bool is_unescaped_command(std::string_view command) {
  return command == "CONNECT" || command == "STOMP" || command == "CONNECTED";
}

// True when every backslash in `s` starts an escape sequence defined for `v`.
bool valid_escapes(std::string_view s, version v) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') continue;
    if (++i == s.size()) return false;
    const char c = s[i];
    if (c == 'n' || c == 'c' || c == '\\') continue;
    if (c == 'r' && v == version::v1_2) continue;
    return false;
  }
  return true;
}

// Appends `in` to `out` with the escaping of `v`; `escaping` false means the 1.0 rules
// (nothing escaped, unrepresentable octets dropped).
void append_header_text(std::string& out, std::string_view in, version v, bool escaping) {
  // Most values have nothing to escape: copy the run before the first special octet at once.
  size_t plain = 0;
  while (plain < in.size()) {
    const char c = in[plain];
    if (c == '\0' || c == '\n' || c == '\r' || c == ':' || c == '\\') break;
    ++plain;
  }
  out.append(in.data(), plain);
  in.remove_prefix(plain);
  for (const char c : in) {
    switch (c) {
      case '\0':
        break;
      case '\n':
        if (escaping) out += "\\n";
        break;
      case '\r':
        if (escaping && v == version::v1_2) out += "\\r";
        break;
      case ':':
        if (escaping) {
          out += "\\c";
        } else {
          out += c;
        }
        break;
      case '\\':
        if (escaping) {
          out += "\\\\";
        } else {
          out += c;
        }
        break;
      default:
        out += c;
    }
  }
}

void append_decimal(std::string& out, size_t n) {
  char buf[24];
  size_t i = sizeof buf;
  do {
    buf[--i] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  out.append(buf + i, sizeof buf - i);
}

std::string describe_octet(char c) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto u = static_cast<unsigned char>(c);
  std::string s = "0x";
  s += hex[u >> 4];
  s += hex[u & 15];
  return s;
}

}  // namespace

const std::string* frame::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return &v;
  }
  return nullptr;
}

void frame::set(std::string name, std::string value) {
  auto it = headers.begin();
  for (; it != headers.end(); ++it) {
    if (it->first == name) break;
  }
  if (it == headers.end()) {
    headers.emplace_back(std::move(name), std::move(value));
    return;
  }
  it->second = std::move(value);
  for (auto later = it + 1; later != headers.end();) {
    if (later->first == it->first) {
      later = headers.erase(later);
    } else {
      ++later;
    }
  }
}

parser::parser(limits l) : limits_(l) {}

void parser::set_version(version v) { version_ = v; }

void parser::reset() {
  stage_ = stage::start;
  pos_ = 0;
  command_end_ = 0;
  line_start_ = 0;
  headers_ = 0;
  body_start_ = 0;
  has_length_ = false;
  content_length_ = 0;
}

parse_status parser::fail(std::string message) {
  error_ = std::move(message);
  reset();
  return parse_status::error;
}

bool parser::escaped(std::string_view command) const {
  return version_ != version::v1_0 && !is_unescaped_command(command);
}

parse_status parser::parse(std::string_view in, size_t& consumed, frame& out) {
  consumed = 0;
  const size_t n = in.size();
  // A caller that did not keep the scanned bytes at the front: start over.
  if (pos_ > n) reset();

  if (stage_ == stage::start) {
    if (pos_ == 0) {
      if (n == 0) return parse_status::need_more;
      if (in[0] == '\n') {
        consumed = 1;
        return parse_status::heartbeat;
      }
      if (in[0] == '\r') {
        if (n < 2) return parse_status::need_more;
        if (in[1] != '\n') return fail("CR not followed by LF before a command");
        consumed = 2;
        return parse_status::heartbeat;
      }
    }
    // The command line: visible ASCII up to the EOL.
    size_t i = pos_;
    for (; i < n; ++i) {
      const char c = in[i];
      if (c == '\n') break;
      if (c == '\r') {
        if (i + 1 == n) break;
        if (in[i + 1] != '\n') return fail("CR not followed by LF in the command line");
        continue;
      }
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x21 || u > 0x7E) return fail("invalid octet " + describe_octet(c) + " in the command");
      if (i + 1 > limits_.max_header_line) {
        return fail("command line longer than " + std::to_string(limits_.max_header_line) + " bytes");
      }
    }
    if (i == n || in[i] != '\n') {
      pos_ = i;
      return parse_status::need_more;
    }
    command_end_ = (i > 0 && in[i - 1] == '\r') ? i - 1 : i;
    pos_ = i + 1;
    line_start_ = pos_;
    if (pos_ + 2 > limits_.max_frame_bytes) {
      return fail("frame larger than " + std::to_string(limits_.max_frame_bytes) + " bytes");
    }
    stage_ = stage::headers;
  }

  if (stage_ == stage::headers) {
    const std::string_view command = in.substr(0, command_end_);
    const bool escaping = escaped(command);
    for (;;) {
      const size_t line_start = line_start_;
      const size_t window_end = std::min(n, line_start + limits_.max_header_line + 2);
      const void* lf = pos_ < window_end ? std::memchr(in.data() + pos_, '\n', window_end - pos_) : nullptr;
      if (lf == nullptr) {
        pos_ = std::max(pos_, window_end);
        if (window_end == line_start + limits_.max_header_line + 2) {
          return fail("header line longer than " + std::to_string(limits_.max_header_line) + " bytes");
        }
        if (pos_ + 2 > limits_.max_frame_bytes) {
          return fail("frame larger than " + std::to_string(limits_.max_frame_bytes) + " bytes");
        }
        return parse_status::need_more;
      }
      const size_t eol = static_cast<size_t>(static_cast<const char*>(lf) - in.data());
      size_t line_end = eol;
      if (line_end > line_start && in[line_end - 1] == '\r') --line_end;
      pos_ = eol + 1;
      line_start_ = pos_;
      if (pos_ + 1 > limits_.max_frame_bytes) {
        return fail("frame larger than " + std::to_string(limits_.max_frame_bytes) + " bytes");
      }
      if (line_end - line_start > limits_.max_header_line) {
        return fail("header line longer than " + std::to_string(limits_.max_header_line) + " bytes");
      }
      if (line_end == line_start) {  // the blank line that ends the headers
        body_start_ = pos_;
        stage_ = stage::body;
        if (has_length_ && body_start_ + content_length_ + 1 > limits_.max_frame_bytes) {
          return fail("frame larger than " + std::to_string(limits_.max_frame_bytes) + " bytes");
        }
        break;
      }
      const std::string_view line = in.substr(line_start, line_end - line_start);
      if (++headers_ > limits_.max_headers) {
        return fail("more than " + std::to_string(limits_.max_headers) + " headers");
      }
      if (line.find('\0') != std::string_view::npos) return fail("NUL in a header line");
      if (version_ == version::v1_2 && line.find('\r') != std::string_view::npos) {
        return fail("CR in a header line");
      }
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) {
        return fail("header line without ':' (header " + std::to_string(headers_) + ")");
      }
      if (colon == 0) return fail("empty header name (header " + std::to_string(headers_) + ")");
      const std::string_view name = line.substr(0, colon);
      const std::string_view value = line.substr(colon + 1);
      if (escaping && (!valid_escapes(name, version_) || !valid_escapes(value, version_))) {
        return fail("undefined escape sequence in header " + std::to_string(headers_));
      }
      if (!has_length_ && name == content_length_name) {
        if (value.empty()) return fail("invalid content-length ''");
        size_t length = 0;
        for (const char c : value) {
          if (c < '0' || c > '9') return fail("invalid content-length");
          length = length * 10 + static_cast<size_t>(c - '0');
          if (length > limits_.max_frame_bytes) {
            return fail("content-length exceeds the frame limit of " +
                        std::to_string(limits_.max_frame_bytes) + " bytes");
          }
        }
        if (pos_ + length + 2 > limits_.max_frame_bytes) {
          return fail("frame larger than " + std::to_string(limits_.max_frame_bytes) + " bytes");
        }
        has_length_ = true;
        content_length_ = length;
      }
    }
  }

  // stage::body
  if (has_length_) {
    const size_t end = body_start_ + content_length_;
    if (n <= end) {
      pos_ = std::max(pos_, std::min(n, end));
      return parse_status::need_more;
    }
    if (in[end] != '\0') {
      return fail("frame not terminated by NUL after content-length " + std::to_string(content_length_) +
                  " bytes");
    }
    return build(in, end, out, consumed);
  }
  const size_t window_end = std::min(n, limits_.max_frame_bytes);
  const void* nul = pos_ < window_end ? std::memchr(in.data() + pos_, '\0', window_end - pos_) : nullptr;
  if (nul == nullptr) {
    pos_ = std::max(pos_, window_end);
    if (window_end == limits_.max_frame_bytes) {
      return fail("frame larger than " + std::to_string(limits_.max_frame_bytes) + " bytes");
    }
    return parse_status::need_more;
  }
  return build(in, static_cast<size_t>(static_cast<const char*>(nul) - in.data()), out, consumed);
}

// Copies the scanned frame ending at the NUL at `end` into `out`.
parse_status parser::build(std::string_view in, size_t end, frame& out, size_t& consumed) {
  out.command.assign(in.data(), command_end_);
  const bool escaping = escaped(out.command);
  out.headers.clear();
  out.headers.reserve(headers_);
  size_t p = command_end_;
  // Skip the command's EOL.
  if (in[p] == '\r') ++p;
  ++p;
  while (p < body_start_) {
    const size_t eol = in.find('\n', p);
    if (eol == std::string_view::npos || eol >= body_start_) return fail("input changed between calls");
    size_t line_end = eol;
    if (line_end > p && in[line_end - 1] == '\r') --line_end;
    if (line_end == p) break;
    const std::string_view line = in.substr(p, line_end - p);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return fail("input changed between calls");
    auto& h = out.headers.emplace_back();
    if (escaping) {
      if (!unescape(line.substr(0, colon), version_, h.first) ||
          !unescape(line.substr(colon + 1), version_, h.second)) {
        return fail("undefined escape sequence");
      }
    } else {
      h.first.assign(line.substr(0, colon));
      h.second.assign(line.substr(colon + 1));
    }
    p = eol + 1;
  }
  out.body.assign(in.data() + body_start_, end - body_start_);
  consumed = end + 1;
  reset();
  return parse_status::frame;
}

std::string encode(const frame& f, version v) {
  std::string out;
  size_t estimate = f.command.size() + f.body.size() + 33;
  for (const auto& [name, value] : f.headers) estimate += name.size() + value.size() + 2;
  out.reserve(estimate);
  encode_to(out, f, v);
  return out;
}

void encode_to(std::string& out, const frame& f, version v) {
  const bool escaping = v != version::v1_0 && !is_unescaped_command(f.command);
  out += f.command;
  out += '\n';
  bool wrote_length = false;
  const auto write_length = [&] {
    out += content_length_name;
    out += ':';
    append_decimal(out, f.body.size());
    out += '\n';
    wrote_length = true;
  };
  for (const auto& [name, value] : f.headers) {
    if (name == content_length_name) {
      if (!wrote_length) write_length();
      continue;
    }
    const size_t line = out.size();
    append_header_text(out, name, v, escaping);
    // A name that cannot be written as it is, once the octets STOMP cannot carry are dropped,
    // is left out: an empty one (the frame would not parse), one with a ':' where nothing is
    // escaped (it would split elsewhere), and one that comes out as content-length ("content-
    // length\0" from an AMQP headers table): the receiver takes the first occurrence, so it
    // would set the body's length and let the body forge frames.
    const std::string_view written{out.data() + line, out.size() - line};
    if (written.empty() || written == content_length_name ||
        (!escaping && written.find(':') != std::string_view::npos)) {
      out.resize(line);
      continue;
    }
    out += ':';
    append_header_text(out, value, v, escaping);
    out += '\n';
  }
  if (!wrote_length && !f.body.empty()) write_length();
  out += '\n';
  out += f.body;
  // NUL and then an EOL, as RabbitMQ and ActiveMQ end every frame: the spec lets EOLs follow
  // the NUL, and PHP's stomp extension reads the two octets after a content-length body as one
  // and drops the frame when the second is not an LF.
  out += frame_end;
}

std::string escape(std::string_view in, version v) {
  std::string out;
  out.reserve(in.size());
  append_header_text(out, in, v, v != version::v1_0);
  return out;
}

bool unescape(std::string_view in, version v, std::string& out) {
  out.clear();
  if (v == version::v1_0) {
    out.assign(in);
    return true;
  }
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i == in.size()) return false;
    switch (in[i]) {
      case 'n':
        out += '\n';
        break;
      case 'c':
        out += ':';
        break;
      case '\\':
        out += '\\';
        break;
      case 'r':
        if (v != version::v1_2) return false;
        out += '\r';
        break;
      default:
        return false;
    }
  }
  return true;
}

}  // namespace warren::stomp
