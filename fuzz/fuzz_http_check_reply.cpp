// The HTTP health-check reply parser the checker uses (health/http_reply.h,
// fed piece by piece as health/checker.cpp does), and the judgement of
// Patroni's body (health/patroni.h) on the replies it accepts, and the
// primary's timeline read from it during an overlap (health/patroni_defects.h).
//
// Input: one control byte (bit 0: the request was HEAD; bits 1-7: the size of
// the pieces the peer's bytes arrive in, 1..128), then the bytes the server
// sent, then the server's close.
//
// Invariants: no crash or leak; the result does not depend on how the bytes
// were split (fed whole gives the same state, status, body and error); the
// kept body never passes the limit; a status is 0 or 100..599; a complete
// reply has its header; a malformed one says why.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "health/http_reply.h"
#include "health/patroni.h"
#include "health/patroni_defects.h"

namespace {

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool head = data[0] & 1;
  const std::size_t piece = (data[0] >> 1) + 1;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const health::HttpReplyLimits limits;

  health::HttpReplyParser pieces(head, limits);
  for (std::size_t i = 0; i < bytes.size(); i += piece) pieces.feed(bytes.substr(i, piece));
  pieces.finish();

  health::HttpReplyParser whole(head, limits);
  whole.feed(bytes);
  whole.finish();

  check(pieces.state() == whole.state(), "state depends on the pieces");
  check(pieces.status() == whole.status(), "status depends on the pieces");
  check(pieces.body() == whole.body(), "body depends on the pieces");
  check(pieces.body_truncated() == whole.body_truncated(), "truncation depends on the pieces");
  check(pieces.error() == whole.error(), "error depends on the pieces");
  check(pieces.state() != health::HttpReplyParser::State::need_more, "still waiting after the close");
  check(pieces.body().size() <= limits.body, "body passed the limit");
  check(pieces.status() == 0 || (pieces.status() >= 100 && pieces.status() <= 599), "status out of range");
  check(!pieces.complete() || pieces.headers_done(), "complete without a header");
  check(pieces.complete() || !pieces.error().empty(), "malformed without a reason");
  check(!head || pieces.body().empty(), "a body after HEAD");

  if (pieces.complete()) {
    const auto v = health::judge_primary_body(pieces.body(), pieces.body_truncated());
    check(v.kind == health::RoleVerdict::no_verdict || pieces.body().size() > 0, "a verdict from no body");
    std::string why;
    const auto timeline = health::primary_timeline_from_status(pieces.body(), why);
    check(timeline ? *timeline >= 1 && *timeline <= UINT32_MAX : !why.empty(), "a timeline out of range or no reason");
  }
  return 0;
}
