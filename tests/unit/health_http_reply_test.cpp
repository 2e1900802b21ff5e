// health::HttpReplyParser: the HTTP check reply, fed in every possible way.
// The seed replies of fuzz/seeds/http_check_reply (Patroni's real replies,
// the one that made Beast 1.81 assert) are fed whole, byte by byte and split
// at every position, and must give the same result each time.
#define BOOST_TEST_MODULE health_http_reply
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "health/http_reply.h"

using health::HttpReplyLimits;
using health::HttpReplyParser;
using State = HttpReplyParser::State;

namespace health {
std::ostream& operator<<(std::ostream& os, HttpReplyParser::State s) {
  switch (s) {
    case HttpReplyParser::State::need_more: return os << "need_more";
    case HttpReplyParser::State::complete: return os << "complete";
    case HttpReplyParser::State::malformed: return os << "malformed";
  }
  return os << "?";
}
}  // namespace health

namespace {

struct Outcome {
  State state;
  unsigned status;
  std::string body;
  bool truncated;
  std::string error;
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << o.state << " " << o.status << " body[" << o.body.size() << "]" << (o.truncated ? " truncated" : "")
            << " '" << o.error << "'";
}

Outcome outcome_of(const HttpReplyParser& p) {
  return {p.state(), p.status(), p.body(), p.body_truncated(), p.error()};
}

// Feeds `bytes` in pieces of `piece` bytes (0: whole), then EOF if `close`.
Outcome parse(const std::string& bytes, std::size_t piece = 0, bool head = false, bool close = true,
              HttpReplyLimits limits = {}) {
  HttpReplyParser p(head, limits);
  if (piece == 0) piece = bytes.size() ? bytes.size() : 1;
  for (std::size_t i = 0; i < bytes.size(); i += piece) p.feed(std::string_view(bytes).substr(i, piece));
  if (close) p.finish();
  return outcome_of(p);
}

// Split at `at`: two feeds.
Outcome parse_split(const std::string& bytes, std::size_t at, bool head = false) {
  HttpReplyParser p(head);
  p.feed(std::string_view(bytes).substr(0, at));
  p.feed(std::string_view(bytes).substr(at));
  p.finish();
  return outcome_of(p);
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

const std::string kSeeds = std::string(VIPPROXY_SOURCE_DIR) + "/fuzz/seeds/http_check_reply";

}  // namespace

// ---- Patroni's replies ------------------------------------------------------

BOOST_AUTO_TEST_CASE(patroni_get_primary_200_with_json_body_until_close) {
  // BaseHTTPRequestHandler, HTTP/1.0, no Content-Length: the body ends at the close.
  const std::string raw = read_file(kSeeds + "/patroni-primary-200.http");
  HttpReplyParser p;
  BOOST_TEST(p.feed(raw) == State::need_more);
  BOOST_TEST(p.headers_done());
  BOOST_TEST(p.status() == 200u);
  BOOST_TEST(p.version_minor() == 0u);
  BOOST_TEST(p.finish() == State::complete);
  BOOST_TEST(p.body().rfind("{\"state\": \"running\"", 0) == 0u);
  BOOST_TEST(!p.body_truncated());
}

BOOST_AUTO_TEST_CASE(patroni_options_reply_is_a_status_line_alone) {
  // What Patroni 3.0 writes for OPTIONS/HEAD (_write_status_code_only).
  const std::string raw = "HTTP/1.0 200 OK\r\n\r\n";
  BOOST_TEST(parse(raw) == (Outcome{State::complete, 200, "", false, ""}));
  // A HEAD reply is complete without waiting for the close.
  HttpReplyParser head(true);
  BOOST_TEST(head.feed(raw) == State::complete);
  BOOST_TEST(head.status() == 200u);
}

BOOST_AUTO_TEST_CASE(patroni_503_body) {
  const auto o = parse(read_file(kSeeds + "/patroni-replica-503.http"), 7);
  BOOST_TEST(o.state == State::complete);
  BOOST_TEST(o.status == 503u);
  BOOST_TEST(o.body.find("\"role\": \"replica\"") != std::string::npos);
}

// Every seed: whole, byte by byte, in 2/3/7-byte pieces and split at every
// position give one and the same result; the same after a HEAD request.
BOOST_AUTO_TEST_CASE(every_seed_parses_the_same_whatever_the_pieces) {
  std::size_t seeds = 0;
  for (const auto& e : std::filesystem::directory_iterator(kSeeds)) {
    const std::string raw = read_file(e.path());
    ++seeds;
    for (bool head : {false, true}) {
      BOOST_TEST_CONTEXT(e.path().filename().string() << (head ? " after HEAD" : "")) {
        const Outcome whole = parse(raw, 0, head);
        for (std::size_t piece : {1u, 2u, 3u, 7u}) BOOST_TEST(parse(raw, piece, head) == whole);
        for (std::size_t at = 0; at <= raw.size(); ++at) BOOST_TEST(parse_split(raw, at, head) == whole);
      }
    }
  }
  BOOST_TEST(seeds >= 8u);
}

BOOST_AUTO_TEST_CASE(beast_assert_seed_is_a_malformed_trailer_in_any_pieces) {
  // Boost 1.81's basic_parser asserts on this one fed in pieces (debug
  // builds): a final chunk, then a "trailer" that is not a field.
  const std::string raw = read_file(kSeeds + "/beast-chunk-trailer-assert.http");
  for (std::size_t piece : {0u, 1u, 2u, 5u}) {
    const auto o = parse(raw, piece);
    BOOST_TEST(o.state == State::malformed);
    BOOST_TEST(o.status == 200u);
    BOOST_TEST(o.error == "bad trailer field");
  }
}

// ---- framing ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(content_length_ends_the_body_without_the_close) {
  HttpReplyParser p;
  BOOST_TEST(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel") == State::need_more);
  BOOST_TEST(p.feed("loEXTRA") == State::complete);
  BOOST_TEST(p.body() == "hello");
  BOOST_TEST(p.feed("more") == State::complete);  // ignored after the end
  BOOST_TEST(p.finish() == State::complete);
  BOOST_TEST(p.body() == "hello");
}

BOOST_AUTO_TEST_CASE(content_length_zero_and_lists) {
  BOOST_TEST(parse("HTTP/1.1 503 x\r\nContent-Length: 0\r\n\r\n", 0, false, false).state == State::complete);
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", 0, false, false).body == "ok");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", 0, false, false).body ==
             "ok");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok").error ==
             "conflicting Content-Length");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok").error == "conflicting Content-Length");
  for (const char* bad : {"", "-1", "+2", "0x10", "2 2", "2,", ",2", "abc"})
    BOOST_TEST(parse(std::string("HTTP/1.1 200 OK\r\nContent-Length: ") + bad + "\r\n\r\n").error ==
                   "bad Content-Length",
               bad);
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n").error ==
             "Content-Length too large");
}

