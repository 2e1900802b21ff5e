// health::CheckSchedule is pure: every scenario is a table of results with the
// state, the eligibility change and the next delay expected after each one.
#define BOOST_TEST_MODULE health_schedule
#include <boost/test/unit_test.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "health/schedule.h"

using health::CheckSchedule;
using health::first_delay;
using ms = std::chrono::milliseconds;
using State = CheckSchedule::State;

namespace health {
std::ostream& operator<<(std::ostream& os, CheckSchedule::State s) { return os << to_string(s); }
}  // namespace health

namespace {

constexpr ms kInterval{2000};
constexpr ms kFast{500};

// One scenario: results '+' (success) / '-' (failure); after each result the
// state ('U' up, 'D' down), whether eligibility changed ('*' yes, '.' no) and
// the next delay ('i' interval, 'f' fast_interval).
struct Scenario {
  const char* name;
  unsigned rise, fall;
  std::string results, states, changes, delays;
};

const std::vector<Scenario> kScenarios = {
    // First result decides at once, then smoothing applies.
    {"first success is UP at once", 2, 3, "+", "U", "*", "i"},
    {"first failure is DOWN at once", 2, 3, "-", "D", ".", "i"},
    {"steady UP", 2, 3, "+++++", "UUUUU", "*....", "iiiii"},
    {"steady DOWN", 2, 3, "-----", "DDDDD", ".....", "iiiii"},
    // UP -> DOWN after fall consecutive failures, fast interval meanwhile.
    {"UP falls after 3", 2, 3, "+---", "UUUD", "*..*", "iffi"},
    {"DOWN rises after 2", 2, 3, "-++", "DDU", "..*", "ifi"},
    {"full cycle", 2, 3, "+---++", "UUUDDU", "*..*.*", "iffifi"},
    // A success in the middle of a fall resets the count (consecutive).
    {"interrupted fall", 2, 3, "+--+---", "UUUUUUD", "*.....*", "iffiffi"},
    {"interrupted rise", 2, 3, "-+-++", "DDDDU", "....*", "ififi"},
    // Alternating flaps never reach the opposite state with rise 2 / fall 3.
    {"flap from UP", 2, 3, "+-+-+-+-+-", "UUUUUUUUUU", "*.........", "ififififif"},
    {"flap from DOWN", 2, 3, "-+-+-+-+-+", "DDDDDDDDDD", "..........", "ififififif"},
    {"double flaps from UP", 2, 3, "+--+--+--+", "UUUUUUUUUU", "*.........", "iffiffiffi"},
    // rise 1 / fall 1: every result decides, never transitioning.
    {"rise1 fall1", 1, 1, "+-+--++-", "UDUDDUUD", "****.*.*", "iiiiiiii"},
    {"rise1 fall1 unknown->down", 1, 1, "-+", "DU", ".*", "ii"},
    // rise 1 only: one success is enough, falls are smoothed.
    {"rise1 fall3", 1, 3, "+---+", "UUUDU", "*..**", "iffii"},
    // fall 1 only: one failure is enough, rises are smoothed.
    {"rise3 fall1", 3, 1, "+-++++-", "UDDDUUD", "**..*.*", "iiffiii"},
    // Counts past the threshold keep the state (no double transition).
    {"long outage", 2, 2, "+-----++++", "UUDDDDDUUU", "*.*....*..", "ifiiiifiii"},
};

}  // namespace

BOOST_AUTO_TEST_CASE(table_driven_sequences) {
  for (const auto& sc : kScenarios) {
    BOOST_TEST_CONTEXT("scenario '" << sc.name << "'") {
      const std::string& changes = sc.changes;
      const std::string& delays = sc.delays;
      BOOST_REQUIRE_EQUAL(sc.results.size(), sc.states.size());
      BOOST_REQUIRE_EQUAL(sc.results.size(), changes.size());
      BOOST_REQUIRE_EQUAL(sc.results.size(), delays.size());

      CheckSchedule s(kInterval, kFast, sc.rise, sc.fall);
      BOOST_TEST(s.state() == State::unknown);
      BOOST_TEST(!s.up());
      BOOST_TEST(!s.transitioning());
      uint64_t transitions = 0;
      for (std::size_t i = 0; i < sc.results.size(); ++i) {
        BOOST_TEST_CONTEXT("after result #" << i + 1 << " '" << sc.results[i] << "'") {
          const bool changed = s.on_result(sc.results[i] == '+');
          if (changed) ++transitions;
          BOOST_TEST((s.up() ? 'U' : 'D') == sc.states[i]);
          BOOST_TEST(s.state() == (sc.states[i] == 'U' ? State::up : State::down));
          BOOST_TEST(changed == (changes[i] == '*'));
          const ms want = delays[i] == 'f' ? kFast : kInterval;
          BOOST_TEST(s.next_delay().count() == want.count());
          BOOST_TEST(s.transitioning() == (delays[i] == 'f'));
        }
      }
      BOOST_TEST(s.transitions() == transitions);
      BOOST_TEST(s.checks() == sc.results.size());
    }
  }
}

