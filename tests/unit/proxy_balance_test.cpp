#define BOOST_TEST_MODULE proxy_balance
#include <boost/test/unit_test.hpp>

#include "proxy/balance.h"
#include "proxy/pipe_pool.h"

#include <fcntl.h>

#include <algorithm>
#include <optional>

using proxy::Candidate;
using proxy::choose;
using proxy::elect_first;
using proxy::npos;

namespace {
std::vector<Candidate> c(std::initializer_list<std::pair<bool, uint64_t>> l) {
  std::vector<Candidate> v;
  for (auto [e, s] : l) v.push_back({e, s});
  return v;
}
}  // namespace

BOOST_AUTO_TEST_CASE(none_eligible_means_no_choice) {
  for (auto b : {cfg::Balance::first, cfg::Balance::roundrobin, cfg::Balance::leastconn}) {
    BOOST_TEST(!choose(b, c({{false, 0}, {false, 0}}), npos, 7).has_value());
    BOOST_TEST(!choose(b, {}, npos, 0).has_value());
  }
}

BOOST_AUTO_TEST_CASE(first_takes_the_eligible_backend) {
  BOOST_TEST(*choose(cfg::Balance::first, c({{false, 0}, {true, 0}}), npos, 0) == 1u);
  BOOST_TEST(*choose(cfg::Balance::first, c({{true, 0}, {false, 0}}), npos, 0) == 0u);
}

BOOST_AUTO_TEST_CASE(first_keeps_current_when_two_are_eligible) {
  // catalog02 is current; catalog01 also starts answering 200 (split brain):
  // stay on catalog02, do not flap to the first in config order.
  auto two = c({{true, 0}, {true, 0}});
  BOOST_TEST(elect_first(two, 1) == 1u);
  BOOST_TEST(*choose(cfg::Balance::first, two, 1, 0) == 1u);
  // Without a current backend, config order decides.
  BOOST_TEST(elect_first(two, npos) == 0u);
}

BOOST_AUTO_TEST_CASE(first_moves_when_current_goes_down) {
  BOOST_TEST(elect_first(c({{true, 0}, {false, 0}}), 1) == 0u);
  BOOST_TEST(elect_first(c({{false, 0}, {false, 0}}), 1) == npos);
  BOOST_TEST(elect_first(c({{false, 0}, {true, 0}}), 7) == 1u);  // stale index
}

