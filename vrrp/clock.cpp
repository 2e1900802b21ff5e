#include "vrrp/clock.h"

namespace vrrp {

namespace {
// Read and written on the thread that runs the engines (the daemon's
// control thread; the test's own thread).
bool manual_mode = false;
Clock::time_point manual_now{};
}  // namespace

Clock::time_point Clock::now() noexcept { return manual_mode ? manual_now : std::chrono::steady_clock::now(); }

void Clock::use_manual() {
  manual_now = std::chrono::steady_clock::now();
  manual_mode = true;
}

void Clock::use_real() { manual_mode = false; }

void Clock::advance(duration d) { manual_now += d; }

bool Clock::manual() { return manual_mode; }

}  // namespace vrrp
