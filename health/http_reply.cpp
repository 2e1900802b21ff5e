#include "health/http_reply.h"

#include <algorithm>
#include <limits>

namespace health {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// RFC 9110 section 5.6.2 tchar.
bool is_tchar(char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (is_digit(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

// Control characters other than HT are not allowed in field values, reason
// phrases or chunk extensions (RFC 9110 section 5.5); obs-text (>= 0x80) is.
bool has_ctl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// "name: value" (RFC 9112 section 5): no whitespace between name and colon.
bool split_field(std::string_view line, std::string_view& name, std::string_view& value) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  name = line.substr(0, colon);
  if (!std::all_of(name.begin(), name.end(), is_tchar)) return false;
  value = trim_ows(line.substr(colon + 1));
  return !has_ctl(value);
}

constexpr uint64_t kMaxLength = std::numeric_limits<int64_t>::max();

}  // namespace

HttpReplyParser::HttpReplyParser(bool head_request, HttpReplyLimits limits)
    : head_request_(head_request), limits_(limits) {}

void HttpReplyParser::fail(std::string why) {
  state_ = State::malformed;
  phase_ = Phase::done;
  error_ = std::move(why);
}

void HttpReplyParser::done() {
  state_ = State::complete;
  phase_ = Phase::done;
}

HttpReplyParser::State HttpReplyParser::feed(std::string_view bytes) {
  if (state_ != State::need_more) return state_;
  received_ += bytes.size();
  while (!bytes.empty() && state_ == State::need_more) {
    switch (phase_) {
      case Phase::body_length:
      case Phase::chunk_data: {
        const auto n = static_cast<std::size_t>(std::min<uint64_t>(remaining_, bytes.size()));
        take_body(bytes.substr(0, n));
        bytes.remove_prefix(n);
        remaining_ -= n;
        if (state_ != State::need_more) break;
        if (remaining_ == 0) {
          if (phase_ == Phase::body_length) {
            done();
          } else {
            phase_ = Phase::chunk_data_end;
          }
        }
        break;
      }
      case Phase::body_close:
        take_body(bytes);
        bytes = {};
        break;
      case Phase::done:
        bytes = {};
        break;
      default: {
        // A line: the status line, a field, a chunk size, the CRLF after a
        // chunk, a trailer field. A bare LF ends a line too (RFC 9112
        // section 2.2 allows a recipient to accept it).
        const auto lf = bytes.find('\n');
        const std::size_t take = lf == std::string_view::npos ? bytes.size() : lf + 1;
        const bool header = phase_ == Phase::status_line || phase_ == Phase::fields || phase_ == Phase::trailer;
        const std::size_t cap = phase_ == Phase::chunk_data_end ? 2 : limits_.header;
        const std::size_t used = header ? header_bytes_ : line_.size();
        if (used + take > cap) {
          if (phase_ == Phase::chunk_data_end) {
            fail("chunk data not followed by CRLF");
          } else if (phase_ == Phase::chunk_size) {
            fail("chunk size line longer than " + std::to_string(cap) + " bytes");
          } else {
            fail("header section longer than " + std::to_string(cap) + " bytes");
          }
          break;
        }
        if (header) header_bytes_ += take;
        line_.append(bytes.substr(0, take));
        bytes.remove_prefix(take);
        if (lf == std::string_view::npos) break;
        std::string_view line(line_);
        line.remove_suffix(1);  // LF
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        const std::string copy(line);  // on_line may reset line_
        line_.clear();
        on_line(copy);
        break;
      }
    }
  }
  return state_;
}

HttpReplyParser::State HttpReplyParser::finish() {
  if (state_ != State::need_more) return state_;
  if (phase_ == Phase::body_close) {
    done();
  } else if (received_ == 0) {
    fail("connection closed without a reply");
  } else if (!headers_done_) {
    fail("connection closed before the end of the header");
  } else {
    fail("connection closed before the end of the body");
  }
  return state_;
}

bool HttpReplyParser::on_line(std::string_view line) {
  // A CR anywhere but at the end of a line is not HTTP.
  if (line.find('\r') != std::string_view::npos) {
    fail("bare CR in a line");
    return false;
  }
  switch (phase_) {
    case Phase::status_line: return on_status_line(line);
    case Phase::fields: return on_field_line(line);
    case Phase::chunk_size: return on_chunk_size_line(line);
    case Phase::chunk_data_end:
      if (!line.empty()) {
        fail("chunk data not followed by CRLF");
        return false;
      }
      phase_ = Phase::chunk_size;
      return true;
    case Phase::trailer: return on_trailer_line(line);
    default: return false;
  }
}

// HTTP-version SP status-code [SP reason-phrase] (RFC 9112 section 4; the
// SP before an empty reason is optional here, as most clients accept).
bool HttpReplyParser::on_status_line(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || !is_digit(line[5]) || line[6] != '.' ||
      !is_digit(line[7]) || line[8] != ' ' || !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]) ||
      (line.size() > 12 && line[12] != ' ')) {
    fail("bad status line");
    return false;
  }
  if (line[5] != '1') {
    fail("unsupported HTTP version " + std::string(line.substr(0, 8)));
    return false;
  }
  if (has_ctl(line.substr(12))) {
    fail("control character in the reason phrase");
    return false;
  }
  minor_ = static_cast<unsigned>(line[7] - '0');
  status_ = static_cast<unsigned>((line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0'));
  if (status_ < 100 || status_ > 599) {
    fail("status " + std::to_string(status_) + " out of range");
    status_ = 0;
    return false;
  }
  phase_ = Phase::fields;
  return true;
}

bool HttpReplyParser::on_field_line(std::string_view line) {
  if (line.empty()) return on_fields_end();
  if (is_ows(line.front())) {
    // Obsolete line folding (RFC 9112 section 5.2): the continuation of the
    // previous field. Harmless for fields we ignore; for the two that frame
    // the body it is refused rather than guessed at.
    if (last_field_.empty()) {
      fail("folded line before any field");
      return false;
    }
    if (iequals(last_field_, "content-length") || iequals(last_field_, "transfer-encoding")) {
      fail("folded " + last_field_);
      return false;
    }
    if (has_ctl(line)) {
      fail("control character in a field value");
      return false;
    }
    return true;
  }
  std::string_view name, value;
  if (!split_field(line, name, value)) {
    fail("bad header field");
    return false;
  }
  last_field_.assign(name);
  if (iequals(name, "content-length")) {
    // A list of identical values ("42, 42") is one length (RFC 9110
    // section 8.6); different ones are an attack or a bug.
    std::string_view rest = value;
    do {
      const auto comma = rest.find(',');
      const std::string_view item = trim_ows(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (item.empty() || !std::all_of(item.begin(), item.end(), is_digit)) {
        fail("bad Content-Length");
        return false;
      }
      uint64_t v = 0;
      for (char c : item) {
        v = v * 10 + static_cast<uint64_t>(c - '0');
        if (v > kMaxLength) {
          fail("Content-Length too large");
          return false;
        }
      }
      if (have_length_ && v != length_) {
        fail("conflicting Content-Length");
        return false;
      }
      have_length_ = true;
      length_ = v;
      if (comma == std::string_view::npos) break;
    } while (true);
  } else if (iequals(name, "transfer-encoding")) {
    // Only the last coding matters for framing: chunked last means chunks,
    // anything else means the body runs until the close (RFC 9112
    // section 6.3 rules 3 and 4, for a response).
    std::string_view rest = value;
    while (true) {
      const auto comma = rest.find(',');
      std::string_view item = trim_ows(rest.substr(0, comma));
      const auto semi = item.find(';');  // transfer-parameters
      item = trim_ows(item.substr(0, semi));
      if (!item.empty()) {
        if (!std::all_of(item.begin(), item.end(), is_tchar)) {
          fail("bad Transfer-Encoding");
          return false;
        }
        other_coding_ = true;
        chunked_ = iequals(item, "chunked");
      }
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }
  return true;
}

bool HttpReplyParser::on_fields_end() {
  if (status_ < 200 && status_ != 101) {
    // An interim reply (100 Continue, 103 Early Hints): the final one
    // follows, with a header budget of its own (RFC 9110 section 15.2).
    status_ = 0;
    chunked_ = other_coding_ = have_length_ = false;
    length_ = 0;
    header_bytes_ = 0;
    last_field_.clear();
    phase_ = Phase::status_line;
    return true;
  }
  headers_done_ = true;
  if (head_request_ || status_ == 101 || status_ == 204 || status_ == 304) {
    done();
    return false;
  }
  if (other_coding_) {  // Transfer-Encoding overrides Content-Length
    if (chunked_) {
      phase_ = Phase::chunk_size;
    } else {
      phase_ = Phase::body_close;
    }
    return true;
  }
  if (have_length_) {
    if (length_ == 0) {
      done();
      return false;
    }
    remaining_ = length_;
    phase_ = Phase::body_length;
    return true;
  }
  phase_ = Phase::body_close;
  return true;
}

// chunk-size [ chunk-ext ] (RFC 9112 section 7.1).
bool HttpReplyParser::on_chunk_size_line(std::string_view line) {
  uint64_t size = 0;
  std::size_t i = 0;
  for (; i < line.size(); ++i) {
    const char c = line[i];
    unsigned d;
    if (is_digit(c)) {
      d = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<unsigned>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<unsigned>(c - 'A' + 10);
    } else {
      break;
    }
    if (size > (kMaxLength >> 4)) {
      fail("chunk size too large");
      return false;
    }
    size = (size << 4) | d;
  }
  if (i == 0) {
    fail("bad chunk size");
    return false;
  }
  const std::string_view ext = trim_ows(line.substr(i));
  if ((!ext.empty() && ext.front() != ';') || has_ctl(ext)) {
    fail("bad chunk extension");
    return false;
  }
  if (size == 0) {
    header_bytes_ = 0;
    last_field_.clear();
    phase_ = Phase::trailer;
    return true;
  }
  remaining_ = size;
  phase_ = Phase::chunk_data;
  return true;
}

bool HttpReplyParser::on_trailer_line(std::string_view line) {
  if (line.empty()) {
    done();
    return false;
  }
  if (is_ows(line.front()) && !last_field_.empty() && !has_ctl(line)) return true;  // folded
  std::string_view name, value;
  if (!split_field(line, name, value)) {
    fail("bad trailer field");
    return false;
  }
  last_field_.assign(name);
  return true;
}

void HttpReplyParser::take_body(std::string_view data) {
  const std::size_t room = limits_.body - std::min(limits_.body, body_.size());
  if (data.size() > room) {
    body_.append(data.substr(0, room));
    truncated_ = true;
    done();
    return;
  }
  body_.append(data);
}

}  // namespace health
