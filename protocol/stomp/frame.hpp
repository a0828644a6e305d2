// STOMP frames (STOMP 1.0, 1.1 and 1.2): the frame type, an incremental parser for a
// contiguous input, the encoder, and header value escaping (STOMP 1.2 Value Encoding).
// The grammar the parser accepts is at the top of frame.cpp. Limits are checked before
// anything is buffered: the parser keeps only offsets between calls and allocates nothing
// until a whole frame is in the input.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warren::stomp {

enum class version { v1_0, v1_1, v1_2 };

struct frame {
  std::string command;
  std::vector<std::pair<std::string, std::string>> headers;  // wire order, repeats kept
  std::string body;

  // The first occurrence of `name`, or nullptr (STOMP 1.2 Repeated Header Entries: the
  // first one wins).
  const std::string* header(std::string_view name) const;
  // Replaces the value of the first occurrence and drops later repeats, or appends.
  void set(std::string name, std::string value);
};

struct limits {
  size_t max_frame_bytes = 16 << 20;  // command line through the terminating NUL
  size_t max_headers = 1000;
  size_t max_header_line = 64 << 10;  // one command or header line, EOL excluded
};

enum class parse_status { frame, heartbeat, need_more, error };

class parser {
 public:
  explicit parser(limits l = {});

  // Escaping rules depend on the negotiated version: none for 1.0; CONNECT, STOMP and
  // CONNECTED headers are never unescaped. The parser starts at 1.0.
  void set_version(version v);
  version get_version() const { return version_; }

  // Parses from the front of `in`; `consumed` is the number of bytes used.
  //  frame:     `out` holds the frame; drop `consumed` bytes before the next call.
  //  heartbeat: a lone EOL (LF or CRLF) between frames; drop `consumed` bytes.
  //  need_more: `consumed` is 0. Call again with the same bytes at the front and more
  //             appended: the parser resumes where it stopped rather than rescanning.
  //  error:     `consumed` is 0 and error() says why; the stream cannot be resynchronised.
  parse_status parse(std::string_view in, size_t& consumed, frame& out);

  // Human-readable reason for the last error, for the ERROR frame's message header.
  const std::string& error() const { return error_; }

  // Forgets a partly scanned frame (for a caller that discards its input buffer).
  void reset();

 private:
  enum class stage { start, headers, body };

  parse_status fail(std::string message);
  parse_status build(std::string_view in, size_t end, frame& out, size_t& consumed);
  bool escaped(std::string_view command) const;

  limits limits_;
  version version_ = version::v1_0;
  std::string error_;

  // Scan state of a partly received frame, as offsets into the caller's input.
  stage stage_ = stage::start;
  size_t pos_ = 0;            // next byte to scan
  size_t command_end_ = 0;    // offset of the command line's EOL
  size_t line_start_ = 0;     // start of the header line being scanned
  size_t headers_ = 0;        // header lines seen
  size_t body_start_ = 0;
  bool has_length_ = false;
  size_t content_length_ = 0;
};

// Encodes `f` for version `v`. Headers are escaped for 1.1 and 1.2 (except in CONNECT,
// STOMP and CONNECTED). Any content-length header in `f` is replaced by the body's real
// size; one is always written when the body is non-empty, so bodies may hold NULs. The frame
// ends with NUL and LF (frame_end); a parser takes the LF as a heart-beat.
inline constexpr std::string_view frame_end{"\0\n", 2};
std::string encode(const frame& f, version v);
// The same, appended to `out` (a connection's write buffer: no string per frame).
void encode_to(std::string& out, const frame& f, version v);

// STOMP 1.2 Value Encoding. 1.1 escapes LF, ':' and '\'; 1.2 also CR; 1.0 has no escapes.
// Octets a version cannot carry in a header (NUL always; CR and LF in 1.0; CR in 1.1) are
// dropped, so a value can never end a header line or the frame early.
std::string escape(std::string_view in, version v);
// Reverses escape(); false on an undefined escape sequence or a trailing backslash.
bool unescape(std::string_view in, version v, std::string& out);

}  // namespace warren::stomp
