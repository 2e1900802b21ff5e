// Backend choice, as a pure function so every rule has a unit test.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cfg/config.h"

namespace proxy {

struct Candidate {
  bool eligible = false;
  uint64_t sessions = 0;  // current sessions (leastconn)
};

// `current` is the backend `first` is using now (npos when none): while it is
// still eligible it stays chosen even if another backend also became
// eligible, so a second node answering 200 (Patroni split brain, stale node)
// never makes new sessions flap between two primaries (the daemon's election
// moves `current` once, to the newer timeline: elect_first_by_timeline). `ticket` is a
// monotonically increasing number for roundrobin.
inline constexpr size_t npos = static_cast<size_t>(-1);
std::optional<size_t> choose(cfg::Balance balance, std::span<const Candidate> backends, size_t current,
                             uint64_t ticket);

// For `first`: which backend becomes current after an eligibility change.
// Keeps `current` while it is eligible, else the first eligible in config
// order, else npos.
size_t elect_first(std::span<const Candidate> backends, size_t current);

// For `first` while two or more backends pass the check at once: a stale old
// primary still answering 200 during a failover, or a Patroni split brain.
// After a failover or switchover the new primary's PostgreSQL timeline is
// the higher one, and what the old one takes is thrown away by pg_rewind
// when it rejoins as a replica, so new sessions go to the eligible backend
// on the strictly highest timeline (README, `balance`). `timelines[i]` is the
// timeline backend i's Patroni reported as a primary during this overlap
// (GET /patroni), nullopt when not read, not a primary's reply, or not
// understood. Only when two or more are eligible, each eligible one's
// timeline is known and exactly one has the highest; anything else (a
// timeline unknown, a tie, a single eligible backend) is elect_first's
// choice. Never a backend that is not eligible.
size_t elect_first_by_timeline(std::span<const Candidate> backends,
                               std::span<const std::optional<uint64_t>> timelines, size_t current);

// During an overlap, when to read again a backend's timeline whose last
// read failed (a timeout, Patroni busy, a 5xx, a reply not a primary's or
// not understood): `failures` reads in a row have failed (>= 1). At the
// check interval, but not sooner than 2 s after the failure (a node that
// times out or is busy is not hammered), doubling at each failure in a row
// up to 10 s (or the interval, when longer): a node whose Patroni answers
// again is read within 10 s, so new sessions can move to the newer timeline
// while the overlap lasts. The daemon starts it only once the previous read
// has ended: never more than one in flight per backend.
std::chrono::milliseconds timeline_retry_after(std::chrono::milliseconds check_interval, unsigned failures);

// During an overlap that lasts, when to read again a backend's timeline
// whose last read succeeded: a node promoted once more while the overlap
// lasts (a second failover, or the old primary of a split brain promoted
// again) is then seen. Slow, as the timeline of a node rarely changes and
// every read is a request to its Patroni: every 5 check intervals, not
// sooner than 10 s.
std::chrono::milliseconds timeline_reread_after(std::chrono::milliseconds check_interval);

// More than one backend of a `first` proxy passing its check at once (a
// Patroni split brain, or a stale node) is loud news, but news once: the
// daemon elects at every check change and reload, and repeating the warning
// each time buried the one line that mattered. update() is fed the names of
// the eligible backends at each election and says what to log.
class OverlapWatch {
 public:
  enum class Event {
    none,     // nothing new (still one or none eligible, or the same overlap)
    started,  // two or more pass now, and did not before
    changed,  // still two or more, another set of them
    ended,    // back to one or none
  };
  Event update(std::vector<std::string> eligible);
  // The backends of the overlap in force (empty when there is none).
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
};

}  // namespace proxy
