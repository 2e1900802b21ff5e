// The kernel data path: once a session has shown it will live, both of its
// sockets go into a SOCKHASH whose sk_skb verdict program
// (proxy/bpf/forward.bpf.c) redirects each socket's received bytes to its
// peer's egress, so no byte and no wake-up goes through userspace until the
// session ends. One KernelPath per worker (its own maps, program and ring
// buffer), loaded at start while the daemon still holds CAP_BPF and
// CAP_NET_ADMIN; afterwards only the map and ring buffer descriptors are
// used, which needs no capability.
//
// What the kernel does not do, userspace does (proxy/session.cpp):
//  - the redirect carries no FIN: on EPOLLRDHUP, once the peer's socket
//    holds every redirected byte, shutdown(peer, SHUT_WR);
//  - redirected bytes do not see the receiver's window: the program reports
//    every `report_every` bytes per socket and userspace takes a session
//    back (held, then the copy pump) when more than `max_in_flight` bytes
//    wait in the kernel for a slow reader, or when the session turns out to
//    be a bulk stream, which splice moves faster. At each report userspace
//    grants the socket credit up to what its peer has taken plus a margin;
//    a socket that would pass its credit before userspace looks (a sender
//    faster than the worker's reaction) is held by the program at once, so
//    the bound does not depend on how soon the worker runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "proxy/pump.h"

struct forward;
struct ring_buffer;

namespace proxy {

class KernelPath;

// What one TCP socket has received and been given to send, from TCP_INFO
// and SIOCINQ/SIOCOUTQ.
// TCP counts a FIN as one byte (in tcpi_bytes_received, tcpi_bytes_acked
// and SIOCOUTQ) and the active opener's SYN as one more in bytes_acked: the
// FINs are taken out here, the SYN cancels out against the baseline.
struct SocketBytes {
  uint64_t received = 0;  // data bytes received (tcpi_bytes_received, less the FIN)
  uint64_t unread = 0;    // SIOCINQ: received, not yet taken by anyone
  uint64_t written = 0;   // given to send: tcpi_bytes_acked + SIOCOUTQ, less our FIN
  uint8_t state = 0;      // tcpi_state
  bool fin_out = false;   // the state says our FIN went out: one byte taken out of `written`
  bool stable = false;    // no byte or ACK arrived while the four values were read
};
bool socket_bytes(int fd, SocketBytes& out);

// One direction of a session the kernel forwards: the program moves the
// bytes; run() only accounts for them (from TCP_INFO and the socket queues)
// and passes the FIN on once `to` holds every redirected byte (the redirect
// carries no FIN, and a shutdown before that would lose the tail).
// want_read: wait for EPOLLRDHUP on `from`; want_write: bytes are still on
// their way to `to`, look again shortly.
class KernelPump : public Pump {
 public:
  // Takes the baselines; call before the sockets go into the maps.
  // `moved`: bytes userspace moved in this direction before.
  KernelPump(int from, int to, uint64_t moved);
  PumpStatus run(int from, Readiness& in, int to) override;
  bool idle() const override { return in_flight_ == 0; }
  // The baselines were read exactly; otherwise the session must not be
  // handed over with this pump.
  bool counted() const { return counted_; }
  // Bytes the kernel took from `from` that `to` does not hold yet, as of
  // the last run() or refresh().
  uint64_t in_flight() const { return in_flight_; }
  // Bytes `to` has taken since the hand-over, as of the last refresh (the
  // program's count of redirected bytes starts at the hand-over too).
  uint64_t delivered() const { return delivered_; }
  // False when the sockets cannot be read or the program dropped bytes it
  // could not trim (Counts::broken): the session must end.
  bool refresh(int from, int to);
  // After the hand-over: where the program counts what it redirected from
  // `from` (the socket's own SIOCINQ no longer tells once it is in a
  // SOCKHASH: it reports the psock's queue only).
  void bind(KernelPath* k, uint64_t cookie_from) {
    kernel_ = k;
    cookie_ = cookie_from;
  }

