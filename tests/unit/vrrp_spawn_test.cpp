// The child-process runner of track scripts and notify hooks (vrrp/spawn.h):
// what a child inherits, the held start, and the notify queue's bounds.
#define BOOST_TEST_MODULE vrrp_spawn
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "vrrp/spawn.h"

using namespace vrrp;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/vrrp-spawn-XXXXXX";
    BOOST_REQUIRE(::mkdtemp(t));
    path = t;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

// Lists the descriptors of the process that runs it, one "N -> target" a
// line, leaving out the one it lists them with.
const char* kListFds =
    "import os\n"
    "out = []\n"
    "for n in sorted(os.listdir('/proc/self/fd'), key=int):\n"
    "    try:\n"
    "        out.append(n + ' -> ' + os.readlink('/proc/self/fd/' + n))\n"
    "    except FileNotFoundError:\n"
    "        pass\n"
    "import sys\n"
    "open(sys.argv[1], 'w').write('\\n'.join(out) + '\\n')\n";

template <class F>
bool run_until(asio::io_context& io, F cond, std::chrono::milliseconds limit = 5000ms) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    io.run_for(10ms);
  }
  return true;
}

}  // namespace

// Descriptors the daemon opened without close-on-exec (as Asio does) must
// not reach a script: the child gets 0, 1 and 2 only.
BOOST_AUTO_TEST_CASE(child_gets_only_stdin_stdout_stderr) {
  TempDir d;
  int leaky[2];
  BOOST_REQUIRE(::pipe(leaky) == 0);  // no O_CLOEXEC on purpose
  int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  BOOST_REQUIRE(sock >= 0);
  BOOST_REQUIRE((::fcntl(sock, F_GETFD) & FD_CLOEXEC) == 0);

  asio::io_context io;
  Spawner sp(io);
  std::string out = d.path + "/fds";
  bool done = false;
  ChildExit result;
  sp.run({"/usr/bin/python3", "-c", kListFds, out}, "", 10s, [&](const ChildExit& r) {
    result = r;
    done = true;
  });
  BOOST_REQUIRE(run_until(io, [&] { return done; }));
  BOOST_TEST(result.success(), result.detail);
  std::string fds = slurp(out);
  BOOST_TEST_INFO(fds);
  std::istringstream lines(fds);
  std::string line;
  std::vector<int> numbers;
  while (std::getline(lines, line))
    if (!line.empty()) numbers.push_back(std::stoi(line));
  BOOST_TEST(numbers == (std::vector<int>{0, 1, 2}), boost::test_tools::per_element());
  BOOST_TEST(fds.find("0 -> /dev/null") == 0u);
  ::close(leaky[0]);
  ::close(leaky[1]);
  ::close(sock);
}

// While held, nothing starts; release() starts what waited, in order, and a
// timeout counts from the start, not from the request.
BOOST_AUTO_TEST_CASE(held_runs_start_at_release_in_order) {
  TempDir d;
  asio::io_context io;
  Spawner sp(io, /*held=*/true);
  std::string out = d.path + "/log";
  int finished = 0;
  bool timed_out = false;
  for (const char* word : {"one", "two"})
    sp.run(Spawner::shell(std::string("echo ") + word + " >>" + out + "; sleep 0.05"), "", 2s,
           [&](const ChildExit& r) {
             timed_out = timed_out || r.timed_out;
             ++finished;
           });
  io.run_for(300ms);
  BOOST_TEST(sp.running() == 0u);
  BOOST_TEST(!std::ifstream(out).good());
  sp.release();
  BOOST_TEST(sp.running() == 2u);
  BOOST_REQUIRE(run_until(io, [&] { return finished == 2; }));
  BOOST_TEST(!timed_out);
  std::string log = slurp(out);
  BOOST_TEST((log == "one\ntwo\n" || log == "two\none\n"), log);  // both ran (concurrently)
}

// Past kMaxWaiting the oldest waiting hook is dropped; stopping() drops the
// rest and lets the next one (the "stop" hook) start beside the running one.
BOOST_AUTO_TEST_CASE(notify_queue_bounds) {
  TempDir d;
  asio::io_context io;
  Spawner sp(io);
  NotifyQueue q(sp, "VI_1");
  q.set_limits(10s, 1);
  std::string out = d.path + "/log";
  for (int i = 0; i < 40; ++i) q.run("echo $1 >>" + out + "; sleep 30", {std::to_string(i)});
  BOOST_TEST(q.running() == 1u);
  BOOST_TEST(q.waiting() == NotifyQueue::kMaxWaiting);
  BOOST_TEST(q.stats().dropped == 40u - 1u - NotifyQueue::kMaxWaiting);
  BOOST_TEST(q.stats().started == 1u);
  // The newest survive: the first waiting one is number 40 - 32 = 8.
  q.set_limits(10s, 2);
  BOOST_TEST(q.running() == 2u);
  BOOST_REQUIRE(run_until(io, [&] { return slurp(out).size() >= 4; }));
  std::string log = slurp(out);
  BOOST_TEST((log == "0\n8\n" || log == "8\n0\n"), log);

  q.stopping();
  BOOST_TEST(q.waiting() == 0u);
  BOOST_TEST(q.stats().dropped == 40u - 2u);
  q.run("echo stop >>" + out, {});
  BOOST_TEST(q.running() == 3u);  // started at once, past max_running
  BOOST_REQUIRE(run_until(io, [&] { return q.running() == 2u; }));
  BOOST_TEST(slurp(out).find("stop\n") != std::string::npos);
  sp.stop();  // kills and reaps the two sleepers
  BOOST_TEST(sp.running() == 0u);
}

