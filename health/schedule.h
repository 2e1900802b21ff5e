// When a backend's check runs and what its results mean: HAProxy's rise/fall
// smoothing and inter/fastinter timing as a pure state machine. No sockets, no
// clock reads: the caller feeds results in and asks for the next delay, so
// every sequence can be tested as a table (tests/unit/health_schedule_test.cpp).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "cfg/config.h"

namespace health {

class CheckSchedule {
 public:
  using Duration = std::chrono::milliseconds;

  // unknown: no result yet (not eligible). up: eligible. down: not eligible.
  enum class State { unknown, up, down };

  // rise/fall of 0 are treated as 1 (cfg validates them; this keeps the
  // machine total). A non-positive fast_interval means "use interval".
  CheckSchedule(Duration interval, Duration fast_interval, unsigned rise, unsigned fall);
  explicit CheckSchedule(const cfg::Check& rule)
      : CheckSchedule(rule.interval, rule.fast_interval, rule.rise, rule.fall) {
    down_on_status_ = rule.down_on_status;
  }

  // Feed one check result. Returns true when eligibility (up()) changed.
  // Leaving `unknown` for `down` is a state change but not an eligibility
  // change (the backend was not eligible before either): see state_changed().
  bool on_result(bool success);
  // A failure that is a definitive answer (a layer-7 wrong status) rather
  // than a transport problem: with down_on_status it takes an UP backend
  // down at once instead of after `fall` results.
  bool on_definitive_failure();

  // Urgent while the proxy has no eligible backend at all: checks come at
  // fast_interval (at most 100 ms apart, see next_delay) and one success is
  // enough to rise, because there is no good backend that smoothing could
  // protect, only clients waiting.
  // Urgency lapses after kUrgentChecks results without a rise: the checks
  // then come at fast_interval as configured (HAProxy's downinter is the
  // same idea). 600 at 100 ms is a minute, longer than the unplanned
  // failover it exists for (a dead primary's node: writes again after ~38 s
  // with the guide's ttl 30, docs/lab-notes.md); past that the outage is
  // not a failover, and 10 checks a second of every node for its whole
  // length (both nodes down for maintenance, a cluster with no leader for
  // hours) is only load on Patroni. Clients connecting meanwhile still
  // bring a check forward (health/checker.h, check_soon).
  static constexpr unsigned kUrgentChecks = 600;
  void set_urgent(bool urgent) {
    if (!urgent) urgent_checks_ = 0;
    urgent_ = urgent;
  }
  bool urgent() const { return urgent_; }
  void set_down_on_status(bool v) { down_on_status_ = v; }
  // SIGHUP with a changed check: new timing and thresholds, same state and
  // running counts (a backend that is UP stays UP; a count already past the
  // new rise/fall decides at the next result).
  void retune(const cfg::Check& rule);

  State state() const { return state_; }
  bool up() const { return state_ == State::up; }
  // True when the last on_result() moved state() (including unknown -> down).
  bool state_changed() const { return state_changed_; }
  // A counter toward the opposite state is running: UP with failures, or
  // DOWN with successes. Checks come at fast_interval meanwhile so a change
  // is confirmed (or dismissed) sooner.
  bool transitioning() const;
  // Delay from the end of the last check to the start of the next one.
  // Before the first result the caller uses first_delay() instead; this
  // returns interval then.
  // While urgent, checks of a DOWN backend come at fast_interval but at
  // most kUrgentInterval apart: clients are queued, and what they wait for
  // is the first 200 of the new primary (Patroni promotes a replica within
  // a second of a switchover; up to fast_interval more was pure waiting).
  static constexpr Duration kUrgentInterval{100};
  Duration next_delay() const {
    if (urgent_ && state_ != State::up)
      return urgent_checks_ < kUrgentChecks ? std::min(fast_interval_, kUrgentInterval) : fast_interval_;
    return transitioning() ? fast_interval_ : interval_;
  }

  // Consecutive results of each kind (one of them is always 0 after a result).
  unsigned consecutive_successes() const { return successes_; }
  unsigned consecutive_failures() const { return failures_; }
  uint64_t checks() const { return checks_; }
  uint64_t failures_total() const { return failures_total_; }
  // Eligibility changes so far (unknown -> down is not one).
  uint64_t transitions() const { return transitions_; }

  unsigned rise() const { return rise_; }
  unsigned fall() const { return fall_; }
  Duration interval() const { return interval_; }
  Duration fast_interval() const { return fast_interval_; }

 private:
  Duration interval_, fast_interval_;
  unsigned rise_, fall_;
  State state_ = State::unknown;
  bool state_changed_ = false;
  bool urgent_ = false;
  bool down_on_status_ = true;
  unsigned successes_ = 0, failures_ = 0;
  unsigned urgent_checks_ = 0;  // results while urgent, since it began
  uint64_t checks_ = 0, failures_total_ = 0, transitions_ = 0;
};

const char* to_string(CheckSchedule::State s);

// Delay before the first check of backend `index` out of `count` checked with
// the same interval: index * interval / count, plus `jitter` (the caller draws
// it; nothing random here), so checks of many backends are spread over the
// interval instead of firing in lock-step. Negative results are clamped to 0;
// index is taken modulo count; count 0 is treated as 1.
std::chrono::milliseconds first_delay(std::size_t index, std::size_t count,
                                      std::chrono::milliseconds interval,
                                      std::chrono::milliseconds jitter = std::chrono::milliseconds{0});

}  // namespace health
