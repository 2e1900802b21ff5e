// Pipes for splice(2), lent to a session direction only while bytes are in
// flight: an idle session holds none, so 5,000 idle sessions need no pipe
// descriptors at all (Envoy's splice pump keeps one per direction forever).
#pragma once

#include <atomic>
#include <cstddef>
#include <vector>

namespace proxy {

struct Pipe {
  int rd = -1, wr = -1;
  bool big = false;  // enlarged to PipeBudget::kBytes, holds one unit of the budget
  explicit operator bool() const { return rd >= 0; }
};

// How many pipes of the process may be enlarged from the default 64 KiB to
// 1 MiB. A bulk stream through a 1 MiB pipe moves 16 times as much per
// splice() and per wake-up: iperf3 through the proxy went from 0.87-0.97x
// HAProxy's rate to 1.04-1.23x, at about half the CPU per GB (README,
// "Issue 11 goals: earlier runs"). Linux
// charges a pipe's slots to its owner's user, not to the process: once a
// user holds more than fs.pipe-user-pages-soft (16384 pages, 64 MiB), its
// new pipes get 2 slots and F_SETPIPE_SZ fails with EPERM, for every process
// of that user (pipe(7)). So the big ones are few, whatever the number of
// workers: 16 MiB, a quarter of that limit; a pipe past the budget keeps the
// default size.
class PipeBudget {
 public:
  static constexpr int kBytes = 1 << 20;  // /proc/sys/fs/pipe-max-size's default
  explicit PipeBudget(size_t max) : max_(max) {}
  static PipeBudget& process();  // 16 pipes, shared by every worker
  bool take();
  void give();
  size_t taken() const { return taken_.load(std::memory_order_relaxed); }

 private:
  const size_t max_;
  std::atomic<size_t> taken_{0};
};

// One pool per worker thread; not thread-safe by design, except in_use(),
// which the admin endpoint reads from the control thread.
class PipePool {
 public:
  explicit PipePool(size_t max_spare = 64, PipeBudget& big = PipeBudget::process())
      : max_spare_(max_spare), big_(big) {}
  ~PipePool();
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // An empty pipe, or an invalid Pipe when pipe2() fails (EMFILE): the caller
  // falls back to copying through a buffer. A new pipe is enlarged while the
  // budget allows (only bulk streams splice, so every pipe serves one).
  Pipe acquire();
  // The pipe must be empty (all spliced bytes written out).
  void release(Pipe& p);
  // A pipe that may still hold bytes (session torn down mid-transfer).
  void discard(Pipe& p);
  // Closes the spares that stayed unused since the previous trim, so a burst
  // of traffic does not leave pipes open forever. Called about once a second.
  void trim();
  size_t spare() const { return spare_.size(); }
  size_t in_use() const { return in_use_.load(std::memory_order_relaxed); }

 private:
  size_t max_spare_;
  PipeBudget& big_;
  // Single writer (the worker): relaxed load+store, no locked instruction.
  std::atomic<size_t> in_use_{0};
  std::vector<Pipe> spare_;
  size_t low_water_ = 0;  // fewest spares seen since the last trim
  void destroy(Pipe& p);
};

}  // namespace proxy
