// The pure VIP bookkeeping (vrrp/vips.h): desired vs. actual, back-off,
// the master's give-up bound, when to look again. No kernel, no clock.
#define BOOST_TEST_MODULE vrrp_vips
#include <boost/test/unit_test.hpp>

#include <ostream>

#include "vrrp/vips.h"

namespace vrrp::vips {
std::ostream& operator<<(std::ostream& o, Presence p) { return o << to_string(p); }
std::ostream& operator<<(std::ostream& o, Op op) { return o << int(op); }
std::ostream& operator<<(std::ostream& o, Claim c) { return o << to_string(c); }
}  // namespace vrrp::vips

using namespace vrrp::vips;
using namespace std::chrono_literals;

namespace {
constexpr TimePoint at(std::chrono::milliseconds ms) { return std::chrono::duration_cast<TimePoint>(ms); }
const Policy k100 = policy_for(100ms, true);  // VRRPv3 at 100 ms, as MASTER
}  // namespace

BOOST_AUTO_TEST_CASE(policy_follows_the_advert_interval) {
  BOOST_TEST(k100.retry_base.count() == Duration(100ms).count());
  BOOST_TEST(k100.give_up_after.count() == Duration(300ms).count());
  BOOST_TEST(k100.verify_every.count() == Duration(1s).count());  // MASTER: at most once a second (a dump)
  BOOST_TEST(policy_for(2s, true).verify_every.count() == Duration(2s).count());
  const Policy v2 = policy_for(1s, false);
  BOOST_TEST(v2.retry_base.count() == Duration(1s).count());
  BOOST_TEST(v2.give_up_after.count() == Duration(3s).count());
  BOOST_TEST(v2.verify_every.count() == Duration(5s).count());  // not MASTER: every few seconds
  BOOST_TEST(policy_for(3s, true).retry_base.count() == Duration(1s).count());    // at most 1 s
  BOOST_TEST(policy_for(5ms, true).retry_base.count() == Duration(10ms).count());  // at least 10 ms
}

BOOST_AUTO_TEST_CASE(backoff_doubles_to_the_cap) {
  const std::pair<unsigned, std::chrono::milliseconds> rows[] = {
      {0, 0ms}, {1, 100ms}, {2, 200ms}, {3, 400ms}, {4, 800ms}, {6, 3200ms}, {7, 5000ms}, {40, 5000ms}};
  for (auto [failures, want] : rows) BOOST_TEST(backoff(failures, k100).count() == Duration(want).count(), failures);
}

// What is due for each (desired, actual, back-off) combination.
BOOST_AUTO_TEST_CASE(due_table) {
  struct Row {
    bool want;
    Presence actual;
    unsigned failures;
    std::chrono::milliseconds retry_at, now;
    Op op;
  };
  const Row rows[] = {
      {true, Presence::present, 0, 0ms, 0ms, Op::none},
      {true, Presence::absent, 0, 0ms, 0ms, Op::add},
      {true, Presence::unknown, 0, 0ms, 0ms, Op::add},  // settled by an idempotent add
      {false, Presence::absent, 0, 0ms, 0ms, Op::none},
      {false, Presence::present, 0, 0ms, 0ms, Op::del},
      {false, Presence::unknown, 0, 0ms, 0ms, Op::del},
      {true, Presence::absent, 2, 500ms, 499ms, Op::none},  // backing off
      {true, Presence::absent, 2, 500ms, 500ms, Op::add},
      {false, Presence::present, 9, 500ms, 100ms, Op::none},
      {false, Presence::present, 9, 500ms, 501ms, Op::del},
  };
  for (const auto& r : rows) {
    Slot s;
    s.actual = r.actual;
    s.failures = r.failures;
    s.retry_at = at(r.retry_at);
    BOOST_TEST(due(r.want, s, at(r.now)) == r.op);
  }
}

BOOST_AUTO_TEST_CASE(only_the_kernel_answer_changes_the_actual_state) {
  Slot s;
  want_changed(s, true, at(0ms));
  BOOST_TEST(s.actual == Presence::unknown);
  BOOST_TEST(s.unmet_since.has_value());
  record(s, true, Op::add, "No such device", at(0ms), k100);
  BOOST_TEST(s.actual == Presence::unknown);  // refused: not present
  BOOST_TEST(s.failures == 1u);
  BOOST_TEST(s.last_error == "No such device");
  BOOST_TEST((s.retry_at == at(100ms)));
  record(s, true, Op::add, "No such device", at(100ms), k100);
  BOOST_TEST((s.retry_at == at(300ms)));
  BOOST_TEST(!give_up(true, {s}, at(299ms), k100));
  BOOST_TEST(give_up(true, {s}, at(300ms), k100));  // 3 x advert_int since the transition
  record(s, true, Op::add, "", at(300ms), k100);
  BOOST_TEST(s.actual == Presence::present);
  BOOST_TEST(s.failures == 0u);
  BOOST_TEST(s.last_error.empty());
  BOOST_TEST(!s.unmet_since.has_value());
  BOOST_TEST(!give_up(true, {s}, at(900ms), k100));
  // A failed delete leaves the address where it was: present, not wanted.
  want_changed(s, false, at(1000ms));
  record(s, false, Op::del, "Operation not permitted", at(1000ms), k100);
  BOOST_TEST(s.actual == Presence::present);
  BOOST_TEST(!in_sync(false, s));
  BOOST_TEST(!give_up(false, {s}, at(9000ms), k100));  // only a master gives up
  record(s, false, Op::del, "", at(1100ms), k100);
  BOOST_TEST(s.actual == Presence::absent);
  BOOST_TEST(in_sync(false, s));
}

