// A session on the kernel path (proxy/kernel_path.h): handed over once it
// has shown it will live, taken back to the copy pump for a slow reader or a
// bulk stream after what the kernel still holds has reached its socket. The rest
// of the session is in session.cpp.
#include <linux/sockios.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "proxy/kernel_path.h"
#include "proxy/session.h"
#include "proxy/worker.h"

namespace proxy {

namespace {
// A session goes to the kernel path once each direction has read this many
// messages with nothing left in flight (it has shown it will live: a
// pgbench -C transaction, a TCP check or a short query stay in userspace,
// where setting up the maps would cost more than they save).
// VIPPROXY_KERNEL_AFTER_EXCHANGES overrides it (tests hand sessions over at
// once to run every proxy test through the kernel path).
uint64_t kernel_after() {
  static const uint64_t n = [] {
    const char* v = std::getenv("VIPPROXY_KERNEL_AFTER_EXCHANGES");
    return v && *v ? std::strtoull(v, nullptr, 10) : 8ull;
  }();
  return n;
}
// Bytes the kernel may hold for a slow reader (redirected, not yet in the
// reader's socket) before the session is taken back to userspace, where the
// reader's window holds the sender back again.
constexpr uint64_t kMaxInFlight = 1 << 20;
// What the program may redirect from a socket beyond what its peer has
// taken, as of the last report (proxy/kernel_path.h): past it the program
// holds the socket itself. Twice the take-back threshold: a reader that keeps
// up is granted more at every report (each 256 KiB) long before it gets there.
constexpr uint64_t kCredit = 2 * kMaxInFlight;
// More reports than this per second (the program reports every 256 KiB):
// a bulk stream, which splice moves faster than the kernel path's per-skb
// redirect (README, "Data path").
constexpr uint32_t kBulkReportsPerSecond = 256;
constexpr auto kKickMax = std::chrono::milliseconds(20);
// Room a take-back adds to a send queue beyond the bytes waiting for it:
// sk_sndbuf counts skb truesize, not payload.
constexpr uint64_t kSendRoomSlack = 256 * 1024;
// After a take-back a socket keeps at least this send buffer (Linux's
// default tcp_wmem maximum, what autotuning would let it grow to), or the
// one it had if larger: setting SO_SNDBUF turns autotuning off.
constexpr uint64_t kSendBufferAfter = 4 << 20;

// SO_SNDBUFFORCE passes net.core.wmem_max (CAP_NET_ADMIN, which the daemon
// keeps for a proxy with data_path kernel, daemon/privileges.cpp); without
// it SO_SNDBUF, capped there. `bytes` is what
// the kernel should hold: it doubles what it is given (socket(7)).
bool set_send_buffer(int fd, uint64_t bytes) {
  const int half = static_cast<int>(std::min<uint64_t>(bytes / 2, INT_MAX / 2));
  return setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &half, sizeof half) == 0 ||
         setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &half, sizeof half) == 0;
}
}  // namespace

void Session::maybe_hand_over() {
  // Both directions waiting for bytes with none in flight, neither inside a
  // bulk stream nor half-closed, and enough exchanges to show the session
  // will live.
  for (int d = 0; d < 2; ++d) {
    const Pump& p = *pump_[d];
    if (wait_[d] != Wait::read || !p.idle() || p.bulk() || p.eof() || p.reads() < kernel_after()) return;
  }
  hand_over();
}

void Session::hand_over() {
  KernelPath* k = worker_.kernel();
  // Baselines before the sockets go into the maps: what userspace moved.
  auto p0 = std::make_unique<KernelPump>(side_[0].fd, side_[1].fd, pump_[0]->bytes());
  auto p1 = std::make_unique<KernelPump>(side_[1].fd, side_[0].fd, pump_[1]->bytes());
  if (!p0->counted() || !p1->counted()) {
    // Bytes or ACKs arrived while the baselines were read: look again at
    // the next idle moment.
    return;
  }
  bool partial = false;
  if (!k->attach(side_[0].fd, side_[1].fd, cookie_[0], cookie_[1], kCredit, &partial)) {
    // A FIN came in the meantime (EOPNOTSUPP), or the maps are full: this
    // session stays on splice.
    const int e = errno;
    kernel_wanted_ = false;
    bump(counters_.kernel_refusals);
    if (e == E2BIG || e == ENOMEM) {
      // Capacity, which the operator should hear of (a FIN racing the
      // hand-over is not): at most once per 5 s per worker.
      static thread_local Loop::Clock::time_point last;
      if (const auto now = loop_.now(); now - last > std::chrono::seconds(5)) {
        last = now;
        spdlog::warn("proxy {}: the kernel path's maps are full ({}): new sessions stay on splice "
                     "(kernel_refusals)",
                     settings().name, std::strerror(e));
      }
    }
    spdlog::debug("proxy {}: kernel path refused a session: {}", settings().name, std::strerror(e));
    return;
  }
  // Only a FIN (EPOLLRDHUP) or an error concerns us from now on: the bytes
  // the kernel moves must not wake the loop (on 6.4+ every redirected
  // segment wakes EPOLLIN waiters).
  for (auto& s : side_) loop_.modify(s.fd, EPOLLRDHUP, &s);
  // The kernel pumps start their count at what userspace moved.
  for (auto& p : pump_) p->release();
  p0->bind(k, cookie_[0]);
  p1->bind(k, cookie_[1]);
  pump_[0] = std::move(p0);
  pump_[1] = std::move(p1);
  worker_.kernel_session(cookie_[0], this);
  worker_.kernel_session(cookie_[1], this);
  kstate_ = KState::forwarding;
  // No write of ours tells when a reader stops: look all along (on_stall).
  if (user_timeout_.count() > 0) loop_.arm_after(stall_, stall_every());
  report_window_ = loop_.now();
  reports_ = 0;
  set_path(SessionPath::kernel);
  bump(counters_.kernel_handovers);
  if (partial) {
    // The backend's socket was refused after the client's went in (a FIN
    // or reset came on it meanwhile): what the kernel forwarded in between
    // is counted, the rest goes on in userspace.
    take_back("the kernel refused its second socket");
    return;
  }
  // A FIN may have come with the last bytes: look once.
  for (int d = 0; d < 2 && state_ == State::established && in_kernel(); ++d)
    if (side_[d].ready.rdhup) run(d);
}

