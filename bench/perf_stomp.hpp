// Client side of one STOMP 1.2 connection for warren-perf, on a tcp_stream: CONNECT and
// CONNECTED, frames scanned in place in the input buffer (no copies, no allocation), a
// bounded wait for a RECEIPT during set-up, ERROR handling, and DISCONNECT. Outgoing control
// frames are encoded with the project's STOMP codec (protocol/stomp). Owned and used by one
// thread at a time.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "bench/perf_options.hpp"
#include "bench/perf_socket.hpp"
#include "protocol/stomp/frame.hpp"

namespace warren::perf {

// A frame as scanned: views into the input buffer, valid until the next read. Header values
// are raw (still escaped), so `ack` can be echoed as it came.
struct stomp_view {
  std::string_view command;
  std::string_view ack;         // MESSAGE: the ack header
  std::string_view receipt_id;  // RECEIPT
  std::string_view message;     // ERROR: the message header
  std::string_view body;
};

enum class scan_status { frame, need_more, error };

// Scans the frame at the front of `in`, after any heart-beat EOLs. frame: `f` holds it and
// `used` bytes belong to it. need_more: `used` heart-beat bytes may be dropped. error: the
// input is not STOMP, or a frame without content-length exceeds `max_frame`.
scan_status scan_stomp_frame(std::string_view in, size_t max_frame, stomp_view& f, size_t& used);

class stomp_connection : public tcp_stream {
public:
  explicit stomp_connection(std::string name);

  // Connects and sends CONNECT (1.2, login, passcode, host = vhost, heart-beat 0,0); waits
  // (bounded) for CONNECTED. Blocks.
  bool open(const options& o);
  // Appends `f` encoded for STOMP 1.2 to the output.
  void send(const stomp::frame& f);
  // Sends `f` with a receipt header and waits (bounded) for its RECEIPT. Also returns true
  // when a MESSAGE comes first (a subscription is evidently active): it stays in the input.
  bool call(stomp::frame f);

  // The next complete frame. False when more bytes are needed, or on an ERROR frame or
  // malformed input (then failed(), with the reason in error()).
  bool next_frame(stomp_view& f);

  // Appends DISCONNECT with a receipt and returns the receipt id: a fence (the broker
  // answers it after every earlier frame). close() then only closes the socket.
  std::string send_disconnect();
  // DISCONNECT with a receipt, a bounded wait for it (discarding input), then the socket
  // is closed. Without the wait when the connection already failed.
  void close(int timeout_ms = 2000) override;

  bool closed_by_broker() const { return closed_by_broker_; }
  size_t max_frame() const { return max_frame_; }

private:
  bool wait_for_receipt(std::string_view id, int timeout_ms);

  size_t max_frame_ = 0;
  bool closed_by_broker_ = false;
  bool disconnect_sent_ = false;
  unsigned receipts_ = 0;
};

}  // namespace warren::perf
