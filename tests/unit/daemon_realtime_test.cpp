// The control thread under SCHED_RR (vrrp_rt_priority, daemon/realtime.h):
// only the thread that asked is realtime, and the RLIMIT_RTTIME guard puts a
// thread that spins past kRtTimeLimit back on the normal scheduler.
// Needs CAP_SYS_NICE (root): without it the test exits 77, which CTest shows
// as skipped (scripts/test sets VIPPROXY_NO_SKIP=1 as root: then it fails).
#define BOOST_TEST_MODULE realtime
#include <boost/test/unit_test.hpp>

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "daemon/realtime.h"
#include "proxy/pi_mutex.h"

namespace rt = daemon_::realtime;
using namespace std::chrono_literals;

namespace {

int policy_of(pid_t tid) { return int(::syscall(SYS_sched_getscheduler, tid)) & ~SCHED_RESET_ON_FORK; }

// Whether this process may make a thread SCHED_RR at all (root in a
// container whose cgroup gives realtime no budget may not).
bool realtime_permitted() {
  bool ok = false;
  std::thread t([&] {
    sched_param p{};
    p.sched_priority = 1;
    ok = ::sched_setscheduler(0, SCHED_RR, &p) == 0;
  });
  t.join();
  return ok;
}

struct NeedsRealtime {
  NeedsRealtime() {
    if (realtime_permitted()) return;
    std::printf("skipped: this process may not use SCHED_RR (needs CAP_SYS_NICE)\n");
    if (const char* s = std::getenv("VIPPROXY_NO_SKIP"); s && std::string(s) == "1") std::exit(1);
    std::exit(77);
  }
};
BOOST_TEST_GLOBAL_FIXTURE(NeedsRealtime);

}  // namespace

BOOST_AUTO_TEST_CASE(only_the_calling_thread_and_the_guard_takes_it_back) {
  const pid_t main_tid = pid_t(::syscall(SYS_gettid));
  std::string entered = "not run", during, after;
  int policy_during = -1;
  bool dropped_during = true, dropped_after = false;
  std::thread control([&] {
    const pid_t tid = pid_t(::syscall(SYS_gettid));
    entered = rt::enter(10);
    policy_during = policy_of(tid);
    during = rt::describe();
    dropped_during = rt::dropped();
    // Spin without a blocking system call: after kRtTimeLimit of CPU the
    // kernel sends SIGXCPU and the handler drops this thread to SCHED_OTHER.
    // Wall-clock deadline: the guard counts CPU time, which a loaded
    // machine hands out slower.
    const auto deadline = std::chrono::steady_clock::now() + rt::kRtTimeLimit * 10;
    while (!rt::dropped() && std::chrono::steady_clock::now() < deadline) {
    }
    dropped_after = rt::dropped();
    after = rt::describe();
    BOOST_TEST(policy_of(tid) == SCHED_OTHER);
  });
  control.join();
  BOOST_TEST(entered == "");
  BOOST_TEST(policy_during == SCHED_RR);
  BOOST_TEST(during == "SCHED_RR 10");
  BOOST_TEST(!dropped_during);
  BOOST_TEST(policy_of(main_tid) == SCHED_OTHER);  // other threads untouched
  BOOST_TEST(dropped_after);
  BOOST_TEST(after.find("SCHED_OTHER (realtime dropped") == 0, after);
}

// Children and threads started later do not inherit it (SCHED_RESET_ON_FORK),
// and once forbidden nothing in the process can become realtime again
// without CAP_SYS_NICE (what track scripts would inherit: RLIMIT_RTPRIO 0).
BOOST_AUTO_TEST_CASE(nothing_started_later_inherits_it) {
  int child_policy = -1;
  std::thread control([&] {
    BOOST_REQUIRE(rt::enter(5) == "");
    std::thread later([&] { child_policy = policy_of(pid_t(::syscall(SYS_gettid))); });
    later.join();
    sched_param p{};
    (void)::sched_setscheduler(0, SCHED_OTHER, &p);
  });
  control.join();
  BOOST_TEST(child_policy == SCHED_OTHER);
  rt::forbid_from_now_on();
  rlimit r{};
  BOOST_REQUIRE(::getrlimit(RLIMIT_RTPRIO, &r) == 0);
  BOOST_TEST(r.rlim_cur == 0u);
  BOOST_TEST(r.rlim_max == 0u);
}

