#include "health/schedule.h"

#include <algorithm>

namespace health {

CheckSchedule::CheckSchedule(Duration interval, Duration fast_interval, unsigned rise, unsigned fall)
    : interval_(std::max(interval, Duration{0})),
      fast_interval_(fast_interval > Duration{0} ? fast_interval : interval_),
      rise_(std::max(rise, 1u)),
      fall_(std::max(fall, 1u)) {}

void CheckSchedule::retune(const cfg::Check& rule) {
  const CheckSchedule fresh(rule);
  interval_ = fresh.interval_;
  fast_interval_ = fresh.fast_interval_;
  rise_ = fresh.rise_;
  fall_ = fresh.fall_;
  down_on_status_ = rule.down_on_status;
}

bool CheckSchedule::transitioning() const {
  switch (state_) {
    case State::up: return failures_ > 0;
    case State::down: return successes_ > 0;
    case State::unknown: return false;
  }
  return false;
}

bool CheckSchedule::on_result(bool success) {
  ++checks_;
  if (urgent_ && urgent_checks_ < kUrgentChecks) ++urgent_checks_;
  if (success) {
    ++successes_;
    failures_ = 0;
  } else {
    ++failures_;
    ++failures_total_;
    successes_ = 0;
  }

  const State before = state_;
  switch (state_) {
    case State::unknown:
      // The first result decides at once instead of waiting for rise
      // successes: at startup (or after a reload) nothing is eligible, so
      // waiting rise x interval would refuse or queue every client for
      // seconds although one good answer from Patroni's /primary is as much
      // evidence as the daemon will ever get about the current leader.
      // Starting "unknown" (rather than optimistically UP) means a failing
      // backend is never eligible, not even during the first interval; after
      // this first decision, rise/fall smoothing applies as usual.
      state_ = success ? State::up : State::down;
      break;
    case State::up:
      if (failures_ >= fall_) state_ = State::down;
      break;
    case State::down:
      if (successes_ >= (urgent_ ? 1u : rise_)) state_ = State::up;
      break;
  }
  state_changed_ = state_ != before;
  const bool eligibility_changed = (before == State::up) != (state_ == State::up);
  if (eligibility_changed) ++transitions_;
  return eligibility_changed;
}

bool CheckSchedule::on_definitive_failure() {
  if (down_on_status_ && state_ == State::up) {
    // Count the result as usual, then complete the fall at once.
    failures_ = fall_ > 0 ? fall_ - 1 : 0;
  }
  return on_result(false);
}

const char* to_string(CheckSchedule::State s) {
  switch (s) {
    case CheckSchedule::State::unknown: return "unknown";
    case CheckSchedule::State::up: return "UP";
    case CheckSchedule::State::down: return "DOWN";
  }
  return "?";
}

std::chrono::milliseconds first_delay(std::size_t index, std::size_t count,
                                      std::chrono::milliseconds interval,
                                      std::chrono::milliseconds jitter) {
  if (count == 0) count = 1;
  index %= count;
  const auto base = interval.count() > 0 ? interval.count() : 0;
  // 64-bit product: an interval of hours times thousands of backends fits.
  const long long spread = static_cast<long long>(index) * base / static_cast<long long>(count);
  const long long total = spread + jitter.count();
  return std::chrono::milliseconds{std::max(total, 0LL)};
}

}  // namespace health
