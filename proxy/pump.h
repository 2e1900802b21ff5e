// The byte pump: moves one direction of a session, from the socket `from`
// to the socket `to`, until one of them would block. Like Envoy's splice
// pump it borrows the two descriptors and reports what it waits for; the
// session owns the sockets and the waiting. One implementation per data
// path behind one interface, testable over socketpair() without a daemon
// (tests/unit/proxy_pump_test.cpp):
//   CopyPump:   recv() into the worker's scratch buffer, send() at once;
//   SplicePump: the same for small messages, splice(2) through a pipe
//               (zero copy) while a direction moves bulk data;
//   KernelPump (proxy/kernel_path.h): an eBPF sk_skb program moves the
//   bytes; the pump accounts for them and passes the FIN on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "proxy/pipe_pool.h"

namespace proxy {

// What the event loop last said about a socket (edge-triggered epoll with
// EPOLLRDHUP). `readable` is cleared by a pump when a read shows the socket
// drained; `rdhup` (the peer's FIN has arrived) stays set.
struct Readiness {
  bool readable = false;
  bool rdhup = false;
};

enum class PumpStatus {
  want_read,   // `from` has nothing more now: wait until it is readable
  want_write,  // `to` is full: wait until it is writable
  done,        // `from` sent FIN and it has been passed on (shutdown(to, SHUT_WR))
  error,       // a socket failed (the session closes)
};

// What a worker lends its pumps: the scratch buffer of the copy path
// (shared by every session of the worker, since bytes stay in it only
// between one recv() and its send()) and the pipe pool.
struct PumpContext {
  PipePool* pipes = nullptr;
  char* scratch = nullptr;
  size_t scratch_size = 0;
};

class Pump {
 public:
  virtual ~Pump() = default;
  // Moves bytes until `from` or `to` would block, the FIN is passed on, or
  // a socket fails. Reads only when everything read before has been
  // written (back-pressure: a slow receiver stops the reading).
  virtual PumpStatus run(int from, Readiness& in, int to) = 0;
  // Gives back what the pump holds (a pipe, a buffer) when the session ends.
  virtual void release() {}
  // The other direction is done: this one's FIN ends the session, whose
  // close() sends it, so no shutdown() call is needed for it.
  void fin_by_close() { fin_by_close_ = true; }
  // For a direction whose FIN was passed on by an earlier pump.
  void mark_done() { eof_ = done_ = true; }

  uint64_t bytes() const { return bytes_; }  // written to `to` so far
  uint64_t reads() const { return reads_; }  // reads that returned data
  bool eof() const { return eof_; }          // `from` sent FIN
  bool done() const { return done_; }        // ...and it was passed on
  // Holds no byte in flight (nothing read and not yet written).
  virtual bool idle() const = 0;
  // Inside a bulk stream (SplicePump splicing).
  virtual bool bulk() const { return false; }
  // Whether the bytes went through a pipe (splice) at least once.
  virtual bool spliced() const { return false; }
  // Could not splice (EINVAL, or no pipe to be had) and copied instead.
  virtual bool fell_back() const { return false; }

 protected:
  uint64_t bytes_ = 0;
  uint64_t reads_ = 0;
  bool eof_ = false;
  bool done_ = false;
  bool fin_by_close_ = false;
};

// recv() into the shared scratch buffer and send() at once; what a slow
// receiver does not take is kept in a buffer of its own until it does.
class CopyPump : public Pump {
 public:
  explicit CopyPump(const PumpContext& ctx) : ctx_(ctx) {}
  PumpStatus run(int from, Readiness& in, int to) override;
  void release() override;
  bool idle() const override { return pending_ == 0; }

 protected:
  // Writes what is pending.
  enum class Flush { empty, blocked, failed };
  Flush flush(int to);
  // One recv() and its send(): true to go on, false with `st` to report.
  bool copy_once(int from, Readiness& in, int to, PumpStatus& st);
  PumpStatus finish(int to);

  PumpContext ctx_;
  std::unique_ptr<char[]> buf_;  // bytes a slow receiver has not taken yet
  size_t buf_off_ = 0;
  size_t pending_ = 0;  // bytes read but not yet written
  size_t last_read_ = 0;  // bytes the last recv() returned
};

// Small messages (the database protocol's usual request/response) are
// copied: one copy each way is cheaper than splice's page juggling for a
// few hundred bytes, and nothing stays allocated. A read that fills the
// scratch buffer means a bulk stream: the direction then splices socket ->
// pipe -> socket until a burst ends short. The pipe is borrowed from the
// worker's pool while bytes move and returned when the socket would block.
class SplicePump : public CopyPump {
 public:
  explicit SplicePump(const PumpContext& ctx) : CopyPump(ctx) {}
  PumpStatus run(int from, Readiness& in, int to) override;
  void release() override;
  bool bulk() const override { return splicing_; }
  bool spliced() const override { return spliced_; }
  bool fell_back() const override { return fell_back_; }

 private:
  Pipe pipe_;
  bool splicing_ = false;  // inside a bulk stream: zero-copy through pipe_
  bool spliced_ = false;
  bool fell_back_ = false;
  size_t burst_ = 0;  // bytes spliced since the last EAGAIN
};

}  // namespace proxy