// The locks the realtime control thread shares with the workers
// (proxy/pi_mutex.h): a worker (SCHED_OTHER) holds the lock, another
// realtime thread of the machine (SCHED_FIFO 20, standing for any) spins on
// the same CPU, and the control thread (SCHED_FIFO 40) wants the lock. With
// priority inheritance the holder runs at 40 as soon as the control thread
// waits, unlocks, and the control thread has the lock while the spinner is
// still spinning. With a plain mutex the holder gets no CPU until the
// spinner stops by itself.
namespace {

void pin_and_schedule(int cpu, int policy, int priority) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  BOOST_REQUIRE(::sched_setaffinity(0, sizeof set, &set) == 0);
  sched_param p{};
  p.sched_priority = priority;
  BOOST_REQUIRE(::sched_setscheduler(0, policy, &p) == 0);
}

// Whether the control thread had the lock before the spinner gave up after `spin`.
template <class Mutex>
bool waiter_got_the_lock_during_the_spin(std::chrono::milliseconds spin) {
  cpu_set_t mine;
  BOOST_REQUIRE(::sched_getaffinity(0, sizeof mine, &mine) == 0);
  int cpu = 0;
  while (!CPU_ISSET(cpu, &mine)) ++cpu;
  Mutex mu;
  std::atomic<bool> holding{false}, control_ready{false}, spinning{false}, go{false}, done{false};
  bool got_it_during_spin = false;
  // Threads wait with atomic wait() (futex): a sleeping thread, not a
  // spinning one, until its turn.
  std::thread worker([&] {
    pin_and_schedule(cpu, SCHED_OTHER, 0);
    mu.lock();
    holding = true;
    holding.notify_all();
    while (!go.load()) {
    }
    mu.unlock();
  });
  holding.wait(false);
  std::thread control([&] {
    pin_and_schedule(cpu, SCHED_FIFO, 40);
    control_ready = true;
    control_ready.notify_all();
    spinning.wait(false);
    go = true;
    mu.lock();
    done = true;
    mu.unlock();
  });
  // Only now the spinner: started earlier, it could starve the control
  // thread on its CPU before that thread made itself realtime.
  control_ready.wait(false);
  std::thread hog([&] {
    pin_and_schedule(cpu, SCHED_FIFO, 20);
    spinning = true;
    spinning.notify_all();  // the control thread (40) preempts us here, and blocks on the lock
    const auto deadline = std::chrono::steady_clock::now() + spin;
    while (!done.load() && std::chrono::steady_clock::now() < deadline) {
    }
    got_it_during_spin = done.load();
  });
  hog.join();
  control.join();
  worker.join();
  return got_it_during_spin;
}

}  // namespace

BOOST_AUTO_TEST_CASE(shared_locks_inherit_the_control_threads_priority) {
  BOOST_TEST(waiter_got_the_lock_during_the_spin<proxy::PiMutex>(std::chrono::milliseconds(500)));
  // The same with a plain mutex, to show the inversion the test sets up:
  // logged, not asserted. SCHED_OTHER gets a share after realtime threads
  // used sched_rt_runtime_us (950 ms) of a second on the CPU, the machine's
  // realtime threads together: this module's first case spins 500 ms, and
  // tests beside it run realtime canaries. Alone it showed the inversion
  // 20 times in 20 (2026-12-04).
  const bool plain = waiter_got_the_lock_during_the_spin<std::mutex>(std::chrono::milliseconds(300));
  BOOST_TEST_MESSAGE("a plain std::mutex: the control thread had the lock "
                     << (plain ? "during the spin (the holder was given a throttled realtime CPU's share)"
                               : "only after the spin (priority inversion)"));
}
