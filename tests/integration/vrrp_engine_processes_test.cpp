// The VRRP engine with real child processes (track scripts, notify hooks,
// a script run as another user), on the fixture of
// tests/unit/vrrp_engine_fixture.h in real time: a child needs real time to
// run, so these cases are integration tests, not unit tests.
#define BOOST_TEST_MODULE vrrp_engine_processes
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <unistd.h>

#include "unit/vrrp_engine_fixture.h"

BOOST_AUTO_TEST_SUITE(engine_processes)

BOOST_FIXTURE_TEST_CASE(reload_keeps_an_unchanged_track_script_state, Fixture) {
  realtime();  // real processes
  auto inst = instance();
  cfg::TrackScript ok;
  ok.name = "ok";
  ok.command = "true";
  ok.interval = cfg::Duration(50);
  inst.track.scripts.push_back(ok);
  make({inst});
  run(300ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  // Adding a second script (slow to answer) must not FAULT the instance
  // through the first one, whose state is kept.
  auto next = inst;
  cfg::TrackScript slow = ok;
  slow.name = "slow";
  slow.command = "sleep 0.2";
  slow.weight = -10;
  next.track.scripts.push_back(slow);
  svc->reload({next});
  BOOST_TEST(e().state() == fsm::State::master);
  run(50ms);
  BOOST_TEST(e().state() == fsm::State::master);
}

// A weight-0 script added by a reload counts once it has a result (the
// unit test review2/reload_adding_a_track_script_waits_for_its_first_result
// shows it counts for nothing before): one that passes leaves the MASTER
// alone, one that fails puts it in FAULT.
BOOST_FIXTURE_TEST_CASE(reload_added_weight_zero_script_counts_from_its_first_result, Fixture) {
  realtime();  // real processes
  make({instance()});
  BOOST_REQUIRE(run_until(*this, [&] { return e().state() == fsm::State::master; }));
  const auto transitions = e().counters().transitions;
  auto next = instance();
  next.track.scripts.push_back(script("true", 0));
  svc->reload({next});
  BOOST_TEST(run_until(*this, [&] { return e().counters().script_runs >= 2u; }));
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(e().counters().transitions == transitions);
  auto failing = instance();
  failing.track.scripts.push_back(script("exit 1", 0));
  svc->reload({failing});
  BOOST_TEST(run_until(*this, [&] { return e().state() == fsm::State::fault; }));
  BOOST_TEST(k->addresses.empty());
}

BOOST_FIXTURE_TEST_CASE(notify_hooks_get_keepalived_arguments, Fixture) {
  realtime();  // real processes
  char dir[] = "/tmp/vrrp-notify-XXXXXX";
  BOOST_REQUIRE(mkdtemp(dir));
  std::string out = std::string(dir) + "/args";
  auto inst = instance();
  inst.notify.master = "echo >>" + out;
  make({inst});
  // The shell creates the file before echo writes the line: wait for the
  // whole line, not the file (a deadline of 5 s, for a loaded machine).
  for (int i = 0; i < 250 && slurp(out).find('\n') == std::string::npos; ++i) run(20ms);
  BOOST_TEST(slurp(out) == "INSTANCE VI_1 MASTER 100\n");
  std::remove(out.c_str());
  rmdir(dir);
}

// Scripts and hooks asked for before the capability drop wait for it
// (Service::release_scripts); then they run, in order.
BOOST_FIXTURE_TEST_CASE(scripts_and_hooks_wait_for_the_capability_drop, Fixture) {
  realtime();  // real processes
  char dir[] = "/tmp/vrrp-held-XXXXXX";
  BOOST_REQUIRE(mkdtemp(dir));
  std::string out = std::string(dir) + "/log";
  auto inst = instance();
  inst.notify.backup = "echo backup >>" + out + "; true";  // the hook's arguments go to `true`
  cfg::TrackScript t;
  t.name = "chk";
  t.command = "echo script >>" + out;
  t.interval = cfg::Duration(10000);
  t.weight = -10;
  inst.track.scripts.push_back(t);
  make({inst}, /*release=*/false);
  run(100ms);
  BOOST_TEST(!std::ifstream(out).good());  // nothing ran: held
  svc->release_scripts();
  for (int i = 0; i < 100 && slurp(out).size() < 14; ++i) run(20ms);
  std::string log = slurp(out);
  BOOST_TEST((log == "script\nbackup\n" || log == "backup\nscript\n"), log);
  std::remove(out.c_str());
  rmdir(dir);
}

// notify.timeout kills the hook with its process group; the kill is counted.
BOOST_FIXTURE_TEST_CASE(notify_hook_killed_with_its_children_at_its_timeout, Fixture) {
  realtime();  // real processes
  char dir[] = "/tmp/vrrp-notify-XXXXXX";
  BOOST_REQUIRE(mkdtemp(dir));
  std::string pids = std::string(dir) + "/pids";
  auto inst = instance();
  inst.notify.backup = "sleep 60 & echo $$ $! >" + pids + "; wait; true";
  inst.notify.timeout = cfg::Duration(300);
  make({inst});
  BOOST_TEST(run_until(*this, [&] { return e().counters().notify_timeouts == 1u; }));
  int sh = 0, child = 0;
  std::ifstream(pids) >> sh >> child;
  BOOST_REQUIRE(child > 0);
  // Both are dead: the shell reaped by us, the sleep (its parent gone) at
  // most a zombie of whoever adopted it.
  BOOST_TEST(run_until(*this, [&] { return !running_process(sh) && !running_process(child); }));
  BOOST_TEST(e().counters().notify_runs == 1u);
  std::remove(pids.c_str());
  rmdir(dir);
}

// A track script's run in flight is killed when nobody will read its result:
// the instance stops (SIGTERM, or a reload removing it), or a reload changes
// the scripts (the run is started again at once). It used to run to its
// timeout: a stop waited for it (past systemd's TimeoutStopSec for a long
// one), and each reload stacked another run of the same script beside it.
BOOST_FIXTURE_TEST_CASE(track_script_in_flight_killed_at_stop_and_at_reload, Fixture) {
  realtime();  // real processes
  char dir[] = "/tmp/vrrp-track-XXXXXX";
  BOOST_REQUIRE(mkdtemp(dir));
  const std::string pids = std::string(dir) + "/pids";
  auto inst = instance();
  inst.track.scripts.push_back(script("echo $$ >>" + pids + "; exec sleep 60", -10, cfg::Duration(120000)));
  make({inst});
  auto pid_list = [&] {
    std::vector<int> v;
    std::ifstream f(pids);
    for (int p; f >> p;) v.push_back(p);
    return v;
  };
  BOOST_REQUIRE(run_until(*this, [&] { return pid_list().size() == 1u; }));
  const int first = pid_list()[0];
  // A reload changing the scripts (another one added): the run in flight is
  // killed and the script started again, one run at a time.
  auto next = inst;
  auto other = script("true", -5);
  other.name = "other";
  next.track.scripts.push_back(other);
  svc->reload({next});
  BOOST_REQUIRE(run_until(*this, [&] { return pid_list().size() == 2u; }));
  BOOST_TEST(run_until(*this, [&] { return !running_process(first); }));
  const int second = pid_list()[1];
  BOOST_TEST(running_process(second));
  // The instance stops: its run in flight is killed, not waited for.
  svc->shutdown(nullptr);
  BOOST_TEST(run_until(*this, [&] { return !running_process(second); }));
  BOOST_TEST(e().counters().script_timeouts == 0u);
  std::remove(pids.c_str());
  rmdir(dir);
}

// max_running 1 (the default): hooks run one after the other in the order
// of the transitions, so the last to finish is the current state's.
BOOST_FIXTURE_TEST_CASE(notify_hooks_run_one_at_a_time_in_transition_order, Fixture) {
  realtime();  // real processes
  char dir[] = "/tmp/vrrp-notify-XXXXXX";
  BOOST_REQUIRE(mkdtemp(dir));
  std::string out = std::string(dir) + "/log";
  auto inst = instance();
  inst.notify.any = "echo start $3 >>" + out + "; sleep 0.1; echo end $3 >>" + out + "; true";
  make({inst});
  BOOST_REQUIRE(run_until(*this, [&] { return e().state() == fsm::State::master; }));
  deliver(datagram(200));  // a better master: back to BACKUP (then MASTER again when it goes quiet)
  BOOST_REQUIRE(e().state() == fsm::State::backup);
  // The three transitions came within ~50 ms; their hooks (0.1 s each) ran
  // one after the other: each start is followed by its own end.
  BOOST_TEST(run_until(*this, [&] { return slurp(out).size() >= 72u; }, 5000ms));
  BOOST_TEST(slurp(out).starts_with(
      "start BACKUP\nend BACKUP\nstart MASTER\nend MASTER\nstart BACKUP\nend BACKUP\n"), slurp(out));
  std::remove(out.c_str());
  rmdir(dir);
}

BOOST_FIXTURE_TEST_CASE(track_script_weight_zero_faults_until_it_passes, Fixture) {
  realtime();  // real processes
  char dir[] = "/tmp/vrrp-script-XXXXXX";
  BOOST_REQUIRE(mkdtemp(dir));
  std::string flag = std::string(dir) + "/ok";
  auto inst = instance();
  inst.track.scripts.push_back(script("test -e " + flag, 0));
  make({inst});
  // Not yet run: failing (keepalived starts a script as not OK).
  BOOST_TEST(e().state() == fsm::State::fault);
  run(100ms);
  BOOST_TEST(e().state() == fsm::State::fault);
  std::ofstream(flag).put('1');
  BOOST_TEST(run_until(*this, [&] { return e().state() == fsm::State::master; }));
  std::remove(flag.c_str());
  BOOST_TEST(run_until(*this, [&] { return e().state() == fsm::State::fault; }));
  BOOST_TEST(k->addresses.empty());
  BOOST_TEST(e().counters().script_runs > 3u);
  rmdir(dir);
}

BOOST_FIXTURE_TEST_CASE(track_script_timeout_kills_it_and_counts_as_failure, Fixture) {
  realtime();  // real processes
  auto inst = instance();
  inst.track.scripts.push_back(script("sleep 5; exit 0", -60, cfg::Duration(50)));
  make({inst});
  auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST(run_until(*this, [&] { return e().counters().script_timeouts >= 2u; }));
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 1s));  // killed, not waited for
  BOOST_TEST(e().vars().priority == 40);
}

