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
  explicit operator bool() const { return rd >= 0; }
};

// One pool per worker thread; not thread-safe by design, except in_use(),
// which the admin endpoint reads from the control thread.
class PipePool {
 public:
  explicit PipePool(size_t max_spare = 64) : max_spare_(max_spare) {}
  ~PipePool();
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // An empty pipe, or an invalid Pipe when pipe2() fails (EMFILE): the caller
  // falls back to copying through a buffer.
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
  // Single writer (the worker): relaxed load+store, no locked instruction.
  std::atomic<size_t> in_use_{0};
  std::vector<Pipe> spare_;
  size_t low_water_ = 0;  // fewest spares seen since the last trim
  static void destroy(Pipe& p);
};

}  // namespace proxy