BOOST_AUTO_TEST_CASE(roundrobin_cycles_over_eligible_only) {
  auto v = c({{true, 0}, {false, 0}, {true, 0}, {true, 0}});
  std::vector<size_t> got;
  for (uint64_t t = 0; t < 6; ++t) got.push_back(*choose(cfg::Balance::roundrobin, v, npos, t));
  std::vector<size_t> want{0, 2, 3, 0, 2, 3};
  BOOST_TEST(got == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(leastconn_prefers_fewest_sessions) {
  auto v = c({{true, 5}, {true, 2}, {false, 0}, {true, 9}});
  for (uint64_t t = 0; t < 4; ++t) BOOST_TEST(*choose(cfg::Balance::leastconn, v, npos, t) == 1u);
}

BOOST_AUTO_TEST_CASE(leastconn_ties_rotate) {
  auto v = c({{true, 1}, {true, 1}, {true, 3}});
  BOOST_TEST(*choose(cfg::Balance::leastconn, v, npos, 0) == 0u);
  BOOST_TEST(*choose(cfg::Balance::leastconn, v, npos, 1) == 1u);
  BOOST_TEST(*choose(cfg::Balance::leastconn, v, npos, 2) == 0u);
}

BOOST_AUTO_TEST_CASE(pipe_pool_reuses_and_caps_spares) {
  proxy::PipePool pool(2);
  auto a = pool.acquire(), b = pool.acquire(), d = pool.acquire();
  BOOST_TEST(bool(a));
  BOOST_TEST(pool.in_use() == 3u);
  int a_rd = a.rd;
  pool.release(a);
  BOOST_TEST(!bool(a));
  pool.release(b);
  pool.release(d);  // over the cap: closed, not kept
  BOOST_TEST(pool.spare() == 2u);
  BOOST_TEST(pool.in_use() == 0u);
  auto e = pool.acquire();
  BOOST_TEST((e.rd == a_rd || pool.spare() == 1u));
  pool.discard(e);
  BOOST_TEST(pool.in_use() == 0u);
}

BOOST_AUTO_TEST_CASE(pipe_pool_trims_spares_left_unused) {
  proxy::PipePool pool(8);
  proxy::Pipe p[3] = {pool.acquire(), pool.acquire(), pool.acquire()};
  for (auto& x : p) pool.release(x);
  BOOST_TEST(pool.spare() == 3u);
  pool.trim();  // first trim only sets the watermark (spares were just made)
  auto q = pool.acquire();  // one used: low water 2
  pool.release(q);
  pool.trim();  // the 2 never touched since the last trim are closed
  BOOST_TEST(pool.spare() == 1u);
  pool.trim();  // untouched for a whole period: closed too
  BOOST_TEST(pool.spare() == 0u);
}

// A pipe is 1 MiB while the budget lasts, the default 64 KiB past it, and
// gives its share back when it is closed (trimmed as a spare, or discarded).
BOOST_AUTO_TEST_CASE(pipe_pool_enlarges_pipes_within_its_budget) {
  proxy::PipeBudget budget(2);
  proxy::PipePool pool(8, budget);
  proxy::Pipe p[3] = {pool.acquire(), pool.acquire(), pool.acquire()};
  BOOST_TEST(::fcntl(p[0].rd, F_GETPIPE_SZ) == proxy::PipeBudget::kBytes);
  BOOST_TEST(::fcntl(p[1].rd, F_GETPIPE_SZ) == proxy::PipeBudget::kBytes);
  BOOST_TEST(::fcntl(p[2].rd, F_GETPIPE_SZ) == 64 * 1024);
  BOOST_TEST((p[0].big && p[1].big && !p[2].big));
  BOOST_TEST(budget.taken() == 2u);
  pool.discard(p[0]);
  BOOST_TEST(budget.taken() == 1u);
  auto q = pool.acquire();  // a new pipe: the share p[0] gave back
  BOOST_TEST(q.big);
  BOOST_TEST(::fcntl(q.rd, F_GETPIPE_SZ) == proxy::PipeBudget::kBytes);
  pool.release(p[2]);  // a small spare
  pool.discard(q);
  auto r = pool.acquire();  // that spare, enlarged with the share q gave back
  BOOST_TEST(r.big);
  BOOST_TEST(::fcntl(r.rd, F_GETPIPE_SZ) == proxy::PipeBudget::kBytes);
  pool.release(r);
  pool.release(p[1]);
  BOOST_TEST(budget.taken() == 2u);  // spares keep their size and their share
  pool.trim();
  pool.trim();
  BOOST_TEST(pool.spare() == 0u);
  BOOST_TEST(budget.taken() == 0u);
}

// Several backends passing at once is logged when it starts, when the set
// changes and when it ends, never again at elections in between (every
// check change and every reload elects).
BOOST_AUTO_TEST_CASE(overlap_is_news_once) {
  using E = proxy::OverlapWatch::Event;
  using V = std::vector<std::string>;
  struct Step {
    V eligible;
    E want;
    V names_after;
  };
  const std::vector<Step> steps = {
      {{}, E::none, {}},
      {{"a"}, E::none, {}},
      {{"a"}, E::none, {}},
      {{"a", "b"}, E::started, {"a", "b"}},
      {{"a", "b"}, E::none, {"a", "b"}},  // a check change elsewhere, a reload
      {{"a", "b"}, E::none, {"a", "b"}},
      {{"a", "b", "c"}, E::changed, {"a", "b", "c"}},
      {{"b", "c"}, E::changed, {"b", "c"}},
      {{"c"}, E::ended, {}},
      {{"c"}, E::none, {}},
      {{}, E::none, {}},
      {{"a", "c"}, E::started, {"a", "c"}},
      {{}, E::ended, {}},
  };
  proxy::OverlapWatch w;
  for (size_t i = 0; i < steps.size(); ++i) {
    BOOST_TEST_CONTEXT("step " << i) {
      BOOST_TEST((w.update(steps[i].eligible) == steps[i].want));
      BOOST_TEST(w.names() == steps[i].names_after, boost::test_tools::per_element());
    }
  }
}

// --- `first` during an overlap: the newer PostgreSQL timeline wins ---------

namespace {
using Timelines = std::vector<std::optional<uint64_t>>;
std::vector<Candidate> eligible(std::initializer_list<bool> l) {
  std::vector<Candidate> v;
  for (bool e : l) v.push_back({e, 0});
  return v;
}
}  // namespace

BOOST_AUTO_TEST_CASE(overlap_moves_to_the_strictly_newer_timeline) {
  // catalog01 (in use) is the old primary on timeline 6, still answering
  // 200; catalog02 was promoted to timeline 7: new sessions go there.
  BOOST_TEST(proxy::elect_first_by_timeline(eligible({true, true}), Timelines{6, 7}, 0) == 1u);
  // Already on the newer one: stays.
  BOOST_TEST(proxy::elect_first_by_timeline(eligible({true, true}), Timelines{6, 7}, 1) == 1u);
  // At start (no current): the newer one, not the first in config order.
  BOOST_TEST(proxy::elect_first_by_timeline(eligible({true, true}), Timelines{6, 7}, npos) == 1u);
  // Three at once: the one highest.
  BOOST_TEST(proxy::elect_first_by_timeline(eligible({true, true, true}), Timelines{7, 9, 8}, 0) == 1u);
}

BOOST_AUTO_TEST_CASE(overlap_keeps_todays_choice_unless_all_known_and_one_highest) {
  auto two = eligible({true, true});
  BOOST_TEST(proxy::elect_first_by_timeline(two, Timelines{7, 7}, 0) == 0u);             // a tie
  BOOST_TEST(proxy::elect_first_by_timeline(two, Timelines{7, 7}, 1) == 1u);
  BOOST_TEST(proxy::elect_first_by_timeline(two, Timelines{6, std::nullopt}, 1) == 1u);  // one unknown
  BOOST_TEST(proxy::elect_first_by_timeline(two, Timelines{std::nullopt, 9}, 0) == 0u);
  BOOST_TEST(proxy::elect_first_by_timeline(two, Timelines{}, 1) == 1u);                 // none read
  BOOST_TEST(proxy::elect_first_by_timeline(two, Timelines{6}, 0) == 0u);                // short list
  // A tie at the top with a lower third: still a tie.
  BOOST_TEST(proxy::elect_first_by_timeline(eligible({true, true, true}), Timelines{8, 5, 8}, 1) == 1u);
}

BOOST_AUTO_TEST_CASE(overlap_never_picks_a_backend_that_is_not_eligible) {
  // catalog03 has the highest timeline but fails its check now: not taken,
  // and the two eligible ones decide between them.
  BOOST_TEST(proxy::elect_first_by_timeline(eligible({true, true, false}), Timelines{6, 7, 99}, 0) == 1u);
  // One eligible: no overlap, today's rule (a timeline of a node that does
  // not pass is not a reason to leave the one that does).
  BOOST_TEST(proxy::elect_first_by_timeline(eligible({true, false}), Timelines{6, 7}, 0) == 0u);
  BOOST_TEST(proxy::elect_first_by_timeline(eligible({false, true}), Timelines{9, 7}, 0) == 1u);
  BOOST_TEST(proxy::elect_first_by_timeline(eligible({false, false}), Timelines{9, 7}, 0) == npos);
  BOOST_TEST(proxy::elect_first_by_timeline(eligible({}), Timelines{}, npos) == npos);
}

// Every combination of up to four backends (eligible or not; timeline
// unknown, 1, 2 or 3) and every current (none, each, a stale index), against
// the rule as stated: the one eligible backend with the strictly highest
// timeline when two or more are eligible and all of theirs are known, else
// elect_first's choice.
BOOST_AUTO_TEST_CASE(overlap_rule_exhaustive) {
  const std::optional<uint64_t> values[] = {std::nullopt, 1, 2, 3};
  size_t checked = 0, moved = 0;
  for (size_t n = 0; n <= 4; ++n) {
    size_t combos = 1;
    for (size_t i = 0; i < n; ++i) combos *= 8;
    for (size_t code = 0; code < combos; ++code) {
      std::vector<Candidate> cands(n);
      Timelines tl(n);
      size_t k = code;
      for (size_t i = 0; i < n; ++i, k /= 8) {
        cands[i].eligible = (k % 8) >= 4;
        tl[i] = values[k % 4];
      }
      for (size_t current : {npos, size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{4}}) {
        size_t want = elect_first(cands, current);
        std::vector<size_t> in;
        for (size_t i = 0; i < n; ++i)
          if (cands[i].eligible) in.push_back(i);
        bool all_known = in.size() >= 2;
        for (size_t i : in) all_known = all_known && tl[i].has_value();
        if (all_known) {
          uint64_t top = 0;
          for (size_t i : in) top = std::max(top, *tl[i]);
          std::vector<size_t> at_top;
          for (size_t i : in)
            if (*tl[i] == top) at_top.push_back(i);
          if (at_top.size() == 1) want = at_top[0];
        }
        const size_t got = proxy::elect_first_by_timeline(cands, tl, current);
        BOOST_TEST_CONTEXT("n=" << n << " code=" << code << " current=" << current) {
          BOOST_TEST(got == want);
          if (got != npos) BOOST_TEST(cands[got].eligible);
        }
        moved += got != elect_first(cands, current) ? 1 : 0;
        ++checked;
      }
    }
  }
  BOOST_TEST(moved > 0u);
  BOOST_TEST(checked > 20000u);
}

BOOST_AUTO_TEST_CASE(timeline_retry_backs_off_within_bounds) {
  using std::chrono::milliseconds;
  using proxy::timeline_retry_after;
  // The default interval (2 s): 2, 4, 8, then 10 s for as long as it fails.
  BOOST_TEST(timeline_retry_after(milliseconds(2000), 1).count() == 2000);
  BOOST_TEST(timeline_retry_after(milliseconds(2000), 2).count() == 4000);
  BOOST_TEST(timeline_retry_after(milliseconds(2000), 3).count() == 8000);
  BOOST_TEST(timeline_retry_after(milliseconds(2000), 4).count() == 10000);
  BOOST_TEST(timeline_retry_after(milliseconds(2000), 1000000).count() == 10000);
  // A short interval does not read a failing node more than every 2 s.
  BOOST_TEST(timeline_retry_after(milliseconds(100), 1).count() == 2000);
  BOOST_TEST(timeline_retry_after(milliseconds(0), 0).count() == 2000);
  // A long interval: at the interval, never sooner.
  BOOST_TEST(timeline_retry_after(milliseconds(30000), 1).count() == 30000);
  BOOST_TEST(timeline_retry_after(milliseconds(30000), 5).count() == 30000);
  for (unsigned f = 1; f < 100; ++f) {
    const auto d = timeline_retry_after(milliseconds(250), f);
    BOOST_TEST(d.count() >= 2000);
    BOOST_TEST(d.count() <= 10000);
    BOOST_TEST(d >= timeline_retry_after(milliseconds(250), f - 1 ? f - 1 : 1));
  }
}

BOOST_AUTO_TEST_CASE(timeline_reread_is_slow) {
  using std::chrono::milliseconds;
  using proxy::timeline_reread_after;
  BOOST_TEST(timeline_reread_after(milliseconds(0)).count() == 10000);
  BOOST_TEST(timeline_reread_after(milliseconds(200)).count() == 10000);
  BOOST_TEST(timeline_reread_after(milliseconds(2000)).count() == 10000);
  BOOST_TEST(timeline_reread_after(milliseconds(3000)).count() == 15000);
  // Never sooner than a retry after a failure.
  for (long ms : {0L, 100L, 2000L, 5000L, 60000L})
    for (unsigned f = 1; f < 10; ++f)
      BOOST_TEST(timeline_reread_after(milliseconds(ms)) >= proxy::timeline_retry_after(milliseconds(ms), f));
}