 private:
  KernelPath* kernel_ = nullptr;
  uint64_t cookie_ = 0;
  uint64_t base_taken_ = 0, base_written_ = 0, moved_ = 0;
  uint64_t in_flight_ = 0, unread_ = 0, delivered_ = 0;
  bool counted_ = true;
  bool sent_fin_ = false;  // run() shut `to` down
};

class KernelPath {
 public:
  struct Limits {
    size_t max_sessions = 16384;
    uint64_t report_every = 256 * 1024;
    // Tests only: every cut of a retransmitted head fails, as if the
    // kernel had refused it (forward.bpf.c, fail_cuts); the daemon sets it
    // from VIPPROXY_TEST_FAIL_CUTS=1.
    bool fail_cuts = false;
    // Tests only: attach() waits 50 ms after `a` went into the program's
    // map, then finds `b` refused, as if a FIN had come on it meanwhile;
    // the daemon sets it from VIPPROXY_TEST_REFUSE_SECOND=1.
    bool refuse_second = false;
  };
  // Loads and attaches the program and checks, on a loopback socket pair,
  // that bytes go through both ways. Null, with `why` saying what failed,
  // when the running kernel or the daemon's privileges do not allow it.
  static std::unique_ptr<KernelPath> load(const Limits& limits, std::string& why);
  ~KernelPath();
  KernelPath(const KernelPath&) = delete;
  KernelPath& operator=(const KernelPath&) = delete;

  // Hands the connected sockets `a` and `b` to the kernel: what `a`
  // receives goes out of `b` and back. Bytes that arrived before are
  // forwarded too, in order. False (errno set) when the kernel refuses
  // (EOPNOTSUPP: a FIN has arrived already; E2BIG/ENOMEM: the maps are
  // full): then nothing changed. `credit`: how many bytes the program may
  // redirect from each socket before holding it (grant() raises it); 0:
  // no limit.
  // `partial` (given): when `b` is refused the program's map after `a` went
  // in (a FIN or a reset came on `b` in between), `a` may have had bytes
  // redirected already, and taking it out again can lose them (see `held`
  // in forward.bpf.c): so `a` is held instead, both stay in the maps, and
  // true is returned with *partial set: the caller takes the session back
  // at once. Without it (the self-test), everything is undone.
  bool attach(int a, int b, uint64_t& cookie_a, uint64_t& cookie_b, uint64_t credit = 0, bool* partial = nullptr);
  // The program may redirect from `cookie` until its count of redirected
  // bytes reaches `limit`.
  bool grant(uint64_t cookie, uint64_t limit);
  // Whether `cookie` is held (by hold(), or by the program when it ran out
  // of credit).
  bool held(uint64_t cookie) const;
  // Stops redirecting what `cookie` receives: from now on its bytes stay
  // with it, for recv() (not splice(): they are in the psock's queue, not
  // the socket's); bytes already redirected to its peer still go out. The
  // socket stays in the maps (see `held` in proxy/bpf/forward.bpf.c for why
  // it must not leave them while bytes may arrive).
  bool hold(uint64_t cookie);
  // Forgets the socket: out of every map (its queued egress and held bytes
  // are dropped: only when the session closes).
  void forget(uint64_t cookie);

  // The ring buffer's descriptor (readable when reports wait) and reading
  // them: fn(cookie of the socket whose bytes passed another report_every).
  int events_fd() const;
  void consume(const std::function<void(uint64_t cookie)>& fn);
  // Reports the program could not put in the ring buffer (it was full)
  // since the start: when this grows, every session of this kernel path
  // must be looked at as if it had reported (forward.bpf.c, reports_lost).
  uint64_t reports_lost() const;
  // What the program counted for the socket with this cookie (false: not
  // in the maps).
  struct Counts {
    uint64_t redirected = 0;  // bytes redirected to the peer
    uint64_t trimmed = 0;     // bytes TCP handed over twice, cut off (forward.bpf.c, trim_seen)
    bool broken = false;      // a skb could not be trimmed and was dropped: close the session
  };
  bool counts(uint64_t cookie, Counts& out) const;
  const char* attach_type() const { return attach_type_; }

 private:
  KernelPath() = default;
  forward* skel_ = nullptr;
  ring_buffer* rb_ = nullptr;
  int rb_fd_ = -1;
  const char* attach_type_ = "";
  bool refuse_second_ = false;
  const std::function<void(uint64_t)>* sink_ = nullptr;
  static int on_event(void* ctx, void* data, size_t size);
};

}  // namespace proxy