BOOST_AUTO_TEST_CASE(observations_from_the_kernel) {
  Slot s;
  want_changed(s, true, at(0ms));
  record(s, true, Op::add, "", at(0ms), k100);
  // Removed behind our back: absent, unmet from now, due at once.
  observe(s, true, false, at(50ms));
  BOOST_TEST(s.actual == Presence::absent);
  BOOST_TEST((s.unmet_since == at(50ms)));
  BOOST_TEST(due(true, s, at(50ms)) == Op::add);
  // ... even in the middle of a back-off from earlier failures.
  record(s, true, Op::add, "No such device", at(50ms), k100);
  observe(s, true, true, at(60ms));   // someone put it back
  observe(s, true, false, at(70ms));  // and took it away again
  BOOST_TEST(due(true, s, at(70ms)) == Op::add);
  BOOST_TEST((s.unmet_since == at(70ms)));
  // Lost events: unknown, settled by the idempotent operation.
  forget(s, true, at(80ms));
  BOOST_TEST(s.actual == Presence::unknown);
  BOOST_TEST(due(true, s, at(80ms)) == Op::add);
}

BOOST_AUTO_TEST_CASE(next_wake_is_the_earliest_of_retry_give_up_and_check) {
  Slot ok;
  ok.actual = Presence::present;
  BOOST_TEST((next_wake(true, {ok}, at(0ms), at(20ms), k100) == at(1000ms)));  // the periodic check (a second as MASTER)
  Slot failing;
  want_changed(failing, true, at(0ms));
  record(failing, true, Op::add, "x", at(0ms), k100);
  record(failing, true, Op::add, "x", at(100ms), k100);  // next retry at 300 ms
  const Policy slow_check = policy_for(100ms, false);     // checks every 5 s
  BOOST_TEST((next_wake(true, {ok, failing}, at(100ms), at(100ms), slow_check) == at(300ms)));
  Slot fresh;  // no failure yet: due now
  fresh.actual = Presence::absent;
  BOOST_TEST((next_wake(true, {fresh}, at(0ms), at(42ms), k100) == at(42ms)));
}

// Whose is an address found on the VIP's device when an instance starts
// (vips::claim_at_start). Only what is ours is removed: each entry marked
// by us (IFA_PROTO 112), or held by a running instance of this daemon. The
// host's own address (RFC 5798's address owner set-up, or the node's own
// address typed as the VIP) is never ours, nor is anything the kernel would
// not show us.
BOOST_AUTO_TEST_CASE(claim_at_start_table) {
  using E = std::vector<Entry>;
  const Entry ours24{24, kVipAddressProtocol}, ours32{32, kVipAddressProtocol};
  const Entry host24{24, 0}, other_prog{32, 4}, kernel_ll{64, 3};
  struct Row {
    std::optional<E> entries;
    bool held;
    Claim want;
  } rows[] = {
      {E{}, false, Claim::free},                       // not there: nothing to decide
      {E{ours24}, false, Claim::ours},                 // a killed run of ours left it
      {E{ours24, ours32}, false, Claim::ours},         // ... twice, the prefix edited in between
      {E{host24}, false, Claim::not_ours},             // the host's own address (owner set-up, or a typo)
      {E{host24, ours32}, false, Claim::not_ours},     // the host's /24 with a /32 of ours on top
      {E{other_prog}, false, Claim::not_ours},         // another program's mark
      {E{kernel_ll}, false, Claim::not_ours},          // a link-local the kernel made
      {std::nullopt, false, Claim::unknown},           // no dump: cannot tell
      {E{host24}, true, Claim::ours},                  // a running instance of ours holds it (reload)
      {std::nullopt, true, Claim::ours},
  };
  for (const auto& r : rows) BOOST_TEST(claim_at_start(r.entries, r.held) == r.want);
}

// The VIP is an address of another device of the host (eth1's address typed
// as the VIP of an instance on eth0): refused, unless a running instance of
// ours holds it there (a reload moving it) or it is an IPv6 link-local
// address (scoped to its link: the same text on another link is another
// address).
BOOST_AUTO_TEST_CASE(taken_elsewhere_rules) {
  const auto v4 = vrrp::IpAddress::v4(10, 88, 85, 151);
  const Elsewhere eth1{"eth1", 3, {24, 0}}, lo{"lo", 1, {32, 0}}, ours_eth2{"eth2", 4, {24, kVipAddressProtocol}};
  auto none = [](const Elsewhere&) { return false; };
  BOOST_TEST(taken_elsewhere(v4, {}, none).empty());
  BOOST_TEST((taken_elsewhere(v4, {eth1}, none) == std::vector<Elsewhere>{eth1}));
  BOOST_TEST((taken_elsewhere(v4, {lo, eth1}, nullptr) == std::vector<Elsewhere>{lo, eth1}));
  // A leftover of ours on another device is not removed by us: refused too.
  BOOST_TEST((taken_elsewhere(v4, {ours_eth2}, none) == std::vector<Elsewhere>{ours_eth2}));
  // Held there by a running instance: it goes with that instance.
  auto held_on_eth2 = [](const Elsewhere& e) { return e.device == "eth2"; };
  BOOST_TEST((taken_elsewhere(v4, {eth1, ours_eth2}, held_on_eth2) == std::vector<Elsewhere>{eth1}));
  auto ll = vrrp::IpAddress::parse("fe80::1");
  BOOST_REQUIRE(ll.has_value());
  BOOST_TEST(taken_elsewhere(*ll, {Elsewhere{"eth1", 3, {64, 0}}}, none).empty());
  auto global = vrrp::IpAddress::parse("2001:db8::1");
  BOOST_REQUIRE(global.has_value());
  BOOST_TEST(taken_elsewhere(*global, {Elsewhere{"eth1", 3, {64, 0}}}, none).size() == 1u);
}
