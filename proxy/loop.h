// A worker's event loop: one epoll instance, a timer heap and a queue of
// functions posted from other threads. It replaces Asio's reactor on the
// data path for two reasons:
//  - sockets are registered once, edge-triggered, with EPOLLRDHUP: a read
//    shorter than asked means the socket is drained, and a FIN that came
//    with the last bytes is known from the event (EPOLLRDHUP), so no
//    speculative read that returns EAGAIN follows every short read (Asio's
//    reactor does not report EPOLLRDHUP);
//  - EPOLLOUT is part of the edge-triggered registration, so it costs no
//    epoll_ctl per write that waits and wakes nothing unless a write filled
//    the socket (the kernel signals it only after SOCK_NOSPACE was set).
// Timers cost no system call (the heap's earliest deadline is epoll_wait's
// timeout); posted functions wake the loop through an eventfd.
//
// Single-threaded: everything but post() runs on the loop's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "proxy/pi_mutex.h"

namespace proxy {

class Loop {
 public:
  using Clock = std::chrono::steady_clock;

  // What an fd's events are delivered to (the epoll data pointer).
  class Watcher {
   public:
    virtual void on_io(uint32_t events) = 0;

   protected:
    ~Watcher() = default;
  };

  class Timer {
   public:
    explicit Timer(std::function<void()> fn = {}) : fn_(std::move(fn)) {}
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;
    bool armed() const { return index_ != kNone; }
    Clock::time_point when() const { return when_; }
    void set(std::function<void()> fn) { fn_ = std::move(fn); }

   private:
    friend class Loop;
    static constexpr size_t kNone = ~size_t{0};
    std::function<void()> fn_;
    Clock::time_point when_{};
    size_t index_ = kNone;
  };

  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // EPOLL_CTL_ADD / MOD; false with errno set on failure. Edge-triggered
  // (EPOLLET) unless `edge` is false.
  bool add(int fd, uint32_t events, Watcher* w, bool edge = true);
  bool modify(int fd, uint32_t events, Watcher* w, bool edge = true);
  // Not needed before close(fd) (the kernel forgets a closed socket).
  void remove(int fd);

  // (Re)arms `t` for `when`; cancel() is idempotent. A timer must be
  // cancelled before it is destroyed.
  void arm(Timer& t, Clock::time_point when);
  void arm_after(Timer& t, Clock::duration d) { arm(t, now() + d); }
  void cancel(Timer& t);

  // Thread-safe: runs `fn` on the loop's thread.
  void post(std::function<void()> fn);
  // Runs `fn` after the events of the current batch have been delivered:
  // for freeing an object whose fd may still have an event in the batch.
  void defer(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }

  // Runs until stop() is called on the loop's thread.
  void run();
  void stop() { stopped_ = true; }
  // Runs what was posted and deferred so far (a loop whose thread is gone).
  void run_pending();

  // The time the current batch started (cheap; no clock read per use).
  Clock::time_point now() const { return now_; }
  void refresh_now() { now_ = Clock::now(); }

 private:
  void heap_up(size_t i);
  void heap_down(size_t i);
  void heap_swap(size_t a, size_t b);
  void heap_remove(size_t i);
  void run_timers();
  void run_posted();
  void run_deferred();

  int epfd_ = -1;
  int wakefd_ = -1;
  bool stopped_ = false;
  Clock::time_point now_;
  std::vector<Timer*> heap_;
  std::vector<std::function<void()>> deferred_;
  PiMutex post_mu_;  // the control thread posts too (proxy/pi_mutex.h)
  std::vector<std::function<void()>> posted_;
  bool wake_pending_ = false;  // under post_mu_
};

}  // namespace proxy
