// The reply to one HTTP health-check request, parsed from bytes fed in
// whatever pieces the socket delivers them (RFC 9112). Pure: no sockets, no
// clock, no logging; health/checker.cpp feeds it, the unit tests and
// fuzz/fuzz_http_check_reply.cpp call the very same code.
//
// Why not Beast's parser: Boost 1.81's basic_parser asserts (debug builds)
// when a final chunk followed by a trailer arrives in pieces
// (fuzz/seeds/http_check_reply/beast-chunk-trailer-assert.http); release
// builds return an error there. A check reply is small and its grammar
// narrow (status line, fields, one of three body framings), so this parser
// is ours, bounded, and tested byte by byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace health {

struct HttpReplyLimits {
  // Patroni's replies are a few hundred bytes of JSON; the limits only bound
  // memory. The header limit covers the status line and the fields (each
  // interim 1xx reply and the chunked trailer get their own budget).
  std::size_t header = 8 * 1024;
  // Body bytes kept. A longer body still counts (the status line decides):
  // the reply is complete as soon as the limit is passed, body_truncated()
  // says so, and the checker drains the rest without keeping it.
  std::size_t body = 64 * 1024;
};

class HttpReplyParser {
 public:
  enum class State { need_more, complete, malformed };

  // `head_request`: the request was HEAD, so the reply has no body whatever
  // its fields say (RFC 9110 section 9.3.2).
  explicit HttpReplyParser(bool head_request = false, HttpReplyLimits limits = {});

  // The next bytes from the server. Returns the state after them; bytes fed
  // once the reply is complete or malformed are ignored (we sent
  // `Connection: close`, the server closes next).
  State feed(std::string_view bytes);
  // The server closed the connection: ends a body delimited by the close
  // (RFC 9112 section 6.3 rule 8); anything else unfinished is malformed.
  State finish();

  State state() const { return state_; }
  bool complete() const { return state_ == State::complete; }
  // Nothing at all was received (a close before any byte is a layer-4
  // problem, not a malformed reply).
  bool nothing_received() const { return received_ == 0; }
  // The final status line and fields have been read.
  bool headers_done() const { return headers_done_; }
  // The final status (interim 1xx replies are skipped); 0 before it is read.
  unsigned status() const { return status_; }
  unsigned version_minor() const { return minor_; }
  const std::string& body() const { return body_; }
  bool body_truncated() const { return truncated_; }
  // Why the reply is malformed ("bad status line", ...); empty otherwise.
  const std::string& error() const { return error_; }

 private:
  enum class Phase {
    status_line,
    fields,
    body_length,     // Content-Length bytes
    body_close,      // until the server closes
    chunk_size,
    chunk_data,
    chunk_data_end,  // the CRLF after a chunk's data
    trailer,
    done,
  };

  // Returns false once the reply is complete or malformed.
  bool on_line(std::string_view line);
  bool on_status_line(std::string_view line);
  bool on_field_line(std::string_view line);
  bool on_fields_end();
  bool on_chunk_size_line(std::string_view line);
  bool on_trailer_line(std::string_view line);
  void take_body(std::string_view data);
  void fail(std::string why);
  void done();

  bool head_request_;
  HttpReplyLimits limits_;
  State state_ = State::need_more;
  Phase phase_ = Phase::status_line;
  std::string line_;              // the line being assembled
  std::size_t header_bytes_ = 0;  // of the current header section
  uint64_t received_ = 0;
  bool headers_done_ = false;
  unsigned status_ = 0, minor_ = 0;
  // Framing from the fields.
  bool chunked_ = false, other_coding_ = false, have_length_ = false;
  uint64_t length_ = 0;     // Content-Length
  uint64_t remaining_ = 0;  // of the body or the current chunk
  std::string last_field_;  // for obsolete line folding
  std::string body_;
  bool truncated_ = false;
  std::string error_;
};

}  // namespace health