BOOST_AUTO_TEST_CASE(counters_follow_results) {
  CheckSchedule s(kInterval, kFast, 2, 3);
  s.on_result(true);
  BOOST_TEST(s.consecutive_successes() == 1u);
  BOOST_TEST(s.consecutive_failures() == 0u);
  s.on_result(false);
  s.on_result(false);
  BOOST_TEST(s.consecutive_successes() == 0u);
  BOOST_TEST(s.consecutive_failures() == 2u);
  BOOST_TEST(s.failures_total() == 2u);
  s.on_result(false);
  BOOST_TEST(!s.up());
  BOOST_TEST(s.consecutive_failures() == 3u);
  s.on_result(false);  // keeps counting while DOWN
  BOOST_TEST(s.consecutive_failures() == 4u);
  BOOST_TEST(s.failures_total() == 4u);
  BOOST_TEST(s.checks() == 5u);
  BOOST_TEST(s.transitions() == 2u);  // unknown->UP, UP->DOWN
}

BOOST_AUTO_TEST_CASE(state_changed_includes_unknown_to_down) {
  CheckSchedule s(kInterval, kFast, 2, 3);
  BOOST_TEST(!s.on_result(false));  // eligibility unchanged (not eligible before)...
  BOOST_TEST(s.state_changed());    // ...but the state is now known
  BOOST_TEST(s.transitions() == 0u);
  BOOST_TEST(!s.on_result(false));
  BOOST_TEST(!s.state_changed());
  BOOST_TEST(!s.on_result(true));
  BOOST_TEST(!s.state_changed());
  BOOST_TEST(s.on_result(true));
  BOOST_TEST(s.state_changed());
  BOOST_TEST(s.transitions() == 1u);
}

BOOST_AUTO_TEST_CASE(zero_rise_fall_act_as_one) {
  CheckSchedule s(kInterval, kFast, 0, 0);
  BOOST_TEST(s.rise() == 1u);
  BOOST_TEST(s.fall() == 1u);
  s.on_result(true);
  BOOST_TEST(s.on_result(false));
  BOOST_TEST(!s.up());
  BOOST_TEST(s.on_result(true));
  BOOST_TEST(s.up());
}

BOOST_AUTO_TEST_CASE(fast_interval_defaults_to_interval) {
  CheckSchedule s(kInterval, ms{0}, 2, 3);
  s.on_result(true);
  s.on_result(false);
  BOOST_TEST(s.transitioning());
  BOOST_TEST(s.next_delay().count() == kInterval.count());
}

BOOST_AUTO_TEST_CASE(built_from_check_rule) {
  cfg::Check rule;  // defaults: 2s / 500ms / rise 2 / fall 3
  CheckSchedule s(rule);
  BOOST_TEST(s.interval().count() == 2000);
  BOOST_TEST(s.fast_interval().count() == 500);
  BOOST_TEST(s.rise() == 2u);
  BOOST_TEST(s.fall() == 3u);
  BOOST_TEST(s.next_delay().count() == 2000);  // before any result
}

BOOST_AUTO_TEST_CASE(state_names) {
  BOOST_TEST(std::string(health::to_string(State::unknown)) == "unknown");
  BOOST_TEST(std::string(health::to_string(State::up)) == "UP");
  BOOST_TEST(std::string(health::to_string(State::down)) == "DOWN");
}

BOOST_AUTO_TEST_CASE(first_delay_spreads_backends) {
  const ms interval{2000};
  BOOST_TEST(first_delay(0, 4, interval).count() == 0);
  BOOST_TEST(first_delay(1, 4, interval).count() == 500);
  BOOST_TEST(first_delay(2, 4, interval).count() == 1000);
  BOOST_TEST(first_delay(3, 4, interval).count() == 1500);
  // Two backends: half an interval apart.
  BOOST_TEST(first_delay(1, 2, interval).count() == 1000);
  // Uneven divisions truncate.
  BOOST_TEST(first_delay(1, 3, ms{1000}).count() == 333);
  BOOST_TEST(first_delay(2, 3, ms{1000}).count() == 666);
}

