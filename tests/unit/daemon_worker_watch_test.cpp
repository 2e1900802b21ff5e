// daemon/worker_watch: which worker's event loop has stopped turning, given
// the heartbeats posted at each watchdog ping and what each worker answered.
#define BOOST_TEST_MODULE worker_watch
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <vector>

#include "daemon/worker_watch.h"

using daemon_::WorkerWatch;
using namespace std::chrono_literals;

namespace {
const WorkerWatch::Clock::time_point t0{};
constexpr auto kLimit = 5s;  // half of WatchdogSec=10s
}  // namespace

BOOST_AUTO_TEST_CASE(nothing_posted_yet_every_worker_is_due) {
  WorkerWatch w(3);
  std::vector<uint64_t> answered(3, 0);
  BOOST_TEST(!w.check(answered, t0 + 1h, kLimit).has_value());
  for (size_t i = 0; i < 3; ++i) BOOST_TEST(w.due(i, answered));
}

BOOST_AUTO_TEST_CASE(answered_workers_are_due_and_never_stuck) {
  WorkerWatch w(2);
  std::vector<uint64_t> answered(2, 0);
  for (int ping = 0; ping < 10; ++ping) {
    const auto now = t0 + ping * kLimit;
    BOOST_TEST(!w.check(answered, now, kLimit).has_value());
    for (size_t i = 0; i < 2; ++i) {
      BOOST_TEST(w.due(i, answered));
      answered[i] = w.sent(i, now);  // each loop answers at its next turn
    }
  }
}

BOOST_AUTO_TEST_CASE(a_worker_silent_for_the_limit_is_stuck_with_its_index_and_time) {
  WorkerWatch w(3);
  std::vector<uint64_t> answered(3, 0);
  for (size_t i = 0; i < 3; ++i) w.sent(i, t0);
  answered[0] = 1;
  answered[2] = 3;  // worker 1 never ran its heartbeat
  auto late = w.check(answered, t0 + 2s, kLimit);
  BOOST_TEST(!late.has_value());  // late, not yet stuck
  BOOST_TEST(!w.due(1, answered));  // no second heartbeat queued behind the first
  BOOST_TEST(w.due(0, answered));
  late = w.check(answered, t0 + kLimit, kLimit);
  BOOST_REQUIRE(late.has_value());
  BOOST_TEST(late->worker == 1u);
  BOOST_TEST(late->for_.count() == 5000);
}

BOOST_AUTO_TEST_CASE(an_old_answer_does_not_count_for_a_newer_heartbeat) {
  WorkerWatch w(1);
  std::vector<uint64_t> answered{0};
  answered[0] = w.sent(0, t0);
  const auto second = w.sent(0, t0 + kLimit);  // the loop stops after answering the first
  BOOST_TEST(second > answered[0]);
  BOOST_TEST(!w.due(0, answered));
  auto late = w.check(answered, t0 + 2 * kLimit, kLimit);
  BOOST_REQUIRE(late.has_value());
  BOOST_TEST(late->worker == 0u);
  // It turns again: due once more, not stuck.
  answered[0] = second;
  BOOST_TEST(!w.check(answered, t0 + 3 * kLimit, kLimit).has_value());
  BOOST_TEST(w.due(0, answered));
}

BOOST_AUTO_TEST_CASE(the_lowest_stuck_worker_is_named) {
  WorkerWatch w(4);
  std::vector<uint64_t> answered(4, 0);
  for (size_t i = 0; i < 4; ++i) w.sent(i, t0 + std::chrono::seconds(i));
  answered[0] = 1;
  answered[1] = 2;
  auto late = w.check(answered, t0 + 10s, kLimit);
  BOOST_REQUIRE(late.has_value());
  BOOST_TEST(late->worker == 2u);
  BOOST_TEST(late->for_.count() == 8000);
}

// Without systemd's watchdog (kWorkerWatchPeriod): every worker's state is
// kept, and each change is told once, for the log, /status and /metrics.
BOOST_AUTO_TEST_CASE(update_tells_a_worker_stuck_once_then_turning_again) {
  using Change = WorkerWatch::Change;
  WorkerWatch w(3);
  std::vector<uint64_t> answered(3, 0);
  auto ping = [&](WorkerWatch::Clock::time_point now) {
    auto changes = w.update(answered, now, kLimit);
    for (size_t i = 0; i < 3; ++i)
      if (w.due(i, answered)) w.sent(i, now);
    return changes;
  };
  BOOST_TEST(ping(t0).empty());
  answered = {1, 0, 3};  // worker 1 does not run its heartbeat
  BOOST_TEST(ping(t0 + 2s).empty());  // late, not stuck
  BOOST_TEST(w.stuck().empty());
  BOOST_TEST((ping(t0 + kLimit) == std::vector<Change>{{1, true, 5000ms}}));
  BOOST_TEST((w.stuck() == std::vector<size_t>{1}));
  answered[0] = 4;
  answered[2] = 5;
  // Still stuck: not told again.
  BOOST_TEST(ping(t0 + 2 * kLimit).empty());
  BOOST_TEST((w.stuck() == std::vector<size_t>{1}));
  // Worker 2 stops too: only it is told.
  answered[0] = 6;
  BOOST_TEST((ping(t0 + 3 * kLimit) == std::vector<Change>{{2, true, 5000ms}}));
  BOOST_TEST((w.stuck() == std::vector<size_t>{1, 2}));
  // Worker 1 turns again (it answers heartbeat 2): told with how long it had
  // waited at the last look, and due for a new heartbeat.
  answered[1] = 2;
  answered[0] = 8;
  BOOST_TEST((ping(t0 + 4 * kLimit) == std::vector<Change>{{1, false, 15000ms}}));
  BOOST_TEST((w.stuck() == std::vector<size_t>{2}));
  BOOST_TEST(!w.due(1, answered));  // its new heartbeat is out
}

BOOST_AUTO_TEST_CASE(update_agrees_with_check_on_the_first_stuck_worker) {
  WorkerWatch w(2), v(2);
  std::vector<uint64_t> answered(2, 0);
  for (size_t i = 0; i < 2; ++i) {
    w.sent(i, t0);
    v.sent(i, t0);
  }
  answered[0] = 1;
  const auto late = v.check(answered, t0 + kLimit, kLimit);
  const auto changes = w.update(answered, t0 + kLimit, kLimit);
  BOOST_REQUIRE(late.has_value());
  BOOST_REQUIRE(changes.size() == 1u);
  BOOST_TEST(changes[0].worker == late->worker);
  BOOST_TEST(changes[0].for_ == late->for_);
}
