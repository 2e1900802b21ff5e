// A mutex with priority inheritance (PTHREAD_PRIO_INHERIT), for the locks
// the control thread shares with the worker threads: the log sink
// (daemon/logging.h) and a worker loop's post queue (proxy/loop.h).
//
// With vrrp_rt_priority the control thread is realtime (daemon/realtime.h)
// and the workers are not. A worker preempted while it holds a plain mutex
// (by any realtime thread of the machine above SCHED_OTHER: a backup job's
// tool, a monitoring agent, another daemon's RT thread) keeps the lock for
// as long as it is off its CPU, and the control thread, blocked on that lock,
// waits just as long: the classic priority inversion, here a silence between
// VRRP adverts. With PTHREAD_PRIO_INHERIT the kernel runs the holder at the
// waiter's priority until it unlocks (pthread_mutexattr_setprotocol(3),
// futex(2) FUTEX_LOCK_PI). Uncontended it costs what a plain mutex costs
// (glibc takes and releases it in user space); it does nothing while no
// waiter is realtime. Meets Lockable, so std::lock_guard and spdlog's
// base_sink<Mutex> take it.
#pragma once

#include <pthread.h>

#include <system_error>

namespace proxy {

class PiMutex {
 public:
  PiMutex() {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    const int rc = pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    if (rc == 0) pthread_mutex_init(&m_, &a);
    pthread_mutexattr_destroy(&a);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_mutexattr_setprotocol");
  }
  ~PiMutex() { pthread_mutex_destroy(&m_); }
  PiMutex(const PiMutex&) = delete;
  PiMutex& operator=(const PiMutex&) = delete;

  void lock() {
    if (const int rc = pthread_mutex_lock(&m_); rc != 0)
      throw std::system_error(rc, std::generic_category(), "pthread_mutex_lock");
  }
  bool try_lock() { return pthread_mutex_trylock(&m_) == 0; }
  void unlock() { pthread_mutex_unlock(&m_); }

 private:
  pthread_mutex_t m_;
};

}  // namespace proxy
