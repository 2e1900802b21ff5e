// Over 500 lines: one test binary per component; the cases share the fake clock and LAN defined here.
// The pure VRRP state machine: a transition matrix (every state x event) and
// timed scenarios on a simulated LAN with a fake clock. Nothing here sleeps.
#define BOOST_TEST_MODULE vrrp_fsm
#include <boost/test/unit_test.hpp>

#include <deque>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "vrrp/fsm.h"

using namespace vrrp;
using namespace vrrp::fsm;
using namespace std::chrono_literals;

namespace vrrp::fsm {
std::ostream& operator<<(std::ostream& o, State s) { return o << to_string(s); }
}  // namespace vrrp::fsm

namespace {

constexpr IpAddress kA = IpAddress::v4(10, 88, 1, 151);
constexpr IpAddress kB = IpAddress::v4(10, 88, 1, 152);
constexpr IpAddress kC = IpAddress::v4(10, 88, 1, 153);

std::string kind(const Action& a) {
  static const char* names[] = {"SendAdvert",  "SendAdvertPriorityZero", "StartAdvertTimer",
                                "StartMasterDownTimer", "CancelTimers", "AddVips",
                                "RemoveVips",  "SendGarp", "NotifyState", "StartGarpTimer", "CancelGarpTimer"};
  return names[a.index()];
}

std::string kinds(const std::vector<Action>& as) {
  std::string s;
  for (auto& a : as) s += (s.empty() ? "" : ",") + kind(a);
  return s;
}

Config cfg(uint8_t prio, IpAddress addr, uint8_t version = 2, Duration adv = 1s) {
  Config c;
  c.version = version;
  c.priority = prio;
  c.advert_int = adv;
  c.primary_address = addr;
  return c;
}

// Drives one machine through events; keeps the latest Vars.
struct Machine {
  Config c;
  Vars v;
  explicit Machine(Config cc) : c(cc), v(initial_vars(c)) {}
  std::vector<Action> on(const Event& e, TimePoint now = TimePoint{}) {
    auto s = step(c, v, e, now);
    v = s.vars;
    return s.actions;
  }
};

Machine in_state(State s, Config c = cfg(100, kA)) {
  Machine m(c);
  if (s == State::initialize) return m;
  m.on(Startup{});
  if (s == State::backup) return m;
  if (s == State::fault) { m.on(Fault{}); return m; }
  m.on(MasterDownTimerFired{m.v.generation});
  BOOST_REQUIRE(m.v.state == State::master);
  return m;
}

// ---- simulated LAN: zero-latency multicast, timers on a fake clock ----
struct Node {
  explicit Node(Machine mm) : m(std::move(mm)) {}
  Machine m;
  std::optional<TimePoint> deadline;
  bool timer_is_master_down = false;
  uint64_t timer_gen = 0;
  bool connected = true;  // false: its adverts are lost and it hears nothing
  // Its adverts go nowhere although it still hears: refused by the kernel
  // (sendto fails: AdvertSent{false}), or dropped further on without an
  // error (silently: AdvertSent{true}).
  bool send_fails = false;
  bool send_dropped = false;
  bool vips = false;
  int garps = 0;
  std::vector<std::pair<TimePoint, uint8_t>> sent;       // adverts (time, priority)
  std::vector<std::pair<TimePoint, State>> transitions;  // NotifyState
  std::optional<TimePoint> became(State s) const {
    for (auto it = transitions.rbegin(); it != transitions.rend(); ++it)
      if (it->second == s) return it->first;
    return std::nullopt;
  }
};

struct Lan {
  TimePoint now{};
  std::vector<Node> nodes;
  std::deque<std::pair<std::size_t, Event>> inbox;

  std::size_t add(Config c) {
    nodes.emplace_back(Machine(c));
    return nodes.size() - 1;
  }

  void multicast(std::size_t from, uint8_t prio) {
    nodes[from].sent.emplace_back(now, prio);
    if (!nodes[from].connected || nodes[from].send_fails || nodes[from].send_dropped) return;
    for (std::size_t j = 0; j < nodes.size(); ++j)
      if (j != from && nodes[j].connected)
        inbox.emplace_back(j, AdvertReceived{prio, nodes[from].m.c.primary_address,
                                             nodes[from].m.c.advert_int});
  }

  void deliver(std::size_t i, const Event& e) {
    inbox.emplace_back(i, e);
    while (!inbox.empty()) {
      auto [n, ev] = inbox.front();
      inbox.pop_front();
      execute(n, nodes[n].m.on(ev, now));
    }
  }

  // The engine's job, reduced to bookkeeping.
  void execute(std::size_t i, const std::vector<Action>& actions) {
    Node& n = nodes[i];
    bool sent = false;
    for (auto& a : actions) {
      if (std::holds_alternative<SendAdvert>(a) || std::holds_alternative<SendAdvertPriorityZero>(a)) sent = true;
      std::visit(
          [&](auto&& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, SendAdvert>) multicast(i, x.priority);
            else if constexpr (std::is_same_v<T, SendAdvertPriorityZero>) multicast(i, 0);
            else if constexpr (std::is_same_v<T, StartAdvertTimer>) {
              n.deadline = now + x.delay; n.timer_is_master_down = false; n.timer_gen = x.generation;
            } else if constexpr (std::is_same_v<T, StartMasterDownTimer>) {
              n.deadline = now + x.delay; n.timer_is_master_down = true; n.timer_gen = x.generation;
            } else if constexpr (std::is_same_v<T, CancelTimers>) n.deadline.reset();
            else if constexpr (std::is_same_v<T, AddVips>) n.vips = true;
            else if constexpr (std::is_same_v<T, RemoveVips>) n.vips = false;
            else if constexpr (std::is_same_v<T, SendGarp>) ++n.garps;
            else if constexpr (std::is_same_v<T, NotifyState>) n.transitions.emplace_back(now, x.state);
          },
          a);
    }
    // The engine feeds what became of the step's adverts right after it.
    if (sent) inbox.emplace_front(i, AdvertSent{!n.send_fails});
  }

  void run_until(TimePoint end) {
    for (;;) {
      std::optional<std::size_t> next;
      for (std::size_t i = 0; i < nodes.size(); ++i)
        if (nodes[i].deadline && *nodes[i].deadline <= end &&
            (!next || *nodes[i].deadline < *nodes[*next].deadline))
          next = i;
      if (!next) break;
      Node& n = nodes[*next];
      now = *n.deadline;
      n.deadline.reset();
      if (n.timer_is_master_down) deliver(*next, MasterDownTimerFired{n.timer_gen});
      else deliver(*next, AdvertTimerFired{n.timer_gen});
    }
    now = end;
  }
  void at(TimePoint t, std::size_t i, const Event& e) {
    run_until(t);
    deliver(i, e);
  }
  int masters() const {
    int k = 0;
    for (auto& n : nodes) k += n.m.v.state == State::master;
    return k;
  }
  int vip_holders() const {
    int k = 0;
    for (auto& n : nodes) k += n.vips;
    return k;
  }
};

