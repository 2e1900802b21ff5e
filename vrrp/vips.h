// Virtual addresses as desired vs. actual state, pure. The engine wants its
// VIPs present while MASTER and absent otherwise; what the kernel actually
// has is known only from its answers (the netlink ACK of an add or delete,
// or an RTM_GETADDR dump when an event or the periodic check asks). A slot
// is never marked present or absent before the kernel said so, a failed
// operation is retried with back-off, and a master that cannot install a
// VIP for `give_up_after` (three advert intervals) gives the mastership
// away (engine: priority 0, then FAULT until the address can be added).
// No clock, no kernel: the engine passes the time and executes the ops.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vrrp/fsm.h"

namespace vrrp::vips {

using Duration = fsm::Duration;
using TimePoint = fsm::TimePoint;

enum class Presence : uint8_t { unknown, absent, present };
std::string_view to_string(Presence p);

struct Policy {
  Duration retry_base{std::chrono::milliseconds(100)};  // first retry after a failure
  Duration retry_cap{std::chrono::seconds(5)};          // back-off ceiling
  Duration give_up_after{std::chrono::seconds(3)};      // master: wanted VIP missing this long
  Duration verify_every{std::chrono::seconds(5)};       // ask the kernel what it really has
};

// The policy for an instance: retries start one advert interval apart (at
// least 10 ms, at most 1 s) and double up to 5 s; a master gives up after
// 3 x advert_int (RFC 5798's Master_Down_Interval without the skew: about
// when a backup would have taken over from a dead master); the kernel is
// asked every advert interval as MASTER (the VIP is what we advertise) but
// at most once a second (an address dump: see policy_for), every 5 s
// otherwise.
Policy policy_for(Duration advert_int, bool master);

struct Slot {
  Presence actual = Presence::unknown;
  unsigned failures = 0;                 // consecutive failed add/delete attempts
  TimePoint retry_at{};                  // while failures > 0: no attempt before
  std::optional<TimePoint> unmet_since;  // wanted present and not present, since
  std::string last_error;                // of the last failed attempt, "" once one succeeded
  TimePoint last_logged{};               // of a failure (the engine's log rate limit)
};

enum class Op : uint8_t { none, add, del };

// The operation due for `s` now: none while in sync or backing off. An
// unknown presence is settled by the (idempotent) operation toward `want`.
Op due(bool want, const Slot& s, TimePoint now);

// The kernel's answer to `op`: `error` empty means it was done (an add of an
// address already there or a delete of one already gone is success too).
void record(Slot& s, bool want, Op op, const std::string& error, TimePoint now, const Policy& p);

// What the kernel has now, from a dump (after an event, a periodic check or
// a resync). Resets the back-off when it shows something new to act on.
void observe(Slot& s, bool want, bool present, TimePoint now);

// What we have no answer for any more (events lost, ENOBUFS): unknown.
void forget(Slot& s, bool want, TimePoint now);

// The desire changed (a transition): a fresh start, no back-off owed.
void want_changed(Slot& s, bool want, TimePoint now);

bool in_sync(bool want, const Slot& s);
Duration backoff(unsigned failures, const Policy& p);

// A master that has missed a wanted VIP for give_up_after.
bool give_up(bool want, const std::vector<Slot>& slots, TimePoint now, const Policy& p);

// The latest time the engine must look again: a retry, the give-up
// deadline, or the next periodic check after `last_verify`.
TimePoint next_wake(bool want, const std::vector<Slot>& slots, TimePoint last_verify, TimePoint now,
                    const Policy& p);

}  // namespace vrrp::vips