BOOST_AUTO_TEST_CASE(chunked_with_extensions_and_trailers_in_pieces) {
  const std::string raw =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\nA \r\n, patroni!\r\n0\r\nX-Trailer: yes\r\n  folded\r\n\r\n";
  for (std::size_t piece : {0u, 1u, 4u}) {
    const auto o = parse(raw, piece, false, false);
    BOOST_TEST(o.state == State::complete);
    BOOST_TEST(o.body == "hello, patroni!");
  }
  // Lower- and upper-case hex, leading zeros.
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00a\r\n0123456789\r\n0\r\n\r\n", 1, false,
                   false)
                 .body == "0123456789");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1F\r\n" + std::string(31, 'x') +
                       "\r\n0\r\n\r\n",
                   0, false, false)
                 .body.size() == 31u);
}

BOOST_AUTO_TEST_CASE(chunked_errors) {
  const std::string h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  BOOST_TEST(parse(h + "z\r\n").error == "bad chunk size");
  BOOST_TEST(parse(h + ";x\r\n").error == "bad chunk size");
  BOOST_TEST(parse(h + "5x\r\n").error == "bad chunk extension");
  BOOST_TEST(parse(h + "1;a\x01\r\n").error == "bad chunk extension");
  BOOST_TEST(parse(h + "fffffffffffffffff\r\n").error == "chunk size too large");
  BOOST_TEST(parse(h + "2\r\nabX\r\n").error == "chunk data not followed by CRLF");
  BOOST_TEST(parse(h + "2\r\nab\r\r\n").error == "chunk data not followed by CRLF");
  BOOST_TEST(parse(h + "1;" + std::string(9000, 'e') + "\r\n").error == "chunk size line longer than 8192 bytes");
  BOOST_TEST(parse(h + "0\r\nbad trailer\r\n\r\n").error == "bad trailer field");
  BOOST_TEST(parse(h + "0\r\nX: " + std::string(9000, 't') + "\r\n\r\n").error ==
             "header section longer than 8192 bytes");
  // The close before the last chunk, or in the trailer.
  BOOST_TEST(parse(h + "2\r\nab\r\n").error == "connection closed before the end of the body");
  BOOST_TEST(parse(h + "0\r\nX: y\r\n").error == "connection closed before the end of the body");
}

