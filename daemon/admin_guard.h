// The rules the admin endpoint applies to a client before it costs the
// control thread anything: who may ask (the token, compared in constant
// time) and who gets one of the few connection slots (Admission). Pure code,
// no sockets; unit-tested in tests/unit/admin_guard_test.cpp. The endpoint
// shares the control thread with the VRRP timers and health checks
// (docs/admin.md), so none of this may block or grow without bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>

namespace daemon_ {

// True when a and b are equal. The time taken depends only on the length of
// `given` (what the client sent), never on where the first difference is nor
// on the length of `secret`, so a client cannot guess the token byte by byte
// from response times.
bool constant_time_equal(std::string_view given, std::string_view secret);

// RFC 4648 §4 base64 (padding required, no whitespace); nullopt if malformed.
std::optional<std::string> base64_decode(std::string_view in);

// Whether an Authorization header value carries `token`:
//   "Bearer TOKEN"                      (RFC 6750 §2.1; vipproxy status, Prometheus)
//   "Basic base64(ANY-USER:TOKEN)"      (RFC 7617; a browser's login prompt, so the
//                                        status page's own fetches carry it too)
// The scheme is case-insensitive (RFC 9110 §11.1). An empty token means no
// token is configured: everything is authorized.
bool token_authorizes(std::string_view authorization, std::string_view token);

// Who gets a connection slot. At most `cap` connections are open; a client
// that sent its whole request is being answered and is never closed to make
// room. When a new connection arrives with every slot taken:
//   - if some slot is still waiting for its request, the one that has waited
//     longest is closed and the newcomer takes its place (a well-behaved
//     client sends its request at once, so an idle or slow-loris connection
//     is always the oldest waiter: it cannot keep a real client out);
//     skipped are waiters with bytes we have not read yet (`has_unread`): a
//     client that did send its request at once may still be a waiter when a
//     flood's connections are accepted in a row before its read runs
//     (test_admin_hostile_netns saw one reset that way), and if every waiter
//     has some, the oldest goes;
//   - a connection whose answer is handed over and that only waits for its
//     client's close (lingering: read and discarded, so that bytes it sent
//     after its request do not turn our close into a reset that cuts the
//     answer, RFC 9112 §9.6) goes before any waiter, the oldest first: it
//     has had its answer;
//   - otherwise (every slot is being answered) the newcomer is closed.
class Admission {
 public:
  explicit Admission(size_t cap) : cap_(cap ? cap : 1) {}
  struct Decision {
    bool admit = false;
    std::optional<uint64_t> evict;  // the waiter to close first
  };
  // A connection arrived (ids are unique, increasing). Admitted ids are
  // tracked as waiting for their request. `has_unread(id)`: whether a
  // waiter's socket holds bytes not read yet (FIONREAD; none given: no).
  Decision arrive(uint64_t id, const std::function<bool(uint64_t)>& has_unread = {});
  // Its request is complete: from now on it is answered, not evicted.
  void answering(uint64_t id);
  // Its answer is handed over; it waits for the client to close: the first
  // to be closed to make room.
  void lingering(uint64_t id);
  // It is gone (answered, timed out, evicted or refused).
  void left(uint64_t id);

  size_t open() const { return waiting_.size() + answering_.size() + lingering_.size(); }
  size_t waiting() const { return waiting_.size(); }
  size_t cap() const { return cap_; }

 private:
  size_t cap_;
  std::list<uint64_t> waiting_;  // oldest first; a handful of entries
  std::list<uint64_t> answering_;
  std::list<uint64_t> lingering_;  // oldest first
};

}  // namespace daemon_