BOOST_AUTO_TEST_CASE(first_delay_jitter_and_edges) {
  const ms interval{2000};
  BOOST_TEST(first_delay(1, 4, interval, ms{37}).count() == 537);
  BOOST_TEST(first_delay(0, 4, interval, ms{-100}).count() == 0);   // clamped
  BOOST_TEST(first_delay(1, 4, interval, ms{-100}).count() == 400);
  BOOST_TEST(first_delay(0, 0, interval).count() == 0);             // count 0 -> 1
  BOOST_TEST(first_delay(5, 4, interval).count() == 500);           // index wraps
  BOOST_TEST(first_delay(3, 4, ms{0}, ms{10}).count() == 10);
  BOOST_TEST(first_delay(2, 4, ms{-5}).count() == 0);
  // Large values do not overflow.
  BOOST_TEST(first_delay(9999, 10000, ms{24LL * 3600 * 1000}).count() == 86391360LL);
}

// Every single-step transition from every reachable (state, counter) pair,
// checked against a straightforward reference model.
BOOST_AUTO_TEST_CASE(exhaustive_against_reference_model) {
  for (unsigned rise = 1; rise <= 4; ++rise) {
    for (unsigned fall = 1; fall <= 4; ++fall) {
      // All result sequences up to length 9.
      for (unsigned len = 1; len <= 9; ++len) {
        for (unsigned bits = 0; bits < (1u << len); ++bits) {
          CheckSchedule s(kInterval, kFast, rise, fall);
          int model = -1;  // -1 unknown, 0 down, 1 up
          unsigned ok_run = 0, bad_run = 0;
          for (unsigned i = 0; i < len; ++i) {
            const bool ok = (bits >> i) & 1u;
            if (ok) { ++ok_run; bad_run = 0; } else { ++bad_run; ok_run = 0; }
            const int before = model;
            if (model == -1) model = ok ? 1 : 0;
            else if (model == 1 && bad_run >= fall) model = 0;
            else if (model == 0 && ok_run >= rise) model = 1;
            const bool changed = s.on_result(ok);
            BOOST_REQUIRE_EQUAL(changed, (before == 1) != (model == 1));
            BOOST_REQUIRE_EQUAL(s.up(), model == 1);
            const bool trans = (model == 1 && bad_run > 0) || (model == 0 && ok_run > 0);
            BOOST_REQUIRE_EQUAL(s.transitioning(), trans);
            BOOST_REQUIRE_EQUAL(s.next_delay().count(), (trans ? kFast : kInterval).count());
          }
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(definitive_failure_takes_an_up_backend_down_at_once) {
  CheckSchedule s(ms(2000), ms(500), 2, 3);
  s.on_result(true);
  BOOST_TEST(s.up());
  BOOST_TEST(s.on_definitive_failure());  // Patroni said 503: no waiting for fall
  BOOST_TEST(!s.up());
  BOOST_TEST(s.transitions() == 2u);  // unknown->UP, UP->DOWN
  // A layer-4 failure still needs `fall` results.
  CheckSchedule t(ms(2000), ms(500), 2, 3);
  t.on_result(true);
  BOOST_TEST(!t.on_result(false));
  BOOST_TEST(!t.on_result(false));
  BOOST_TEST(t.on_result(false));
}

BOOST_AUTO_TEST_CASE(definitive_failure_counts_normally_without_down_on_status) {
  CheckSchedule s(ms(2000), ms(500), 2, 3);
  s.set_down_on_status(false);
  s.on_result(true);
  BOOST_TEST(!s.on_definitive_failure());
  BOOST_TEST(!s.on_definitive_failure());
  BOOST_TEST(s.on_definitive_failure());
  BOOST_TEST(!s.up());
}

BOOST_AUTO_TEST_CASE(definitive_failure_on_a_down_backend_is_an_ordinary_failure) {
  CheckSchedule s(ms(2000), ms(500), 2, 3);
  s.on_result(false);
  BOOST_TEST(!s.on_definitive_failure());
  BOOST_TEST(s.state() == State::down);
  BOOST_TEST(s.consecutive_failures() == 2u);
}

BOOST_AUTO_TEST_CASE(urgent_rises_on_one_success_and_checks_fast) {
  CheckSchedule s(ms(2000), ms(200), 3, 3);
  s.on_result(false);  // DOWN
  BOOST_TEST(s.next_delay() == ms(2000));
  s.set_urgent(true);  // the proxy has no eligible backend
  BOOST_TEST(s.next_delay() == ms(100));  // fast_interval, at most 100 ms
  BOOST_TEST(s.on_result(true));  // one success is enough
  BOOST_TEST(s.up());
  BOOST_TEST(s.next_delay() == ms(2000));  // an UP backend is not hurried
  s.set_urgent(false);
  s.on_result(false);
  s.on_result(false);
  s.on_result(false);
  BOOST_TEST(!s.up());
  BOOST_TEST(!s.on_result(true));  // not urgent: rise 3 again
  BOOST_TEST(!s.on_result(true));
  BOOST_TEST(s.on_result(true));
}

BOOST_AUTO_TEST_CASE(urgent_checks_come_at_most_100ms_apart_never_slower_than_fast_interval) {
  CheckSchedule fast(ms(2000), ms(40), 2, 3);
  fast.on_result(false);
  fast.set_urgent(true);
  BOOST_TEST(fast.next_delay() == ms(40));  // a shorter fast_interval stays
  CheckSchedule slow(ms(2000), ms(500), 2, 3);
  slow.on_result(false);
  BOOST_TEST(slow.next_delay() == ms(2000));
  slow.set_urgent(true);
  BOOST_TEST(slow.next_delay() == ms(100));
  slow.on_result(true);  // up: urgency no longer hurries it
  BOOST_TEST(slow.next_delay() == ms(2000));
  slow.on_result(false);  // up and transitioning: fast_interval as configured
  BOOST_TEST(slow.next_delay() == ms(500));
}

// A proxy with no eligible backend for longer than a failover takes (both
// nodes down, no leader for hours) checked every node 10 times a second for
// the whole outage: after kUrgentChecks results the cadence is fast_interval.
BOOST_AUTO_TEST_CASE(urgency_lapses_to_fast_interval_after_a_minute_of_checks) {
  CheckSchedule s(ms(2000), ms(500), 2, 3);
  s.on_result(false);
  s.set_urgent(true);
  for (unsigned i = 0; i + 1 < CheckSchedule::kUrgentChecks; ++i) s.on_result(false);
  BOOST_TEST(s.next_delay() == ms(100));
  s.on_result(false);
  BOOST_TEST(s.next_delay() == ms(500));
  s.set_urgent(true);  // told again while it lasts: no fresh minute
  BOOST_TEST(s.next_delay() == ms(500));
  BOOST_TEST(s.on_result(true));  // one success still enough to rise
  BOOST_TEST(s.up());
  // A new outage is urgent afresh.
  s.set_urgent(false);
  s.on_result(false);
  s.on_result(false);
  s.on_result(false);
  BOOST_TEST(!s.up());
  s.set_urgent(true);
  BOOST_TEST(s.next_delay() == ms(100));
}

BOOST_AUTO_TEST_CASE(down_on_status_comes_from_the_rule) {
  cfg::Check rule;
  rule.down_on_status = false;
  CheckSchedule s(rule);
  s.on_result(true);
  BOOST_TEST(!s.on_definitive_failure());
}

BOOST_AUTO_TEST_CASE(retune_keeps_the_state_and_uses_the_new_timing) {
  cfg::Check rule;
  rule.interval = ms(2000);
  rule.fast_interval = ms(500);
  rule.rise = 2;
  rule.fall = 3;
  CheckSchedule s(rule);
  BOOST_TEST(s.on_result(true));  // the first result decides
  BOOST_TEST(s.up());
  s.on_result(false);  // one failure toward fall 3
  cfg::Check next = rule;
  next.interval = ms(1000);
  next.fast_interval = ms(200);
  next.fall = 2;
  s.retune(next);
  BOOST_TEST(s.up());                      // a reload never takes a backend down by itself
  BOOST_TEST(s.next_delay() == ms(200));   // still transitioning: fast_interval, the new one
  BOOST_TEST(s.on_result(false));          // 2 failures: the new fall
  BOOST_TEST(!s.up());
  BOOST_TEST(s.next_delay() == ms(1000));
}