BOOST_AUTO_TEST_CASE(transfer_encoding_rules) {
  // Chunked last wins over Content-Length (RFC 9112 section 6.3 rule 3).
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                   0, false, false)
                 .body == "ok");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 0, false, false)
                 .body == "ok");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n", 0, false,
                   false)
                 .state == State::complete);
  // Another coding last: the body runs until the close (rule 4).
  HttpReplyParser p;
  BOOST_TEST(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc") ==
             State::need_more);
  BOOST_TEST(p.finish() == State::complete);
  BOOST_TEST(p.body() == "abc");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chu nked\r\n\r\n").error == "bad Transfer-Encoding");
}

BOOST_AUTO_TEST_CASE(replies_without_a_body) {
  for (const char* st : {"204 No Content", "304 Not Modified", "101 Switching Protocols"}) {
    HttpReplyParser p;
    BOOST_TEST(p.feed(std::string("HTTP/1.1 ") + st + "\r\nContent-Length: 10\r\n\r\n") == State::complete, st);
    BOOST_TEST(p.body().empty());
  }
  HttpReplyParser head(true);
  BOOST_TEST(head.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n") ==
             State::complete);
}

BOOST_AUTO_TEST_CASE(interim_replies_are_skipped) {
  const std::string raw =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
      "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno";
  for (std::size_t piece : {0u, 1u}) {
    const auto o = parse(raw, piece, false, false);
    BOOST_TEST(o.state == State::complete);
    BOOST_TEST(o.status == 503u);
    BOOST_TEST(o.body == "no");
  }
  // The interim reply's fields do not frame the final one.
  const auto o = parse("HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\nbody");
  BOOST_TEST(o.state == State::complete);
  BOOST_TEST(o.body == "body");
}

// ---- the status line and fields ---------------------------------------------

BOOST_AUTO_TEST_CASE(status_lines) {
  BOOST_TEST(parse("HTTP/1.1 200\r\n\r\n").status == 200u);  // no reason phrase
  BOOST_TEST(parse("HTTP/1.1 200 \r\n\r\n").status == 200u);
  BOOST_TEST(parse("HTTP/1.1 599 Whatever \xc3\xa9\tx\r\n\r\n").status == 599u);
  for (const char* bad : {"HTTP/1.1 20\r\n", "HTTP/1.1 2000 OK\r\n", "HTTP/1.1  200 OK\r\n", "HTTP/1.1200 OK\r\n",
                          "http/1.1 200 OK\r\n", "HTTP/1 200 OK\r\n", "ICY 200 OK\r\n", "\r\n", " HTTP/1.1 200\r\n",
                          "HTTP/1.x 200 OK\r\n"})
    BOOST_TEST(parse(bad).error == "bad status line", bad);
  BOOST_TEST(parse("HTTP/2.0 200 OK\r\n\r\n").error == "unsupported HTTP version HTTP/2.0");
  BOOST_TEST(parse("HTTP/0.9 200 OK\r\n\r\n").error == "unsupported HTTP version HTTP/0.9");
  BOOST_TEST(parse("HTTP/1.1 099 x\r\n\r\n").error == "status 99 out of range");
  BOOST_TEST(parse("HTTP/1.1 600 x\r\n\r\n").error == "status 600 out of range");
  BOOST_TEST(parse("HTTP/1.1 600 x\r\n\r\n").status == 0u);
  BOOST_TEST(parse(std::string("HTTP/1.1 200 O\x01K\r\n\r\n")).error == "control character in the reason phrase");
  BOOST_TEST(parse("HTTP/1.1 200 O\rK\r\n\r\n").error == "bare CR in a line");
}

BOOST_AUTO_TEST_CASE(bare_lf_line_ends_are_accepted) {
  const auto o = parse("HTTP/1.0 200 OK\nContent-Type: application/json\n\n{}");
  BOOST_TEST(o.state == State::complete);
  BOOST_TEST(o.body == "{}");
}

