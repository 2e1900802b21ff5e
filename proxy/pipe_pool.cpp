#include "proxy/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

namespace proxy {

PipeBudget& PipeBudget::process() {
  static PipeBudget budget(16);
  return budget;
}

bool PipeBudget::take() {
  size_t n = taken_.load(std::memory_order_relaxed);
  do {
    if (n >= max_) return false;
  } while (!taken_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
  return true;
}

void PipeBudget::give() { taken_.fetch_sub(1, std::memory_order_relaxed); }

PipePool::~PipePool() {
  for (auto& p : spare_) destroy(p);
}

Pipe PipePool::acquire() {
  Pipe p;
  if (!spare_.empty()) {
    p = spare_.back();
    spare_.pop_back();
    if (spare_.size() < low_water_) low_water_ = spare_.size();
  } else {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return p;
    p.rd = fds[0];
    p.wr = fds[1];
  }
  // A spare made while the budget was spent is enlarged once it allows: the
  // pool reuses its newest spares, so a small one would otherwise stay small.
  if (!p.big && big_.take()) {
    // EPERM when this user already holds too many pipe pages: keep the default.
    if (::fcntl(p.rd, F_SETPIPE_SZ, PipeBudget::kBytes) >= PipeBudget::kBytes) p.big = true;
    else big_.give();
  }
  in_use_.store(in_use_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return p;
}

void PipePool::release(Pipe& p) {
  if (!p) return;
  in_use_.store(in_use_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  if (spare_.size() < max_spare_) {
    spare_.push_back(p);
    p = Pipe{};
  } else {
    destroy(p);
  }
}

void PipePool::trim() {
  for (size_t i = 0; i < low_water_ && !spare_.empty(); ++i) {
    destroy(spare_.back());
    spare_.pop_back();
  }
  low_water_ = spare_.size();
}

void PipePool::discard(Pipe& p) {
  if (!p) return;
  in_use_.store(in_use_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  destroy(p);
}

void PipePool::destroy(Pipe& p) {
  if (p.big) big_.give();
  if (p.rd >= 0) ::close(p.rd);
  if (p.wr >= 0) ::close(p.wr);
  p = Pipe{};
}

}  // namespace proxy
