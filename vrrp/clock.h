// The VRRP engine's clock and timers. In the daemon: the steady clock. In
// unit tests (tests/unit/vrrp_engine_test.cpp) a manual clock that moves
// only when the test steps it, so engine tests advance time instead of
// sleeping and give the same answer on an idle or a loaded machine. The
// switch is process-wide and only tests touch it; everything the engine
// times (its fsm's `now`, the advert, GARP, VIP and script timers, the
// log rate limits) reads this clock.
#pragma once

#include <boost/asio/basic_waitable_timer.hpp>
#include <chrono>

namespace vrrp {

struct Clock {
  using duration = std::chrono::steady_clock::duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::steady_clock::time_point;
  static constexpr bool is_steady = true;

  static time_point now() noexcept;

  // Tests only. While manual, now() is what the test made it; advance()
  // moves it (due timers fire at the io_context's next poll()).
  static void use_manual();
  static void use_real();
  static void advance(duration d);
  static bool manual();
};

// How long the reactor may sleep before looking at the timers: as asio's
// default, except on the manual clock, where time moves by advance() and
// not by waiting, so the timers are looked at on every poll().
struct ClockWaitTraits {
  static Clock::duration to_wait_duration(const Clock::duration& d) {
    return Clock::manual() ? Clock::duration::zero() : d;
  }
  static Clock::duration to_wait_duration(const Clock::time_point& t) {
    return to_wait_duration(t - Clock::now());
  }
};

using Timer = boost::asio::basic_waitable_timer<Clock, ClockWaitTraits>;

}  // namespace vrrp