BOOST_AUTO_TEST_CASE(fields) {
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\tagain\r\n\r\n").state == State::complete);
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nX:\r\n\r\n").state == State::complete);  // empty value
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nX : a\r\n\r\n").error == "bad header field");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\n: a\r\n\r\n").error == "bad header field");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nno colon\r\n\r\n").error == "bad header field");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nX(y): a\r\n\r\n").error == "bad header field");
  BOOST_TEST(parse(std::string("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", 27)).error == "bad header field");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\n folded first\r\n\r\n").error == "folded line before any field");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n 0\r\n\r\n").error == "folded Content-Length");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n chunked\r\n\r\n").error ==
             "folded Transfer-Encoding");
}

// ---- limits -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(header_limit_is_exact) {
  HttpReplyLimits lim;
  lim.header = 64;
  const std::string start = "HTTP/1.1 200 OK\r\n";  // 17
  const std::string end = "\r\n";                   // 2
  // One field making the header section exactly 64 bytes.
  const std::string field = "X: " + std::string(64 - 17 - 2 - 5, 'a') + "\r\n";
  BOOST_TEST((start + field + end).size() == 64u);
  BOOST_TEST(parse(start + field + end, 1, false, true, lim).state == State::complete);
  const std::string longer = "X: " + std::string(64 - 17 - 2 - 5 + 1, 'a') + "\r\n";
  for (std::size_t piece : {0u, 1u})
    BOOST_TEST(parse(start + longer + end, piece, false, true, lim).error == "header section longer than 64 bytes");
  // A status line with no end at all is bounded too.
  BOOST_TEST(parse("HTTP/1.1 200 " + std::string(100, 'x'), 0, false, false, lim).error ==
             "header section longer than 64 bytes");
}

BOOST_AUTO_TEST_CASE(body_limit_truncates_and_completes) {
  HttpReplyLimits lim;
  lim.body = 10;
  // Exactly the limit: kept whole.
  auto o = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", 1, false, false, lim);
  BOOST_TEST(o.state == State::complete);
  BOOST_TEST(!o.truncated);
  // One more: complete at once, first 10 bytes kept.
  for (std::size_t piece : {0u, 1u, 3u}) {
    o = parse("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n0123456789A", piece, false, false, lim);
    BOOST_TEST(o.state == State::complete);
    BOOST_TEST(o.truncated);
    BOOST_TEST(o.body == "0123456789");
  }
  // Until the close and chunked alike; a huge announced length costs nothing.
  o = parse("HTTP/1.0 200 OK\r\n\r\n" + std::string(100, 'b'), 7, false, false, lim);
  BOOST_TEST((o.state == State::complete && o.truncated && o.body.size() == 10u));
  o = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n8\r\n89ABCDEF\r\n", 0, false, false,
            lim);
  BOOST_TEST((o.state == State::complete && o.truncated && o.body == "0123456789"));
  o = parse("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n" + std::string(20, 'c'), 0, false, false,
            lim);
  BOOST_TEST((o.state == State::complete && o.truncated));
}

// ---- the close --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(close_at_each_point) {
  HttpReplyParser nothing;
  BOOST_TEST(nothing.finish() == State::malformed);
  BOOST_TEST(nothing.nothing_received());
  BOOST_TEST(nothing.error() == "connection closed without a reply");

  BOOST_TEST(parse("HTTP/1.1 200").error == "connection closed before the end of the header");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nX: y\r\n").error == "connection closed before the end of the header");
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc").error ==
             "connection closed before the end of the body");
  // The body until the close: the close is its end, even when empty.
  BOOST_TEST(parse("HTTP/1.1 200 OK\r\n\r\n").state == State::complete);
  // finish() after the end changes nothing.
  HttpReplyParser p(true);
  p.feed("HTTP/1.1 200 OK\r\n\r\n");
  BOOST_TEST(p.finish() == State::complete);
  BOOST_TEST(!p.nothing_received());
}

BOOST_AUTO_TEST_CASE(garbage_is_malformed_and_stays_so) {
  HttpReplyParser p;
  BOOST_TEST(p.feed("SSH-2.0-OpenSSH_9.2\r\n") == State::malformed);
  BOOST_TEST(p.error() == "bad status line");
  BOOST_TEST(p.feed("HTTP/1.1 200 OK\r\n\r\n") == State::malformed);
  BOOST_TEST(p.finish() == State::malformed);
  BOOST_TEST(p.status() == 0u);
  BOOST_TEST(!p.headers_done());
}