double secs(TimePoint t) { return std::chrono::duration<double>(t).count(); }

}  // namespace

// ------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(timers_arithmetic)

BOOST_AUTO_TEST_CASE(v2_skew_and_master_down) {
  // RFC 3768 §6.1: Skew_Time = (256 - Priority) / 256 s; 3 * interval + skew.
  auto c = cfg(100, kA, 2);
  BOOST_TEST(skew_time(c, 100, 1s).count() == 609375);
  BOOST_TEST(master_down_interval(c, 100, 1s).count() == 3609375);  // docs/lab-notes.md "~3.6 s"
  BOOST_TEST(skew_time(c, 50, 1s).count() == 804687);
  BOOST_TEST(skew_time(c, 254, 1s).count() == 7812);
}

BOOST_AUTO_TEST_CASE(v3_skew_scales_with_master_adver_interval) {
  // RFC 5798 §6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
  auto c = cfg(100, kA, 3, 100ms);
  BOOST_TEST(skew_time(c, 100, 1s).count() == 609375);
  BOOST_TEST(skew_time(c, 100, 100ms).count() == 60937);
  BOOST_TEST(master_down_interval(c, 100, 100ms).count() == 360937);
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(transition_matrix)

struct Row {
  State from;
  const char* event;
  State to;
  const char* actions;
};

Event make_event(const std::string& name, const Machine& m) {
  if (name == "Startup") return Startup{};
  if (name == "Shutdown") return Shutdown{};
  if (name == "MasterDownTimerFired") return MasterDownTimerFired{m.v.generation};
  if (name == "AdvertTimerFired") return AdvertTimerFired{m.v.generation};
  if (name == "AdvertHigher") return AdvertReceived{200, kB, 1s};
  if (name == "AdvertLower") return AdvertReceived{50, kB, 1s};
  if (name == "AdvertZero") return AdvertReceived{0, kB, 1s};
  if (name == "PriorityChanged") return PriorityChanged{90};
  if (name == "Fault") return Fault{};
  if (name == "FaultCleared") return FaultCleared{};
  throw std::logic_error("unknown event " + name);
}

// Local priority 100 (preempt on, v2); peer kB with 200 / 50 / 0. Timer
// events carry the current generation: stale ones are tested separately.
const Row kMatrix[] = {
    {State::initialize, "Startup", State::backup, "StartMasterDownTimer,NotifyState"},
    {State::initialize, "Shutdown", State::initialize, ""},
    {State::initialize, "MasterDownTimerFired", State::initialize, ""},
    {State::initialize, "AdvertTimerFired", State::initialize, ""},
    {State::initialize, "AdvertHigher", State::initialize, ""},
    {State::initialize, "AdvertLower", State::initialize, ""},
    {State::initialize, "AdvertZero", State::initialize, ""},
    {State::initialize, "PriorityChanged", State::initialize, ""},
    {State::initialize, "Fault", State::fault, "NotifyState"},
    {State::initialize, "FaultCleared", State::initialize, ""},

    {State::backup, "Startup", State::backup, ""},
    {State::backup, "Shutdown", State::initialize, "CancelTimers,NotifyState"},
    {State::backup, "MasterDownTimerFired", State::master,
     "AddVips,SendAdvert,SendGarp,StartAdvertTimer,NotifyState"},
    {State::backup, "AdvertTimerFired", State::backup, ""},
    {State::backup, "AdvertHigher", State::backup, "StartMasterDownTimer"},
    {State::backup, "AdvertLower", State::backup, ""},  // preempt: discard
    {State::backup, "AdvertZero", State::backup, "StartMasterDownTimer"},
    {State::backup, "PriorityChanged", State::backup, ""},
    {State::backup, "Fault", State::fault, "CancelTimers,NotifyState"},
    {State::backup, "FaultCleared", State::backup, ""},

    {State::master, "Startup", State::master, ""},
    {State::master, "Shutdown", State::initialize,
     "CancelTimers,SendAdvertPriorityZero,RemoveVips,NotifyState"},
    {State::master, "MasterDownTimerFired", State::master, ""},
    {State::master, "AdvertTimerFired", State::master, "SendAdvert,StartAdvertTimer"},
    {State::master, "AdvertHigher", State::backup,
     "CancelTimers,RemoveVips,StartMasterDownTimer,NotifyState"},
    {State::master, "AdvertLower", State::master, "SendAdvert,SendGarp,StartAdvertTimer"},
    {State::master, "AdvertZero", State::master, "SendAdvert,StartAdvertTimer"},
    {State::master, "PriorityChanged", State::master, "SendAdvert,StartAdvertTimer"},
    {State::master, "Fault", State::fault,
     "CancelTimers,SendAdvertPriorityZero,RemoveVips,NotifyState"},
    {State::master, "FaultCleared", State::master, ""},

    {State::fault, "Startup", State::fault, ""},
    {State::fault, "Shutdown", State::initialize, "NotifyState"},
    {State::fault, "MasterDownTimerFired", State::fault, ""},
    {State::fault, "AdvertTimerFired", State::fault, ""},
    {State::fault, "AdvertHigher", State::fault, ""},
    {State::fault, "AdvertLower", State::fault, ""},
    {State::fault, "AdvertZero", State::fault, ""},
    {State::fault, "PriorityChanged", State::fault, ""},
    {State::fault, "Fault", State::fault, ""},
    {State::fault, "FaultCleared", State::backup, "StartMasterDownTimer,NotifyState"},
};

BOOST_AUTO_TEST_CASE(every_state_times_every_event) {
  BOOST_TEST(std::size(kMatrix) == 4u * 10u);
  for (const Row& r : kMatrix) {
    BOOST_TEST_CONTEXT(to_string(r.from) << " + " << r.event) {
      Machine m = in_state(r.from);
      BOOST_REQUIRE(m.v.state == r.from);
      auto acts = m.on(make_event(r.event, m));
      BOOST_TEST(m.v.state == r.to);
      BOOST_TEST(kinds(acts) == std::string(r.actions));
    }
  }
}

BOOST_AUTO_TEST_CASE(priority_changed_is_remembered_everywhere) {
  for (State s : {State::initialize, State::backup, State::master, State::fault}) {
    Machine m = in_state(s);
    m.on(PriorityChanged{90});
    BOOST_TEST(m.v.priority == 90);
  }
  // 0 and 255 are wire signals, not priorities a track may produce.
  Machine m = in_state(State::backup);
  m.on(PriorityChanged{0});
  BOOST_TEST(m.v.priority == 1);
  m.on(PriorityChanged{255});
  BOOST_TEST(m.v.priority == 254);
}

BOOST_AUTO_TEST_CASE(notify_comes_after_critical_actions) {
  Machine m = in_state(State::backup);
  auto acts = m.on(MasterDownTimerFired{m.v.generation});
  BOOST_REQUIRE(!acts.empty());
  BOOST_TEST(kind(acts.front()) == "AddVips");  // VIP before GARP for it
  BOOST_TEST(kind(acts.back()) == "NotifyState");
  BOOST_TEST(std::get<NotifyState>(acts.back()).state == State::master);
}

BOOST_AUTO_TEST_CASE(address_owner_goes_master_at_startup) {
  // RFC 5798 §6.4.1: priority 255 -> Master immediately.
  Machine m(cfg(255, kA));
  auto acts = m.on(Startup{});
  BOOST_TEST(m.v.state == State::master);
  BOOST_TEST(kinds(acts) == "AddVips,SendAdvert,SendGarp,StartAdvertTimer,NotifyState");
  BOOST_TEST(std::get<SendAdvert>(acts[1]).priority == 255);
}

BOOST_AUTO_TEST_CASE(state_master_hint_still_starts_backup) {
  // keepalived 2.2.7 (docs/lab-notes.md): `state MASTER` starts in BACKUP.
  Config c = cfg(100, kA);
  c.start_as_master_hint = true;
  Machine m(c);
  auto acts = m.on(Startup{});
  BOOST_TEST(m.v.state == State::backup);
  BOOST_TEST(kinds(acts) == "StartMasterDownTimer,NotifyState");
  BOOST_TEST(std::get<StartMasterDownTimer>(acts[0]).delay == master_down_interval(c, 100, 1s));
}

BOOST_AUTO_TEST_CASE(stale_timer_generation_is_ignored) {
  Machine m = in_state(State::backup);
  const uint64_t old = m.v.generation;
  auto reset = m.on(AdvertReceived{200, kB, 1s});  // timer restarted
  BOOST_REQUIRE_EQUAL(kinds(reset), "StartMasterDownTimer");
  BOOST_TEST(std::get<StartMasterDownTimer>(reset[0]).generation != old);
  // The expiry of the superseded timer was already queued: nothing happens.
  auto acts = m.on(MasterDownTimerFired{old});
  BOOST_TEST(acts.empty());
  BOOST_TEST(m.v.state == State::backup);
  // The same in Master for the Adver_Timer.
  Machine x = in_state(State::master);
  const uint64_t g = x.v.generation;
  x.on(AdvertReceived{0, kB, 1s});  // resets the Adver_Timer
  BOOST_TEST(x.on(AdvertTimerFired{g}).empty());
  // And after leaving Master, even the latest Adver_Timer tick is stale.
  Machine y = in_state(State::master);
  const uint64_t gy = y.v.generation;
  y.on(AdvertReceived{200, kB, 1s});
  BOOST_TEST(y.on(AdvertTimerFired{gy}).empty());
  BOOST_TEST(y.v.state == State::backup);
}

BOOST_AUTO_TEST_CASE(own_looped_back_advert_is_ignored) {
  Machine m = in_state(State::master);
  BOOST_TEST(m.on(AdvertReceived{100, kA, 1s}).empty());
  BOOST_TEST(m.v.state == State::master);
}

BOOST_AUTO_TEST_CASE(equal_priority_tie_break_in_master) {
  // RFC 5798 §6.4.3: equal priority, the higher primary address wins.
  Machine m = in_state(State::master, cfg(100, kB));
  auto lower_addr = m.on(AdvertReceived{100, kA, 1s});
  BOOST_TEST(m.v.state == State::master);
  BOOST_TEST(kinds(lower_addr) == "SendAdvert,SendGarp,StartAdvertTimer");
  auto higher_addr = m.on(AdvertReceived{100, kC, 1s});
  BOOST_TEST(m.v.state == State::backup);
  BOOST_TEST(kinds(higher_addr) == "CancelTimers,RemoveVips,StartMasterDownTimer,NotifyState");
  BOOST_REQUIRE(m.v.master_address);
  BOOST_TEST(m.v.master_address->to_string() == "10.88.1.153");
}

BOOST_AUTO_TEST_CASE(backup_with_equal_priority_does_not_preempt) {
  // RFC 5798 §6.4.2: ">= local Priority" resets the timer, whatever the address.
  Machine m = in_state(State::backup, cfg(100, kC));
  auto acts = m.on(AdvertReceived{100, kA, 1s});
  BOOST_TEST(kinds(acts) == "StartMasterDownTimer");
}

BOOST_AUTO_TEST_CASE(priority_zero_sets_master_down_to_skew) {
  Config c = cfg(50, kB);
  Machine m = in_state(State::backup, c);
  auto acts = m.on(AdvertReceived{0, kA, 1s});
  BOOST_REQUIRE_EQUAL(kinds(acts), "StartMasterDownTimer");
  BOOST_TEST(std::get<StartMasterDownTimer>(acts[0]).delay == skew_time(c, 50, 1s));
}

BOOST_AUTO_TEST_CASE(v3_backup_learns_master_adver_interval) {
  Config c = cfg(50, kB, 3, 1s);
  Machine m = in_state(State::backup, c);
  auto acts = m.on(AdvertReceived{100, kA, 100ms});
  BOOST_TEST(m.v.master_adver_interval == Duration(100ms));
  BOOST_TEST(std::get<StartMasterDownTimer>(acts[0]).delay.count() == 300000 + 206 * 100000 / 256);
  // v2 never learns: the interval is configured (RFC 3768).
  Machine v2 = in_state(State::backup, cfg(50, kB, 2, 1s));
  v2.on(AdvertReceived{100, kA, 100ms});
  BOOST_TEST(v2.v.master_adver_interval == Duration(1s));
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(scenarios)

BOOST_AUTO_TEST_CASE(election_by_priority) {
  Lan lan;
  auto a = lan.add(cfg(100, kA));
  auto b = lan.add(cfg(50, kB));
  lan.at(0s, b, Startup{});
  lan.at(0s, a, Startup{});
  lan.run_until(20s);
  BOOST_TEST(lan.nodes[a].m.v.state == State::master);
  BOOST_TEST(lan.nodes[b].m.v.state == State::backup);
  BOOST_TEST(lan.vip_holders() == 1);
  BOOST_TEST(lan.nodes[a].vips);
  // A became master after its Master_Down_Interval: 3 + 156/256 s.
  BOOST_TEST(secs(*lan.nodes[a].became(State::master)) == 3.609375, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(!lan.nodes[b].became(State::master));
  BOOST_TEST((lan.nodes[b].m.v.master_address == std::optional<IpAddress>(kA)));
}

BOOST_AUTO_TEST_CASE(backup_takes_over_when_adverts_stop) {
  Lan lan;
  auto a = lan.add(cfg(100, kA));
  auto b = lan.add(cfg(50, kB));
  lan.at(0s, a, Startup{});
  lan.at(0s, b, Startup{});
  lan.run_until(10s);
  lan.nodes[a].connected = false;  // A's link dies silently (kill -9 of both processes)
  const TimePoint last = lan.nodes[a].sent.back().first;
  lan.run_until(20s);
  auto t = lan.nodes[b].became(State::master);
  BOOST_REQUIRE(t);
  // Master_Down_Interval of B after A's last advert that B heard.
  BOOST_TEST((*t - last).count() == master_down_interval(cfg(50, kB), 50, 1s).count());
  BOOST_TEST(secs(*t - last) == 3.0 + 206.0 / 256.0, boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(priority_zero_advert_gives_fast_takeover) {
  Lan lan;
  auto a = lan.add(cfg(100, kA));
  auto b = lan.add(cfg(50, kB));
  lan.at(0s, a, Startup{});
  lan.at(0s, b, Startup{});
  lan.run_until(10s);
  lan.at(TimePoint(10500ms), a, Shutdown{});
  BOOST_TEST(lan.nodes[a].sent.back().second == 0);
  BOOST_TEST(!lan.nodes[a].vips);
  lan.run_until(15s);
  auto t = lan.nodes[b].became(State::master);
  BOOST_REQUIRE(t);
  // Skew_Time of B, 0.805 s (the capture vrrpv2-failover-prio0.pcap: 0.809 s).
  BOOST_TEST(secs(*t) - 10.5 == 206.0 / 256.0, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(lan.vip_holders() == 1);
}

BOOST_AUTO_TEST_CASE(preempt_on_higher_priority_takes_over) {
  Lan lan;
  auto a = lan.add(cfg(100, kA));
  auto b = lan.add(cfg(50, kB));
  lan.at(0s, b, Startup{});
  lan.run_until(10s);
  BOOST_REQUIRE(lan.nodes[b].m.v.state == State::master);
  lan.at(10s, a, Startup{});
  lan.run_until(30s);
  BOOST_TEST(lan.nodes[a].m.v.state == State::master);
  BOOST_TEST(lan.nodes[b].m.v.state == State::backup);
  BOOST_TEST(lan.vip_holders() == 1);
  // A discarded B's lower-priority adverts, so its timer ran out.
  BOOST_TEST(secs(*lan.nodes[a].became(State::master)) == 10 + 3.609375, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(preempt_off_never_takes_over_from_live_lower_master) {
  Lan lan;
  Config ca = cfg(100, kA);
  ca.preempt = false;
  auto a = lan.add(ca);
  auto b = lan.add(cfg(50, kB));
  lan.at(0s, b, Startup{});
  lan.run_until(10s);
  lan.at(10s, a, Startup{});
  lan.run_until(120s);
  BOOST_TEST(lan.nodes[a].m.v.state == State::backup);
  BOOST_TEST(lan.nodes[b].m.v.state == State::master);
  BOOST_TEST(!lan.nodes[a].became(State::master));
  // ...but it still takes over when the lower master goes away.
  lan.at(121s, b, Shutdown{});
  lan.run_until(125s);
  BOOST_TEST(lan.nodes[a].m.v.state == State::master);
}

// RFC 5798 §6.1, Preempt_Mode: "the router that owns the IPvX address
// associated with the VR always preempts, independent of the setting of
// this flag". A backup that becomes the owner by a reload in place (priority
// 255, preempt off) takes over from a live lower master.
BOOST_AUTO_TEST_CASE(owner_preempts_even_with_preempt_off) {
  Lan lan;
  Config ca = cfg(100, kA);
  ca.preempt = false;
  auto a = lan.add(ca);
  auto b = lan.add(cfg(50, kB));
  lan.at(0s, b, Startup{});
  lan.at(10s, a, Startup{});
  lan.run_until(30s);
  BOOST_REQUIRE(lan.nodes[a].m.v.state == State::backup);
  lan.nodes[a].m.c.priority = kOwnerPriority;  // what Engine::reconfigure does
  lan.at(30s, a, PriorityChanged{kOwnerPriority});
  lan.run_until(40s);
  BOOST_TEST(lan.nodes[a].m.v.state == State::master);
  BOOST_TEST(lan.nodes[b].m.v.state == State::backup);
  BOOST_TEST(lan.vip_holders() == 1);
}

BOOST_AUTO_TEST_CASE(preempt_delay_holds_off_takeover) {
  Lan lan;
  Config ca = cfg(100, kA);
  ca.preempt_delay = 10s;
  auto a = lan.add(ca);
  auto b = lan.add(cfg(50, kB));
  lan.at(0s, b, Startup{});
  lan.run_until(10s);
  lan.at(10s, a, Startup{});
  lan.run_until(60s);
  auto t = lan.nodes[a].became(State::master);
  BOOST_REQUIRE(t);
  // B's first advert heard by A: the first one after 10 s.
  TimePoint first{};
  for (auto& [when, prio] : lan.nodes[b].sent)
    if (when >= 10s) { first = when; break; }
  BOOST_TEST(secs(*t) >= secs(first) + 10.0);
  // Preemption happens by the RFC rule once the delay is over: the last
  // accepted advert plus A's Master_Down_Interval.
  BOOST_TEST(secs(*t) <= secs(first) + 10.0 + 3.609375);
  BOOST_TEST(lan.nodes[a].m.v.state == State::master);
  BOOST_TEST(lan.vip_holders() == 1);

  // Without the delay the same start preempts 6+ seconds earlier.
  Lan fast;
  auto fa = fast.add(cfg(100, kA));
  auto fb = fast.add(cfg(50, kB));
  fast.at(0s, fb, Startup{});
  fast.at(10s, fa, Startup{});
  fast.run_until(60s);
  BOOST_TEST(secs(*t) - secs(*fast.nodes[fa].became(State::master)) > 6.0);
}

BOOST_AUTO_TEST_CASE(equal_priority_split_brain_resolves_to_higher_address) {
  Lan lan;
  auto a = lan.add(cfg(100, kA));
  auto b = lan.add(cfg(100, kB));
  lan.nodes[a].connected = lan.nodes[b].connected = false;  // multicast filtered
  lan.at(0s, a, Startup{});
  lan.at(0s, b, Startup{});
  lan.run_until(10s);
  BOOST_REQUIRE(lan.masters() == 2);  // split brain
  lan.nodes[a].connected = lan.nodes[b].connected = true;
  lan.run_until(15s);
  BOOST_TEST(lan.masters() == 1);
  BOOST_TEST(lan.nodes[b].m.v.state == State::master);  // 10.88.1.152 > .151
  BOOST_TEST(lan.nodes[a].m.v.state == State::backup);
  BOOST_TEST(lan.vip_holders() == 1);
}

BOOST_AUTO_TEST_CASE(both_started_as_state_master_converge_to_one) {
  for (uint8_t pb : {uint8_t(50), uint8_t(100)}) {
    BOOST_TEST_CONTEXT("priority of B " << int(pb)) {
      Lan lan;
      Config ca = cfg(100, kA), cb = cfg(pb, kB);
      ca.start_as_master_hint = cb.start_as_master_hint = true;
      auto a = lan.add(ca);
      auto b = lan.add(cb);
      lan.at(0s, a, Startup{});
      lan.at(0s, b, Startup{});
      // Nobody holds the VIP during the first Master_Down_Interval.
      lan.run_until(3500ms);
      BOOST_TEST(lan.vip_holders() == 0);
      lan.run_until(30s);
      BOOST_TEST(lan.masters() == 1);
      BOOST_TEST(lan.vip_holders() == 1);
      BOOST_TEST(lan.nodes[a].m.v.state == State::master);  // first to time out
    }
  }
}

BOOST_AUTO_TEST_CASE(master_hearing_lower_priority_reasserts) {
  Lan lan;
  auto a = lan.add(cfg(100, kA));
  auto b = lan.add(cfg(50, kB));
  lan.nodes[a].connected = lan.nodes[b].connected = false;
  lan.at(0s, a, Startup{});
  lan.at(0s, b, Startup{});
  // Reconnect between A's tick (x.609 s) and B's (x.805 s), so B speaks first.
  lan.run_until(9700ms);
  BOOST_REQUIRE(lan.masters() == 2);
  BOOST_REQUIRE(*lan.nodes[b].deadline < *lan.nodes[a].deadline);
  const int garps_before = lan.nodes[a].garps;
  const std::size_t sent_before = lan.nodes[a].sent.size();
  lan.nodes[a].connected = lan.nodes[b].connected = true;
  // The next advert of B reaches A: A answers at once (advert + GARP), at the
  // same instant, not at its next Adver_Timer tick.
  TimePoint b_next = *lan.nodes[b].deadline;
  lan.run_until(b_next);
  BOOST_TEST(lan.nodes[a].garps == garps_before + 1);
  BOOST_REQUIRE(lan.nodes[a].sent.size() > sent_before);
  BOOST_TEST(lan.nodes[a].sent[sent_before].first == b_next);
  // ...and that advert made B step down and drop the VIP.
  BOOST_TEST(lan.nodes[b].m.v.state == State::backup);
  BOOST_TEST(!lan.nodes[b].vips);
  BOOST_TEST(lan.vip_holders() == 1);
}

BOOST_AUTO_TEST_CASE(master_reasserts_at_most_once_a_second_under_a_flood_of_lower_adverts) {
  // 1,000 lower-priority adverts a second (a host flooding the link, as in
  // tests/integration/test_flood_netns.py) for 3 s: the master answers the
  // first at once and then at most once per kReassertInterval, discarding the
  // rest (RFC 5798 §6.4.3); it never leaves MASTER.
  for (Duration adv : {Duration(100ms), Duration(1s)}) {
    Machine m = in_state(State::master, cfg(100, kA, 3, adv));
    int adverts = 0, garps = 0;
    std::vector<TimePoint> answered;
    for (TimePoint now{1s}; now < TimePoint{4s}; now += Duration(1ms)) {
      int before = adverts;
      for (const auto& a : m.on(AdvertReceived{60, kC, 100ms}, now)) {
        if (std::holds_alternative<SendAdvert>(a)) ++adverts;
        if (std::holds_alternative<SendGarp>(a)) ++garps;
      }
      if (adverts != before) answered.push_back(now);
    }
    BOOST_TEST(m.v.state == State::master);
    BOOST_TEST(adverts == 3);  // at 1 s, 2 s and 3 s
    BOOST_TEST(garps == 3);
    BOOST_REQUIRE(answered.size() == 3u);
    BOOST_TEST(answered[0] == TimePoint{1s});  // the first one at once
    BOOST_TEST((answered[1] - answered[0]) == kReassertInterval);
  }
  // With an advert_int longer than a second the spacing is the advert_int.
  Machine slow = in_state(State::master, cfg(100, kA, 2, 3s));
  BOOST_TEST(kinds(slow.on(AdvertReceived{60, kC, 3s}, TimePoint{10s})) == "SendAdvert,SendGarp,StartAdvertTimer");
  BOOST_TEST(slow.on(AdvertReceived{60, kC, 3s}, TimePoint{12s}).empty());
  BOOST_TEST(kinds(slow.on(AdvertReceived{60, kC, 3s}, TimePoint{13s})) == "SendAdvert,SendGarp,StartAdvertTimer");
  // A higher-priority advert still wins at once inside the window.
  BOOST_TEST(kinds(slow.on(AdvertReceived{200, kC, 3s}, TimePoint{13500ms})) ==
             "CancelTimers,RemoveVips,StartMasterDownTimer,NotifyState");
  BOOST_TEST(slow.v.state == State::backup);
}

BOOST_AUTO_TEST_CASE(master_answers_priority_zero_at_most_once_a_second_under_a_flood) {
  // RFC 5798 §6.4.3: a master hearing priority 0 sends an advert at once and
  // resets its Adver_Timer. 1,000 forged priority-0 adverts a second for 3 s
  // used to make it send 3,000 adverts; now the first is answered at once,
  // then one per kReassertInterval (or advert_int), and its own ticks go on.
  for (Duration adv : {Duration(100ms), Duration(1s)}) {
    Machine m = in_state(State::master, cfg(100, kA, 3, adv));
    std::vector<TimePoint> answered;
    for (TimePoint now{1s}; now < TimePoint{4s}; now += Duration(1ms)) {
      auto acts = m.on(AdvertReceived{0, kC, 100ms}, now);
      if (!acts.empty()) BOOST_TEST(kinds(acts) == "SendAdvert,StartAdvertTimer");
      if (!acts.empty()) answered.push_back(now);
    }
    BOOST_TEST(m.v.state == State::master);
    BOOST_REQUIRE(answered.size() == 3u);  // at 1 s, 2 s and 3 s
    BOOST_TEST(answered[0] == TimePoint{1s});
    BOOST_TEST((answered[1] - answered[0]) == kReassertInterval);
  }
  Machine slow = in_state(State::master, cfg(100, kA, 2, 3s));
  BOOST_TEST(kinds(slow.on(AdvertReceived{0, kC, 3s}, TimePoint{10s})) == "SendAdvert,StartAdvertTimer");
  BOOST_TEST(slow.on(AdvertReceived{0, kC, 3s}, TimePoint{12s}).empty());
  BOOST_TEST(kinds(slow.on(AdvertReceived{0, kC, 3s}, TimePoint{13s})) == "SendAdvert,StartAdvertTimer");
}

BOOST_AUTO_TEST_CASE(reassertion_within_the_spacing_owes_its_garp_to_the_next_tick_after_it) {
  // A peer that flaps to master twice within a second GARPs the second time
  // too: our answer to it is not skipped, only its GARP deferred to the first
  // Adver_Timer tick once the spacing has passed (then owed no more).
  Machine m = in_state(State::master, cfg(100, kA, 3, 100ms));
  auto tick = [&](TimePoint now) { return kinds(m.on(AdvertTimerFired{m.v.generation}, now)); };
  BOOST_TEST(kinds(m.on(AdvertReceived{50, kB, 100ms}, TimePoint{10s})) == "SendAdvert,SendGarp,StartAdvertTimer");
  BOOST_TEST(tick(TimePoint{10100ms}) == "SendAdvert,StartAdvertTimer");
  BOOST_TEST(m.on(AdvertReceived{50, kB, 100ms}, TimePoint{10300ms}).empty());
  BOOST_TEST(m.v.reassert_pending);
  BOOST_TEST(tick(TimePoint{10400ms}) == "SendAdvert,StartAdvertTimer");  // still within the second
  BOOST_TEST(tick(TimePoint{11s}) == "SendAdvert,SendGarp,StartAdvertTimer");
  BOOST_TEST(!m.v.reassert_pending);
  BOOST_TEST(tick(TimePoint{11100ms}) == "SendAdvert,StartAdvertTimer");
  BOOST_TEST(tick(TimePoint{12100ms}) == "SendAdvert,StartAdvertTimer");
  // Owed GARPs are spaced like the immediate answers, and a fresh answer
  // after the spacing is immediate again.
  BOOST_TEST(m.on(AdvertReceived{50, kB, 100ms}, TimePoint{11500ms}).empty());
  BOOST_TEST(tick(TimePoint{11900ms}) == "SendAdvert,StartAdvertTimer");
  BOOST_TEST(tick(TimePoint{12s}) == "SendAdvert,SendGarp,StartAdvertTimer");
  BOOST_TEST(kinds(m.on(AdvertReceived{50, kB, 100ms}, TimePoint{13s})) == "SendAdvert,SendGarp,StartAdvertTimer");
  // Leaving and re-entering Master sends its own GARP: nothing stays owed.
  BOOST_TEST(m.on(AdvertReceived{50, kB, 100ms}, TimePoint{13200ms}).empty());
  m.on(AdvertReceived{200, kC, 100ms}, TimePoint{13300ms});
  BOOST_REQUIRE(m.v.state == State::backup);
  BOOST_TEST(kinds(m.on(MasterDownTimerFired{m.v.generation}, TimePoint{14s})) ==
             "AddVips,SendAdvert,SendGarp,StartAdvertTimer,NotifyState");
  BOOST_TEST(!m.v.reassert_pending);
}

BOOST_AUTO_TEST_CASE(v3_100ms_intervals) {
  Lan lan;
  auto a = lan.add(cfg(100, kA, 3, 100ms));
  auto b = lan.add(cfg(50, kB, 3, 1s));  // learns 100 ms from A's adverts
  lan.at(0s, a, Startup{});
  lan.at(0s, b, Startup{});
  lan.run_until(2s);
  // master_down = 300 ms + skew (156/256 * 100 ms).
  BOOST_TEST(lan.nodes[a].became(State::master)->count() == 300000 + 60937);
  BOOST_TEST(lan.nodes[b].m.v.master_adver_interval == Duration(100ms));
  // Adverts every 100 ms.
  auto& s = lan.nodes[a].sent;
  BOOST_REQUIRE(s.size() > 3);
  BOOST_TEST((s[2].first - s[1].first) == Duration(100ms));
  lan.nodes[a].connected = false;
  const TimePoint last = s.back().first;
  lan.run_until(3s);
  auto t = lan.nodes[b].became(State::master);
  BOOST_REQUIRE(t);
  BOOST_TEST((*t - last).count() == 300000 + 206 * 100000 / 256);
}

BOOST_AUTO_TEST_CASE(fault_moves_vip_and_recovery_waits) {
  Lan lan;
  auto a = lan.add(cfg(100, kA));
  auto b = lan.add(cfg(50, kB));
  lan.at(0s, a, Startup{});
  lan.at(0s, b, Startup{});
  lan.run_until(10s);
  lan.at(10s, a, Fault{});  // e.g. the proxy track (weight 0) fails
  BOOST_TEST(!lan.nodes[a].vips);
  lan.run_until(11s);
  BOOST_TEST(lan.nodes[b].m.v.state == State::master);  // after skew, thanks to priority 0
  lan.at(20s, a, FaultCleared{});
  BOOST_TEST(lan.nodes[a].m.v.state == State::backup);
  lan.run_until(40s);
  BOOST_TEST(lan.nodes[a].m.v.state == State::master);  // preempts again
  BOOST_TEST(lan.vip_holders() == 1);
}

// ---- gratuitous ARP: the schedule is the machine's, on its clock ----

namespace {

// What a GARP-timer-driven run looks like: SendGarp rounds at each step and
// the delay of the GARP timer armed then ("-" for none, "x" cancelled).
struct GarpStep {
  std::string event;   // "master" (Master_Down_Timer fires), "tick" (the GARP timer fires), "stale",
                       // "lower" (a lower advert: re-assert), "late" (a VIP installed late), "higher"
  Duration at;         // when
  int garps;           // SendGarp actions
  std::string timer;   // "-": none armed, "x": CancelGarpTimer, else the delay in ms
};

std::string garp_timer(const std::vector<Action>& as) {
  for (const auto& a : as) {
    if (auto* t = std::get_if<StartGarpTimer>(&a))
      return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t->delay).count());
    if (std::holds_alternative<CancelGarpTimer>(a)) return "x";
  }
  return "-";
}

void run_garp(Config c, const std::vector<GarpStep>& steps) {
  Machine m(c);
  m.on(Startup{});
  uint64_t stale = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const auto& st = steps[i];
    const TimePoint now{st.at};
    std::vector<Action> as;
    if (st.event == "master") as = m.on(MasterDownTimerFired{m.v.generation}, now);
    else if (st.event == "tick") stale = m.v.garp.generation, as = m.on(GarpTimerFired{m.v.garp.generation}, now);
    else if (st.event == "stale") as = m.on(GarpTimerFired{stale}, now);
    else if (st.event == "lower") as = m.on(AdvertReceived{50, kB, 1s}, now);
    else if (st.event == "late") as = m.on(VipsInstalledLate{}, now);
    else if (st.event == "higher") as = m.on(AdvertReceived{200, kB, 1s}, now);
    int garps = 0;
    for (const auto& a : as) garps += std::holds_alternative<SendGarp>(a) ? 1 : 0;
    BOOST_TEST_CONTEXT("step " << i << " (" << st.event << " at " << st.at.count() << " us): " << kinds(as)) {
      BOOST_TEST(garps == st.garps);
      BOOST_TEST(garp_timer(as) == st.timer);
    }
  }
}

Config garp_cfg(unsigned repeat, Duration interval, Duration delay, Duration refresh) {
  Config c = cfg(100, kA, 3, 1s);
  c.garp_repeat = repeat;
  c.garp_interval = interval;
  c.garp_delay = delay;
  c.garp_refresh = refresh;
  return c;
}

}  // namespace

BOOST_AUTO_TEST_CASE(garp_defaults_one_round_no_timer) {
  run_garp(Config(cfg(100, kA, 3, 1s)), {{"master", 4s, 1, "-"}, {"lower", 6s, 1, "-"}, {"higher", 7s, 0, "-"}});
}

BOOST_AUTO_TEST_CASE(garp_keepalived_burst_then_second_burst) {
  // keepalived's defaults: 5 back to back, 5 more 5 s later, then none.
  run_garp(garp_cfg(5, 0s, 5s, 0s), {
                                        {"master", 4s, 5, "5000"},
                                        {"tick", 9s, 5, "-"},
                                        {"stale", 9100ms, 0, "-"},  // an expiry already replaced: ignored
                                    });
}

BOOST_AUTO_TEST_CASE(garp_spaced_burst_second_burst_and_refresh) {
  // 3 rounds 100 ms apart, the burst again after 1 s, one round every 2 s.
  run_garp(garp_cfg(3, 100ms, 1s, 2s), {
                                            {"master", 4s, 1, "100"},
                                            {"tick", 4100ms, 1, "100"},
                                            {"tick", 4200ms, 1, "800"},   // burst done; second burst at 5 s
                                            {"tick", 5s, 1, "100"},       // second burst, round 1
                                            {"tick", 5100ms, 1, "100"},
                                            {"tick", 5200ms, 1, "800"},   // refresh at 6 s
                                            {"tick", 6s, 1, "2000"},      // refresh, then every 2 s
                                            {"tick", 8s, 1, "2000"},
                                            // A VIP installed late: a burst now, the refresh kept.
                                            {"late", 8500ms, 1, "100"},
                                            {"tick", 8600ms, 1, "100"},
                                            {"tick", 8700ms, 1, "1300"},  // refresh still at 10 s
                                            {"tick", 10s, 1, "2000"},
                                            // Re-asserting starts the whole sequence anew.
                                            {"lower", 10500ms, 1, "100"},
                                            {"tick", 10600ms, 1, "100"},
                                            {"tick", 10700ms, 1, "800"},  // second burst at 11.5 s
                                            // Leaving MASTER: nothing more, the timer cancelled.
                                            {"higher", 11s, 0, "x"},
                                            {"stale", 11500ms, 0, "-"},
                                        });
}

BOOST_AUTO_TEST_CASE(garp_back_to_back_burst_with_refresh) {
  run_garp(garp_cfg(3, 0s, 0s, 10s), {
                                         {"master", 4s, 3, "10000"},
                                         {"tick", 14s, 1, "10000"},
                                         {"late", 15s, 3, "9000"},
                                         {"tick", 24s, 1, "10000"},
                                     });
}

BOOST_AUTO_TEST_CASE(garp_late_vips_outside_master_send_nothing) {
  Machine m(garp_cfg(3, 0s, 0s, 0s));
  m.on(Startup{});
  BOOST_REQUIRE(m.v.state == State::backup);
  BOOST_TEST(m.on(VipsInstalledLate{}, TimePoint{1s}).empty());
  BOOST_TEST(m.on(GarpTimerFired{m.v.garp.generation}, TimePoint{2s}).empty());
}

BOOST_AUTO_TEST_SUITE_END()

// The second review (branch vrrprev2): rules checked and found right.
BOOST_AUTO_TEST_SUITE(review2)

// RFC 5798 §6.4.3 compares primary addresses as numbers (network order),
// not as text: 10.88.1.9 < 10.88.1.10 and 9.255.255.255 < 10.0.0.0 although
// their strings sort the other way; IPv6 likewise (fe80::9 < fe80::10).
BOOST_AUTO_TEST_CASE(equal_priority_tie_break_compares_addresses_as_numbers) {
  struct Case {
    const char *ours, *theirs;
    State after;
  };
  for (const Case& k : {Case{"10.88.1.9", "10.88.1.10", State::backup}, Case{"10.88.1.10", "10.88.1.9", State::master},
                        Case{"9.255.255.255", "10.0.0.0", State::backup}, Case{"10.0.0.0", "9.255.255.255", State::master},
                        Case{"fe80::9", "fe80::10", State::backup}, Case{"fe80::10", "fe80::9", State::master}}) {
    BOOST_TEST_CONTEXT(k.ours << " hears " << k.theirs) {
      Config c = cfg(100, *IpAddress::parse(k.ours), 3);
      Machine m = in_state(State::master, c);
      m.on(AdvertReceived{100, *IpAddress::parse(k.theirs), 1s}, TimePoint{5s});
      BOOST_TEST(m.v.state == k.after);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

// A MASTER whose adverts the kernel refuses (an OUTPUT firewall rule on
// protocol 112: sendto fails) is not heard: the peer becomes MASTER too.
// Hearing it as MASTER for Master_Down_Interval while every send fails, it
// gives the VIPs to the peer (FAULT), probes with priority-0 adverts, and
// is back in the election once a send works (fsm.cpp mute_master_rx,
// docs/rfc-ledger.md). keepalived (and our old machine) kept both MASTERs.
BOOST_AUTO_TEST_SUITE(mute_master)

BOOST_AUTO_TEST_CASE(refused_sends_and_a_peer_heard_as_master_give_the_vips_to_the_peer) {
  Lan lan;
  auto a = lan.add(cfg(100, kA));
  auto b = lan.add(cfg(50, kB));
  lan.at(TimePoint{}, a, Startup{});
  lan.at(TimePoint{1s}, b, Startup{});
  lan.run_until(TimePoint{10s});
  BOOST_REQUIRE(lan.nodes[a].m.v.state == State::master);
  BOOST_REQUIRE(lan.nodes[b].m.v.state == State::backup);

  lan.nodes[a].send_fails = true;
  lan.run_until(TimePoint{15s});
  // b heard nothing for its Master_Down_Interval (3.8 s): two MASTERs,
  // as with the old machine and keepalived; a has not heard b long enough.
  BOOST_TEST(lan.masters() == 2);
  BOOST_TEST(lan.vip_holders() == 2);
  const TimePoint b_master = *lan.nodes[b].became(State::master);

  lan.run_until(TimePoint{20s});
  BOOST_TEST(lan.nodes[a].m.v.state == State::fault);
  BOOST_TEST(lan.nodes[b].m.v.state == State::master);
  BOOST_TEST(lan.vip_holders() == 1);
  BOOST_TEST(lan.nodes[a].m.v.send_fault);
  BOOST_TEST((lan.nodes[a].m.v.master_address.value_or(kC) == kB));
  // a left once b had been heard as MASTER for a's Master_Down_Interval
  // (3.609 s), at the first advert of b after it.
  const auto a_fault = *lan.nodes[a].became(State::fault);
  const auto mdi = master_down_interval(lan.nodes[a].m.c, 100, 1s);
  BOOST_TEST(secs(a_fault - b_master) >= secs(mdi));
  BOOST_TEST(secs(a_fault - b_master) <= secs(mdi + 1s));

  // FAULT: a priority-0 advert every Advertisement_Interval tries the path.
  const auto probes_before = lan.nodes[a].sent.size();
  lan.run_until(TimePoint{25s});
  BOOST_TEST(lan.nodes[a].sent.size() >= probes_before + 4);
  BOOST_TEST(lan.nodes[a].sent.back().second == 0);
  BOOST_TEST(lan.nodes[a].m.v.state == State::fault);

  // The rule removed: the next probe is taken, a fresh Startup as BACKUP,
  // and a preempts b (lower) after Master_Down_Interval.
  lan.nodes[a].send_fails = false;
  lan.run_until(TimePoint{26s});
  BOOST_TEST(lan.nodes[a].m.v.state == State::backup);
  BOOST_TEST(!lan.nodes[a].m.v.send_fault);
  lan.run_until(TimePoint{32s});
  BOOST_TEST(lan.nodes[a].m.v.state == State::master);
  BOOST_TEST(lan.nodes[b].m.v.state == State::backup);
  BOOST_TEST(lan.vip_holders() == 1);
  BOOST_TEST(lan.nodes[a].vips);
}

BOOST_AUTO_TEST_CASE(refused_sends_hearing_nobody_keep_the_vips) {
  // The peer may be dead: clients still reach us, so the VIPs stay.
  Lan lan;
  auto a = lan.add(cfg(100, kA));
  lan.at(TimePoint{}, a, Startup{});
  lan.run_until(TimePoint{5s});
  BOOST_REQUIRE(lan.nodes[a].m.v.state == State::master);
  lan.nodes[a].send_fails = true;
  lan.run_until(TimePoint{120s});
  BOOST_TEST(lan.nodes[a].m.v.state == State::master);
  BOOST_TEST(lan.nodes[a].vips);
  BOOST_TEST(lan.nodes[a].m.v.send_failing_since.has_value());
}

BOOST_AUTO_TEST_CASE(the_count_needs_master_down_interval_without_a_break_and_failing_sends) {
  const Config c = cfg(100, kA);
  const Duration mdi = master_down_interval(c, 100, 1s);  // 3.609 s
  auto mute_master = [&] {
    Machine m = in_state(State::master, c);
    m.on(AdvertSent{false}, TimePoint{1s});
    return m;
  };
  {  // Heard every second: FAULT at the first advert Master_Down_Interval after the first.
    Machine m = mute_master();
    for (int t = 2; t <= 5; ++t) {
      m.on(AdvertReceived{50, kB, 1s}, TimePoint{std::chrono::seconds(t)});
      BOOST_TEST(m.v.state == State::master);
    }
    auto as = m.on(AdvertReceived{50, kB, 1s}, TimePoint{2s} + mdi);
    BOOST_TEST(m.v.state == State::fault);
    BOOST_TEST(kinds(as) == "CancelTimers,RemoveVips,StartAdvertTimer,NotifyState");
  }
  {  // A break longer than Master_Down_Interval starts the count again.
    Machine m = mute_master();
    m.on(AdvertReceived{50, kB, 1s}, TimePoint{2s});
    m.on(AdvertReceived{50, kB, 1s}, TimePoint{2s} + mdi + 1ms);
    BOOST_TEST(m.v.state == State::master);
    m.on(AdvertReceived{50, kB, 1s}, TimePoint{2s} + 2 * mdi + 1ms);
    BOOST_TEST(m.v.state == State::fault);
  }
  {  // A send that works ends it: the peer hears us and yields.
    Machine m = mute_master();
    m.on(AdvertReceived{50, kB, 1s}, TimePoint{2s});
    m.on(AdvertSent{true}, TimePoint{3s});
    m.on(AdvertReceived{50, kB, 1s}, TimePoint{2s} + mdi);
    BOOST_TEST(m.v.state == State::master);
    BOOST_TEST(!m.v.send_failing_since.has_value());
  }
  {  // Sends that work: a lower master heard for long is only re-asserted against.
    Machine m = in_state(State::master, c);
    for (int t = 2; t <= 20; ++t) m.on(AdvertReceived{50, kB, 1s}, TimePoint{std::chrono::seconds(t)});
    BOOST_TEST(m.v.state == State::master);
  }
}

BOOST_AUTO_TEST_CASE(probe_timer_and_a_track_fault_in_between) {
  const Config c = cfg(100, kA);
  Machine m = in_state(State::master, c);
  m.on(AdvertSent{false}, TimePoint{1s});
  for (int t = 2; t <= 6; ++t) m.on(AdvertReceived{50, kB, 1s}, TimePoint{std::chrono::seconds(t)});
  BOOST_REQUIRE(m.v.state == State::fault);
  // The probe: a priority-0 advert, never our priority (the peer is MASTER
  // and must keep the VIPs), a failure leaves us where we are.
  auto as = m.on(AdvertTimerFired{m.v.generation}, TimePoint{7s});
  BOOST_TEST(kinds(as) == "SendAdvertPriorityZero,StartAdvertTimer");
  BOOST_TEST(m.on(AdvertSent{false}, TimePoint{7s}).empty());
  // The engine's other FAULT reasons do not end this one...
  BOOST_TEST(m.on(FaultCleared{}, TimePoint{7s}).empty());
  BOOST_TEST(m.v.state == State::fault);
  // ... and a track input failing now holds FAULT: no probe, and its end is a Startup.
  as = m.on(Fault{}, TimePoint{8s});
  BOOST_TEST(kinds(as) == "CancelTimers");
  BOOST_TEST(!m.v.send_fault);
  BOOST_TEST(m.on(AdvertTimerFired{m.v.generation}, TimePoint{9s}).empty());
  as = m.on(FaultCleared{}, TimePoint{10s});
  BOOST_TEST(m.v.state == State::backup);

  // A send that works while a track input fails: FAULT stays.
  Machine k = in_state(State::master, c);
  k.on(AdvertSent{false}, TimePoint{1s});
  for (int t = 2; t <= 6; ++t) k.on(AdvertReceived{50, kB, 1s}, TimePoint{std::chrono::seconds(t)});
  BOOST_REQUIRE(k.v.send_fault);
  k.v.track_fault = true;  // as if Fault had come first (Fault{} would end send_fault)
  k.on(AdvertSent{true}, TimePoint{7s});
  BOOST_TEST(k.v.state == State::fault);
  BOOST_TEST(!k.v.send_fault);
  k.on(FaultCleared{}, TimePoint{8s});
  BOOST_TEST(k.v.state == State::backup);
}

// The other side, for a drop without an error (the sender cannot see it):
// a MASTER hearing the adverts of a higher-priority MASTER yields (RFC 5798
// §6.4.3), so the VIPs end on one node when the silenced router is the
// lower one. The other way round neither can tell (README, "On a shared LAN").
BOOST_AUTO_TEST_CASE(silent_drop_master_hearing_a_higher_master_yields) {
  Lan lan;
  auto a = lan.add(cfg(100, kA));
  auto b = lan.add(cfg(150, kB));
  lan.at(TimePoint{}, a, Startup{});
  lan.run_until(TimePoint{5s});
  BOOST_REQUIRE(lan.nodes[a].m.v.state == State::master);
  lan.nodes[a].send_dropped = true;  // sendto succeeds, nobody hears it
  lan.at(TimePoint{6s}, b, Startup{});
  lan.run_until(TimePoint{15s});
  BOOST_TEST(lan.nodes[b].m.v.state == State::master);
  BOOST_TEST(lan.nodes[a].m.v.state == State::backup);
  BOOST_TEST(lan.vip_holders() == 1);
  BOOST_TEST(!lan.nodes[a].m.v.send_fault);
}

BOOST_AUTO_TEST_SUITE_END()