void Session::on_kernel_report(uint64_t cookie, bool reported) {
  if (kstate_ != KState::forwarding) {
    // Held (or being taken back): the program reports such a socket only
    // when it dropped a skb it could not trim.
    KernelPath::Counts c;
    if (worker_.kernel()->counts(cookie, c) && c.broken) kernel_lost();
    return;
  }
  const int d = cookie == cookie_[0] ? 0 : 1;
  auto& p = static_cast<KernelPump&>(*pump_[d]);
  if (!p.refresh(side_[d].fd, side_[1 - d].fd)) {
    kernel_lost();
    return;
  }
  count_bytes(d);
  KernelPath* k = worker_.kernel();
  if (k->held(cookie)) {
    take_back("a slow reader (the program held it at its credit)");
    return;
  }
  if (p.in_flight() > kMaxInFlight) {
    take_back("a slow reader");
    return;
  }
  k->grant(cookie, p.delivered() + kCredit);
  if (!reported) return;
  if (loop_.now() - report_window_ > std::chrono::seconds(1)) {
    report_window_ = loop_.now();
    reports_ = 0;
  }
  if (++reports_ > kBulkReportsPerSecond) take_back("a bulk stream");
}

void Session::kernel_lost() {
  const int err = errno;
  bump(counters_.kernel_lost_sessions);
  KernelPath::Counts c;
  bool broken = false;
  for (uint64_t k : cookie_) broken = broken || (worker_.kernel()->counts(k, c) && c.broken);
  if (broken)
    // The program dropped a skb it could not trim (forward.bpf.c,
    // trim_seen): a byte is missing, the session cannot go on.
    spdlog::warn("proxy {}: the kernel path could not trim a retransmitted segment: closing the session",
                 settings().name);
  else
    spdlog::warn("proxy {}: the kernel path lost count of a session's bytes ({}): closing it", settings().name,
                 std::strerror(err));
  close(CloseReason::error);
}

void Session::take_back(const char* why) {
  // The program stops redirecting on both sockets: new bytes stay with the
  // socket that received them (in its psock's queue, where recv() reads
  // them), and the window holds the sender back again. What the kernel
  // redirected already must reach its socket before userspace writes after
  // it (on_kick polls for that). The sockets stay in the maps until the
  // session closes: taking one out while bytes arrive can lose an skb
  // (proxy/bpf/forward.bpf.c, `held`).
  KernelPath* k = worker_.kernel();
  if (!k->hold(cookie_[0]) || !k->hold(cookie_[1])) {
    spdlog::warn("proxy {}: cannot take a session back from the kernel path ({}): closing it", settings().name,
                 std::strerror(errno));
    close(CloseReason::error);
    return;
  }
  make_room_for_redirected();
  if (state_ != State::established) return;
  kstate_ = KState::returning;
  bump(counters_.kernel_takebacks);
  spdlog::debug("proxy {}: session taken back from the kernel path: {}", settings().name, why);
  kick_every_ = std::chrono::milliseconds(1);
  loop_.arm_after(kick_, kick_every_);
}

