#include "proxy/loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace proxy {

namespace {
constexpr int kMaxEvents = 256;
}

Loop::Loop() : now_(Clock::now()) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wakefd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: read it empty once per wake-up
  ev.data.ptr = nullptr;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) < 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl(eventfd)");
}

Loop::~Loop() {
  for (Timer* t : heap_) t->index_ = Timer::kNone;
  if (wakefd_ >= 0) ::close(wakefd_);
  if (epfd_ >= 0) ::close(epfd_);
}

bool Loop::add(int fd, uint32_t events, Watcher* w, bool edge) {
  epoll_event ev{};
  ev.events = events | (edge ? EPOLLET : 0u);
  ev.data.ptr = w;
  return ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool Loop::modify(int fd, uint32_t events, Watcher* w, bool edge) {
  epoll_event ev{};
  ev.events = events | (edge ? EPOLLET : 0u);
  ev.data.ptr = w;
  return ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void Loop::remove(int fd) { (void)::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

void Loop::post(std::function<void()> fn) {
  bool wake;
  {
    std::lock_guard<PiMutex> lock(post_mu_);
    posted_.push_back(std::move(fn));
    wake = !wake_pending_;
    wake_pending_ = true;
  }
  if (wake) {
    uint64_t one = 1;
    (void)!::write(wakefd_, &one, sizeof one);
  }
}

void Loop::arm(Timer& t, Clock::time_point when) {
  t.when_ = when;
  if (t.index_ == Timer::kNone) {
    t.index_ = heap_.size();
    heap_.push_back(&t);
    heap_up(t.index_);
  } else {
    heap_up(t.index_);
    heap_down(t.index_);
  }
}

void Loop::cancel(Timer& t) {
  if (t.index_ != Timer::kNone) heap_remove(t.index_);
}

void Loop::heap_swap(size_t a, size_t b) {
  std::swap(heap_[a], heap_[b]);
  heap_[a]->index_ = a;
  heap_[b]->index_ = b;
}

void Loop::heap_up(size_t i) {
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!(heap_[i]->when_ < heap_[parent]->when_)) break;
    heap_swap(i, parent);
    i = parent;
  }
}

void Loop::heap_down(size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < heap_.size() && heap_[l]->when_ < heap_[m]->when_) m = l;
    if (r < heap_.size() && heap_[r]->when_ < heap_[m]->when_) m = r;
    if (m == i) return;
    heap_swap(i, m);
    i = m;
  }
}

void Loop::heap_remove(size_t i) {
  Timer* t = heap_[i];
  size_t last = heap_.size() - 1;
  if (i != last) heap_swap(i, last);
  heap_.pop_back();
  t->index_ = Timer::kNone;
  if (i < heap_.size()) {
    heap_up(i);
    heap_down(i);
  }
}

void Loop::run_timers() {
  while (!heap_.empty() && heap_.front()->when_ <= now_) {
    Timer* t = heap_.front();
    heap_remove(0);
    if (t->fn_) t->fn_();  // may re-arm itself or free its owner (after cancelling)
  }
}

void Loop::run_posted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<PiMutex> lock(post_mu_);
    batch.swap(posted_);
    wake_pending_ = false;
  }
  for (auto& fn : batch) fn();
}

void Loop::run_deferred() {
  while (!deferred_.empty()) {
    auto batch = std::move(deferred_);
    deferred_.clear();
    for (auto& fn : batch) fn();
  }
}

void Loop::run_pending() {
  run_posted();
  run_deferred();
}

void Loop::run() {
  epoll_event events[kMaxEvents];
  stopped_ = false;
  while (!stopped_) {
    int timeout = -1;
    if (!heap_.empty()) {
      auto wait = heap_.front()->when_ - Clock::now();
      // Round up: waking a little late is fine, waking early spins.
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wait + std::chrono::microseconds(999));
      timeout = ms.count() < 0 ? 0 : static_cast<int>(std::min<int64_t>(ms.count(), 60'000));
    }
    int n = ::epoll_wait(epfd_, events, kMaxEvents, timeout);
    if (n < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "epoll_wait");
    now_ = Clock::now();
    for (int i = 0; i < n; ++i) {
      auto* w = static_cast<Watcher*>(events[i].data.ptr);
      if (!w) {
        uint64_t v;
        (void)!::read(wakefd_, &v, sizeof v);
        continue;  // posted functions run below, after the I/O of this batch
      }
      w->on_io(events[i].events);
    }
    run_deferred();
    run_timers();
    run_posted();
    run_deferred();
  }
}

}  // namespace proxy
