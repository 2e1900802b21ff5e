#include "daemon/realtime.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace daemon_::realtime {

namespace {

std::atomic<pid_t> control_tid{0};
std::atomic<bool> guard_fired{false};

// RLIMIT_RTTIME's SIGXCPU is sent to the process, so any thread may run
// this: it moves the control thread by its tid. sched_setscheduler(2) is a
// plain system call, safe in a signal handler.
void on_sigxcpu(int) {
  const int saved_errno = errno;  // the interrupted code may be about to read it
  const pid_t tid = control_tid.load();
  if (tid != 0) {
    sched_param p{};
    p.sched_priority = 0;
    (void)::syscall(SYS_sched_setscheduler, tid, SCHED_OTHER, &p);
    guard_fired.store(true);
  }
  errno = saved_errno;
}

}  // namespace

std::string enter(unsigned priority) {
  const pid_t tid = pid_t(::syscall(SYS_gettid));
  // The guard first: never a realtime thread without it. RLIMIT_RTTIME
  // counts microseconds of CPU a realtime task uses without a blocking
  // system call; the hard limit (SIGKILL) stays where it is (unlimited by
  // default).
  rlimit old{};
  if (::getrlimit(RLIMIT_RTTIME, &old) != 0) return std::string("getrlimit(RLIMIT_RTTIME): ") + std::strerror(errno);
  rlimit lim = old;
  lim.rlim_cur = rlim_t(std::chrono::microseconds(kRtTimeLimit).count());
  if (old.rlim_max != RLIM_INFINITY && lim.rlim_cur > old.rlim_max) lim.rlim_cur = old.rlim_max;
  struct sigaction sa {};
  sa.sa_handler = on_sigxcpu;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (::sigaction(SIGXCPU, &sa, nullptr) != 0) return std::string("sigaction(SIGXCPU): ") + std::strerror(errno);
  if (::setrlimit(RLIMIT_RTTIME, &lim) != 0) return std::string("setrlimit(RLIMIT_RTTIME): ") + std::strerror(errno);
  control_tid.store(tid);
  sched_param p{};
  p.sched_priority = int(priority);
  if (::sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &p) != 0) {
    const int err = errno;
    control_tid.store(0);
    (void)::setrlimit(RLIMIT_RTTIME, &old);
    return std::string("sched_setscheduler(SCHED_RR, ") + std::to_string(priority) + "): " + std::strerror(err) +
           (err == EPERM ? " (needs CAP_SYS_NICE, or LimitRTPRIO= in the unit)" : "");
  }
  return {};
}

void forbid_from_now_on() {
  // Lowering is always allowed; a thread already under SCHED_RR keeps it.
  rlimit none{0, 0};
  (void)::setrlimit(RLIMIT_RTPRIO, &none);
}

bool dropped() { return guard_fired.load(); }

std::string describe() {
  const pid_t tid = control_tid.load();
  if (tid == 0) return "SCHED_OTHER";
  const int policy = int(::syscall(SYS_sched_getscheduler, tid));
  sched_param p{};
  (void)::syscall(SYS_sched_getparam, tid, &p);
  if ((policy & ~SCHED_RESET_ON_FORK) == SCHED_RR) return "SCHED_RR " + std::to_string(p.sched_priority);
  if (guard_fired.load())
    return "SCHED_OTHER (realtime dropped: ran " + std::to_string(kRtTimeLimit.count()) + " ms without sleeping)";
  return "SCHED_OTHER";
}

}  // namespace daemon_::realtime