// A hook that outlives notify.timeout is killed; the kill is counted.
BOOST_AUTO_TEST_CASE(notify_queue_timeout) {
  asio::io_context io;
  Spawner sp(io);
  NotifyQueue q(sp, "VI_1");
  q.set_limits(200ms, 1);
  auto t0 = std::chrono::steady_clock::now();
  q.run("sleep 30", {});
  q.run("true", {});
  BOOST_REQUIRE(run_until(io, [&] { return q.running() == 0u && q.waiting() == 0u; }));
  BOOST_TEST(q.stats().timed_out == 1u);
  BOOST_TEST(q.stats().started == 2u);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 >= 200ms));
}

// A daemon started by a parent that ignored SIGCHLD (a shell's `trap ''
// CHLD`, a supervisor that does not reset it: SIG_IGN survives exec) has its
// children reaped by the kernel: waitpid() then fails with ECHILD and
// reported status 0, so every failing track script counted as passing. The
// spawner puts SIGCHLD back to its default, and a status it could not read
// is never a success.
BOOST_AUTO_TEST_CASE(exit_status_kept_when_sigchld_was_ignored) {
  struct sigaction ign {}, old{};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  BOOST_REQUIRE(::sigaction(SIGCHLD, &ign, &old) == 0);
  asio::io_context io;
  Spawner sp(io);
  bool done = false;
  ChildExit result;
  sp.run(Spawner::shell("exit 3"), "", 5s, [&](const ChildExit& r) {
    result = r;
    done = true;
  });
  BOOST_REQUIRE(run_until(io, [&] { return done; }));
  BOOST_TEST(!result.success());
  BOOST_TEST(WIFEXITED(result.status));
  BOOST_TEST(WEXITSTATUS(result.status) == 3);
  ::sigaction(SIGCHLD, &old, nullptr);
}

// cancel(): a running child is killed at once (not at its timeout), one
// waiting for release() never starts; `done` says cancelled either way.
BOOST_AUTO_TEST_CASE(cancel_kills_a_run_or_drops_a_held_one) {
  asio::io_context io;
  Spawner sp(io);
  bool done = false;
  ChildExit result;
  auto t0 = std::chrono::steady_clock::now();
  uint64_t id = sp.run(Spawner::shell("exec sleep 60"), "", 120s, [&](const ChildExit& r) {
    result = r;
    done = true;
  });
  BOOST_REQUIRE(id != 0u);
  BOOST_REQUIRE(sp.running() == 1u);
  sp.cancel(id + 1000);  // no such run: nothing happens
  BOOST_TEST(sp.running() == 1u);
  sp.cancel(id);
  BOOST_REQUIRE(run_until(io, [&] { return done; }));
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 10s));
  BOOST_TEST(result.cancelled);
  BOOST_TEST(!result.timed_out);
  BOOST_TEST(!result.success());
  BOOST_TEST(sp.running() == 0u);

  Spawner held(io, true);
  bool held_done = false;
  ChildExit held_result;
  uint64_t hid = held.run(Spawner::shell("exit 0"), "", 5s, [&](const ChildExit& r) {
    held_result = r;
    held_done = true;
  });
  held.cancel(hid);
  BOOST_REQUIRE(run_until(io, [&] { return held_done; }));
  BOOST_TEST(held_result.cancelled);
  BOOST_TEST(!held_result.started);
  held.release();
  BOOST_TEST(held.running() == 0u);  // it never starts
}

// systemd's notification and watchdog variables stay with the daemon: a
// child that sees them could speak for our unit (READY=1, WATCHDOG=1).
BOOST_AUTO_TEST_CASE(child_does_not_inherit_systemd_notify_variables) {
  ::setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
  ::setenv("WATCHDOG_USEC", "30000000", 1);
  ::setenv("WATCHDOG_PID", "1", 1);
  ::setenv("VIPPROXY_SPAWN_TEST_KEPT", "yes", 1);
  asio::io_context io;
  Spawner sp(io);
  bool done = false;
  ChildExit result;
  sp.run(Spawner::shell("test -z \"$NOTIFY_SOCKET$WATCHDOG_USEC$WATCHDOG_PID\" && test \"$VIPPROXY_SPAWN_TEST_KEPT\" = yes"),
         "", 5s, [&](const ChildExit& r) {
           result = r;
           done = true;
         });
  BOOST_REQUIRE(run_until(io, [&] { return done; }));
  BOOST_TEST(result.success());
  for (const char* v : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "VIPPROXY_SPAWN_TEST_KEPT"}) ::unsetenv(v);
}

// A child gets the soft RLIMIT_NOFILE the daemon started with (through
// prlimit), not the one the daemon lifted for itself; its hard limit stays.
BOOST_AUTO_TEST_CASE(child_gets_the_soft_fd_limit_set_for_children) {
  rlimit own{};
  BOOST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &own) == 0);
  BOOST_REQUIRE(own.rlim_cur > 1000);
  TempDir d;
  asio::io_context io;
  Spawner sp(io);
  Spawner::set_children_nofile(1000);
  std::string out = d.path + "/limits";
  bool done = false;
  ChildExit result;
  sp.run(Spawner::shell("echo $(ulimit -Sn) $(ulimit -Hn) >" + out), "", 5s, [&](const ChildExit& r) {
    result = r;
    done = true;
  });
  Spawner::set_children_nofile(0);
  BOOST_REQUIRE(run_until(io, [&] { return done; }));
  BOOST_TEST(result.success(), result.detail);
  const std::string hard = own.rlim_max == RLIM_INFINITY ? "unlimited" : std::to_string(own.rlim_max);
  BOOST_TEST(slurp(out) == "1000 " + hard + "\n");
}