// Needs root (setuid to `nobody`): CTest runs this case alone
// (integration.vrrp_engine_processes_test.as_user, tests/CMakeLists.txt),
// where exit code 77 shows as skipped, never as passed; as root (CI,
// VIPPROXY_NO_SKIP=1) it always runs.
BOOST_FIXTURE_TEST_CASE(track_script_runs_as_its_user, Fixture) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "SKIPPED: track_script_runs_as_its_user needs root (a script run as nobody)\n");
    const char* no_skip = std::getenv("VIPPROXY_NO_SKIP");
    std::exit(no_skip && std::string(no_skip) == "1" ? 1 : 77);
  }
  realtime();  // real processes
  auto inst = instance();
  auto t = script("test \"$(id -u)\" = 65534 && test \"$(id -g)\" = \"$(id -g nobody)\"", 0);
  t.user = "nobody";
  inst.track.scripts.push_back(t);
  make({inst});
  BOOST_TEST(run_until(*this, [&] { return e().state() == fsm::State::master; }));
}

// A user nobody knows: the run fails (the child's id(1) says so), so a
// weight-0 script keeps the instance in FAULT; the daemon itself never
// looks the user up (vrrp/spawn.cpp).
BOOST_FIXTURE_TEST_CASE(track_script_of_an_unknown_user_fails, Fixture) {
  realtime();
  auto inst = instance();
  auto t = script("exit 0", 0);
  t.user = "vipproxy-no-such-user";
  inst.track.scripts.push_back(t);
  make({inst});
  BOOST_TEST(run_until(*this, [&] { return e().counters().script_runs > 1u; }));
  BOOST_TEST(e().state() == fsm::State::fault);
}

BOOST_AUTO_TEST_SUITE_END()