void Session::make_room_for_redirected() {
  // What the kernel redirected towards a socket waits in that socket's psock
  // (its backlog) until the socket's send queue takes it, and a slow
  // reader's send queue is full. A held socket's own bytes then queue
  // behind them (net/core/skmsg.c, sk_psock_verdict_apply: a PASS goes
  // straight to the receive side only while that backlog is empty), where
  // TCP neither counts them as received memory nor closes the window: a
  // client that went on sending while it did not read got all of its 64
  // MiB into the kernel for one session (test_kernel_overlap_netns). So
  // each send queue is given room for what waits for it (raising SO_SNDBUF
  // wakes the backlog, sk_write_space): the backlog empties at once, held
  // bytes are charged to the receive buffer and the window closes as on any
  // socket. Bounded: the program redirects at most kCredit past what the
  // reader took.
  for (int d = 0; d < 2; ++d)
    if (!static_cast<KernelPump&>(*pump_[d]).refresh(side_[d].fd, side_[1 - d].fd)) {
      kernel_lost();
      return;
    }
  for (int s = 0; s < 2; ++s) {
    const uint64_t waiting = static_cast<KernelPump&>(*pump_[1 - s]).in_flight();
    const int fd = side_[s].fd;
    int size = 0, queued = 0;
    socklen_t len = sizeof size;
    if (waiting == 0 || getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &len) != 0 || ioctl(fd, SIOCOUTQ, &queued) != 0)
      continue;
    const uint64_t want = 2 * (static_cast<uint64_t>(queued) + waiting) + kSendRoomSlack;
    if (want <= static_cast<uint64_t>(size)) continue;
    if (!set_send_buffer(fd, want)) {
      spdlog::debug("proxy {}: cannot enlarge a send buffer for a take-back: {}", settings().name,
                    std::strerror(errno));
      continue;
    }
    saved_sndbuf_[s] = size;
  }
}

void Session::restore_send_buffers() {
  for (int s = 0; s < 2; ++s) {
    if (saved_sndbuf_[s] == 0) continue;
    int now = 0;
    socklen_t len = sizeof now;
    if (getsockopt(side_[s].fd, SOL_SOCKET, SO_SNDBUF, &now, &len) == 0)
      set_send_buffer(side_[s].fd, std::min<uint64_t>(now, std::max<uint64_t>(saved_sndbuf_[s], kSendBufferAfter)));
    saved_sndbuf_[s] = 0;
  }
}

void Session::on_kick() {
  if (state_ != State::established || !in_kernel()) return;
  bool drained = true;
  for (int d = 0; d < 2 && state_ == State::established; ++d) {
    auto& p = static_cast<KernelPump&>(*pump_[d]);
    if (p.done()) continue;
    if (kstate_ == KState::forwarding) {
      run(d);  // a FIN waiting for its bytes to reach the peer
      if (state_ == State::established && wait_[d] == Wait::write) drained = false;
    } else {
      if (!p.refresh(side_[d].fd, side_[1 - d].fd)) {
        kernel_lost();
        return;
      }
      count_bytes(d);
      if (p.in_flight() > 0) drained = false;
      spdlog::debug("proxy {}: taking back: direction {} has {} bytes in flight", settings().name, d, p.in_flight());
    }
  }
  if (state_ != State::established) return;
  if (drained && kstate_ == KState::returning) {
    finish_take_back();
    return;
  }
  if (!drained) {
    kick_every_ = std::min<std::chrono::milliseconds>(kick_every_ * 2, kKickMax);
    loop_.arm_after(kick_, kick_every_);
  }
}

void Session::finish_take_back() {
  // Its sockets stay in the maps (held) until it closes, and their bytes
  // still go through the program: its reports (only a skb it could not
  // trim, now) still concern this session.
  kstate_ = KState::none;
  held_ = true;
  loop_.cancel(kick_);
  restore_send_buffers();
  const PumpContext& ctx = worker_.pump_context();
  for (int d = 0; d < 2; ++d) {
    carried_[d] += pump_[d]->bytes();  // the new pump counts from zero
    const bool was_done = pump_[d]->done();
    // Copy, not splice: held bytes are in the psock's queue, which only
    // recv() reads (splice reads the socket's own receive queue).
    pump_[d] = std::make_unique<CopyPump>(ctx);
    if (was_done) pump_[d]->mark_done();
    if (pump_[1 - d] && pump_[1 - d]->done()) pump_[d]->fin_by_close();
  }
  for (int d = 0; d < 2; ++d)
    if (pump_[d]->done() && !pump_[1 - d]->done()) pump_[1 - d]->fin_by_close();
  for (auto& s : side_) {
    loop_.modify(s.fd, kSocketEvents, &s);
    s.ready.readable = true;  // bytes wait in the receive queues: read until EAGAIN
  }
  kernel_wanted_ = false;  // once back, for good
  set_path(SessionPath::copy);
  for (int d = 0; d < 2 && state_ == State::established; ++d)
    if (!pump_[d]->done()) run(d);
}

void Session::forget_kernel() {
  KernelPath* k = worker_.kernel();
  for (uint64_t c : cookie_) {
    KernelPath::Counts n;
    if (k->counts(c, n) && n.trimmed > 0) {
      bump(counters_.kernel_retransmitted_bytes_trimmed, n.trimmed);
      spdlog::debug("proxy {}: the kernel path cut off {} bytes TCP handed over twice", settings().name, n.trimmed);
    }
    k->forget(c);
    worker_.kernel_session(c, nullptr);
  }
  kstate_ = KState::none;
  held_ = false;
  loop_.cancel(kick_);
}

}  // namespace proxy
