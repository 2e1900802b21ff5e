#include "proxy/kernel_path.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <linux/tcp.h>  // struct tcp_info with tcpi_bytes_* (glibc's copy is older)
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#ifdef VIPPROXY_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "forward.skel.h"
#endif

namespace proxy {

namespace {
// tcpi_state values (include/net/tcp_states.h; <linux/tcp.h> has none).
enum : uint8_t {
  kFinWait1 = 4, kFinWait2 = 5, kTimeWait = 6, kClose = 7, kCloseWait = 8, kLastAck = 9, kClosing = 11
};
}  // namespace

bool socket_bytes(int fd, SocketBytes& out) {
  // TCP_INFO and the two queue sizes come from three system calls, and
  // bytes or ACKs arriving between them would skew the sums: a segment
  // counted in SIOCINQ but not yet in tcpi_bytes_received (or an ACK
  // counted in SIOCOUTQ but not in tcpi_bytes_acked) is off by its size for
  // as long as the baseline taken from it is used. So TCP_INFO is read again
  // after the queues, and the reading is `stable` when neither count nor the
  // state moved in between. (An unstable baseline made a hand-over count 5
  // bytes as never redirected, and the FIN after them was never passed on.)
  tcp_info ti{}, again{};
  int inq = 0, outq = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    socklen_t len = sizeof ti;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) return false;
    if (::ioctl(fd, SIOCINQ, &inq) < 0) inq = 0;  // EINVAL once closed: nothing unread
    if (::ioctl(fd, SIOCOUTQ, &outq) < 0) outq = 0;
    len = sizeof again;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &again, &len) < 0) return false;
    out.stable = again.tcpi_bytes_received == ti.tcpi_bytes_received &&
                 again.tcpi_bytes_acked == ti.tcpi_bytes_acked && again.tcpi_state == ti.tcpi_state;
    if (out.stable) break;
  }
  // Unstable after every attempt (a busy socket): the last attempt's first
  // TCP_INFO errs on the safe side for refresh(), which uses `received` and
  // `written` only: bytes counted late make `received` smaller, an ACK
  // counted late makes `written` smaller, so what is in flight is
  // overestimated, never under.
  const uint8_t st = ti.tcpi_state;
  // The peer's FIN is in (CLOSE_WAIT, LAST_ACK, CLOSING, TIME_WAIT, CLOSE);
  // ours is queued or sent (FIN_WAIT1, FIN_WAIT2, CLOSING, TIME_WAIT,
  // LAST_ACK, CLOSE).
  const bool fin_in = st == kCloseWait || st == kLastAck || st == kClosing || st == kTimeWait || st == kClose;
  const bool fin_out =
      st == kFinWait1 || st == kFinWait2 || st == kClosing || st == kTimeWait || st == kLastAck || st == kClose;
  out.received = ti.tcpi_bytes_received - (fin_in && ti.tcpi_bytes_received > 0 ? 1 : 0);
  out.unread = static_cast<uint64_t>(inq);
  const uint64_t written = ti.tcpi_bytes_acked + static_cast<uint64_t>(outq);
  out.fin_out = fin_out && written > 0;
  out.written = written - (out.fin_out ? 1 : 0);
  out.state = st;
  return true;
}

KernelPump::KernelPump(int from, int to, uint64_t moved) : moved_(moved) {
  SocketBytes f, t;
  // A baseline must be exact (see socket_bytes): an unstable one is not
  // taken, and the session stays in userspace for now (counted()).
  counted_ = socket_bytes(from, f) && socket_bytes(to, t) && f.stable && t.stable;
  base_taken_ = f.received - f.unread;
  base_written_ = t.written;
  bytes_ = moved;
}

bool KernelPump::refresh(int from, int to) {
  SocketBytes f, t;
  KernelPath::Counts c;
  if (!counted_ || !socket_bytes(from, f) || !socket_bytes(to, t)) return false;
  if (!kernel_ || !kernel_->counts(cookie_, c) || c.broken) return false;
  const uint64_t redirected = c.redirected;
  // A socket its peer reset is in CLOSE, as after both FINs, and
  // socket_bytes took a FIN of ours out of what it wrote. While the kernel
  // forwards, only this pump shuts `to` down: if it did not, there was no
  // FIN (a reset session's bytes were counted one short).
  const uint64_t written = t.written + (t.fin_out && !sent_fin_ ? 1 : 0);
  const uint64_t delivered = written - base_written_;
  delivered_ = delivered;
  in_flight_ = redirected > delivered ? redirected - delivered : 0;
  // Received since the hand-over and not (yet) run through the program.
  const uint64_t received = f.received - base_taken_;
  unread_ = received > redirected ? received - redirected : 0;
  bytes_ = moved_ + delivered;
  return true;
}

PumpStatus KernelPump::run(int from, Readiness& in, int to) {
  if (done_) return PumpStatus::done;
  if (!refresh(from, to)) return PumpStatus::error;
  if (!in.rdhup) return PumpStatus::want_read;
  eof_ = true;
  // Everything before the FIN was run through the program when it arrived;
  // once `to` holds it all, the FIN may follow.
  if (in_flight_ > 0 || unread_ > 0) return PumpStatus::want_write;
  if (!fin_by_close_) {
    ::shutdown(to, SHUT_WR);
    sent_fin_ = true;
  }
  done_ = true;
  return PumpStatus::done;
}

#ifndef VIPPROXY_HAVE_BPF

std::unique_ptr<KernelPath> KernelPath::load(const Limits&, std::string& why) {
  why = "this build has no eBPF support (libbpf-dev, clang and bpftool were missing at build time)";
  return nullptr;
}
KernelPath::~KernelPath() = default;
bool KernelPath::attach(int, int, uint64_t&, uint64_t&, uint64_t, bool*) {
  errno = ENOTSUP;
  return false;
}
bool KernelPath::grant(uint64_t, uint64_t) { return false; }
bool KernelPath::held(uint64_t) const { return false; }
bool KernelPath::hold(uint64_t) { return false; }
void KernelPath::forget(uint64_t) {}
int KernelPath::events_fd() const { return -1; }
uint64_t KernelPath::reports_lost() const { return 0; }
bool KernelPath::counts(uint64_t, Counts&) const { return false; }
void KernelPath::consume(const std::function<void(uint64_t)>&) {}
int KernelPath::on_event(void*, void*, size_t) { return 0; }

#else

namespace {

// struct link in proxy/bpf/forward.bpf.c.
struct Link {
  uint64_t peer = 0;
  uint64_t redirected = 0;
  uint64_t report_at = 0;
  uint64_t trimmed = 0;
  uint32_t next_seq = 0, seq_known = 0, broken = 0, pad = 0;
};

uint64_t cookie_of(int fd) {
  uint64_t c = 0;
  socklen_t len = sizeof c;
  if (::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) < 0) return 0;
  return c;
}

std::string err(const char* what, int e) { return std::string(what) + ": " + std::strerror(e); }

// A connected loopback TCP pair, for the self-test.
bool tcp_pair(int& a, int& b) {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  bool ok = ::bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 && ::listen(l, 1) == 0 &&
            ::getsockname(l, reinterpret_cast<sockaddr*>(&sa), &len) == 0;
  a = ok ? ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
  ok = ok && a >= 0 && ::connect(a, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  b = ok ? ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK) : -1;
  ::close(l);
  if (b < 0 && a >= 0) ::close(a);
  return b >= 0;
}

bool expect(int fd, const char* want, size_t n) {
  char buf[16];
  size_t got = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000);
  while (got < n && std::chrono::steady_clock::now() < deadline) {
    pollfd pf{fd, POLLIN, 0};
    ::poll(&pf, 1, 50);
    ssize_t r = ::recv(fd, buf + got, n - got, MSG_DONTWAIT);
    if (r > 0) got += static_cast<size_t>(r);
    else if (r == 0) return false;
  }
  return got == n && std::memcmp(buf, want, n) == 0;
}

}  // namespace

std::unique_ptr<KernelPath> KernelPath::load(const Limits& limits, std::string& why) {
  libbpf_set_print([](enum libbpf_print_level, const char*, va_list) { return 0; });
  std::unique_ptr<KernelPath> k(new KernelPath);
  k->skel_ = forward::open();
  if (!k->skel_) {
    why = err("opening the embedded eBPF object", errno);
    return nullptr;
  }
  auto entries = static_cast<uint32_t>(2 * limits.max_sessions);
  bpf_map__set_max_entries(k->skel_->maps.targets, entries);
  bpf_map__set_max_entries(k->skel_->maps.active, entries);
  bpf_map__set_max_entries(k->skel_->maps.links, entries);
  bpf_map__set_max_entries(k->skel_->maps.held, entries);
  bpf_map__set_max_entries(k->skel_->maps.credit, entries);
  k->skel_->rodata->report_every = limits.report_every;
  k->skel_->rodata->fail_cuts = limits.fail_cuts ? 1 : 0;
  if (int e = forward::load(k->skel_)) {
    why = err("loading the sk_skb program (needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, kernel 5.8 or later)", -e);
    return nullptr;
  }
  const int prog = bpf_program__fd(k->skel_->progs.forward);
  const int active = bpf_map__fd(k->skel_->maps.active);
  // Verdict-only attach (5.13): the program sees each skb once, no parser.
  // Older kernels take the same program as a stream verdict.
  if (bpf_prog_attach(prog, active, BPF_SK_SKB_VERDICT, 0) == 0) {
    k->attach_type_ = "sk_skb verdict";
  } else if (bpf_prog_attach(prog, active, BPF_SK_SKB_STREAM_VERDICT, 0) == 0) {
    k->attach_type_ = "sk_skb stream verdict";
  } else {
    why = err("attaching the program to the SOCKHASH", errno);
    return nullptr;
  }
  k->rb_ = ring_buffer__new(bpf_map__fd(k->skel_->maps.events), &KernelPath::on_event, k.get(), nullptr);
  if (!k->rb_) {
    why = err("opening the ring buffer", errno);
    return nullptr;
  }
  k->rb_fd_ = bpf_map__fd(k->skel_->maps.events);

  // Self-test on loopback: the proxy's two sockets are s1 and c2; bytes sent
  // by the client c1 must come out at the server s2 and back. Some bytes
  // are sent before the hand-over, as a client's may be.
  int c1, s1, c2, s2;
  if (!tcp_pair(c1, s1)) {
    why = err("self-test: loopback socket pair", errno);
    return nullptr;
  }
  if (!tcp_pair(c2, s2)) {
    ::close(c1);
    ::close(s1);
    why = err("self-test: loopback socket pair", errno);
    return nullptr;
  }
  std::string failure;
  uint64_t k1 = 0, k2 = 0;
  (void)!::send(c1, "early", 5, MSG_NOSIGNAL);
  ::usleep(1000);
  if (!k->attach(s1, c2, k1, k2)) {
    failure = err("self-test: inserting sockets into the SOCKHASH", errno);
  } else {
    if (!expect(s2, "early", 5))
      failure = "self-test: bytes that came before the hand-over were not forwarded";
    (void)!::send(c1, "ping", 4, MSG_NOSIGNAL);
    if (failure.empty() && !expect(s2, "ping", 4)) failure = "self-test: bytes did not come through the kernel path";
    (void)!::send(s2, "pong", 4, MSG_NOSIGNAL);
    if (failure.empty() && !expect(c1, "pong", 4))
      failure = "self-test: bytes did not come back through the kernel path";
    k->forget(k1);
    k->forget(k2);
  }
  for (int fd : {c1, s1, c2, s2}) ::close(fd);
  if (!failure.empty()) {
    why = failure;
    return nullptr;
  }
  k->refuse_second_ = limits.refuse_second;  // after the self-test, which it would fail
  return k;
}

KernelPath::~KernelPath() {
  if (rb_) ring_buffer__free(rb_);
  if (skel_) forward::destroy(skel_);
}

bool KernelPath::attach(int a, int b, uint64_t& cookie_a, uint64_t& cookie_b, uint64_t credit, bool* partial) {
  if (partial) *partial = false;
  cookie_a = cookie_of(a);
  cookie_b = cookie_of(b);
  if (!cookie_a || !cookie_b) return false;
  // The credit is in place before the program can run for either socket.
  if (credit && (!grant(cookie_a, credit) || !grant(cookie_b, credit))) {
    const int e = errno;
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.credit), &cookie_a);
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.credit), &cookie_b);
    errno = e;
    return false;
  }
  const int links = bpf_map__fd(skel_->maps.links);
  const int targets = bpf_map__fd(skel_->maps.targets);
  const int active = bpf_map__fd(skel_->maps.active);
  Link la, lb;
  la.peer = cookie_b;
  lb.peer = cookie_a;
  // The peers first, then the redirect targets, then the program: it never
  // runs for a socket whose peer is not in the maps yet.
  uint64_t va = static_cast<uint64_t>(a), vb = static_cast<uint64_t>(b);
  int step = 0;
  int e = 0;
  if (bpf_map_update_elem(links, &cookie_a, &la, BPF_NOEXIST) == 0) ++step;
  else goto undo;
  if (bpf_map_update_elem(links, &cookie_b, &lb, BPF_NOEXIST) == 0) ++step;
  else goto undo;
  if (bpf_map_update_elem(targets, &cookie_a, &va, BPF_NOEXIST) == 0) ++step;
  else goto undo;
  if (bpf_map_update_elem(targets, &cookie_b, &vb, BPF_NOEXIST) == 0) ++step;
  else goto undo;
  if (bpf_map_update_elem(active, &cookie_a, &va, BPF_NOEXIST) == 0) ++step;
  else goto undo;
  if (refuse_second_) {
    ::usleep(50 * 1000);
    errno = EOPNOTSUPP;
  } else if (bpf_map_update_elem(active, &cookie_b, &vb, BPF_NOEXIST) == 0) {
    ++step;
  }
  if (step < 6) {
    // `a` is in the program's map: its bytes may have gone to `b` already,
    // and taking it out again could drop one. Held from now on, it keeps
    // what it receives for userspace, which takes the session back.
    if (partial && hold(cookie_a)) {
      *partial = true;
      return true;
    }
    goto undo;
  }
  {
    // Bytes that arrived before the program was attached sit in the receive
    // queue and are not run through it until more arrive; a read makes the
    // kernel process them, in order (the read itself returns nothing).
    // (A zero-length read returns before looking; MSG_PEEK takes nothing.)
    char none;
    (void)!::recv(a, &none, 1, MSG_DONTWAIT | MSG_PEEK);
    (void)!::recv(b, &none, 1, MSG_DONTWAIT | MSG_PEEK);
  }
  return true;
undo:
  e = errno;
  if (step > 5) bpf_map_delete_elem(active, &cookie_b);
  if (step > 4) bpf_map_delete_elem(active, &cookie_a);
  if (step > 3) bpf_map_delete_elem(targets, &cookie_b);
  if (step > 2) bpf_map_delete_elem(targets, &cookie_a);
  if (step > 1) bpf_map_delete_elem(links, &cookie_b);
  if (step > 0) bpf_map_delete_elem(links, &cookie_a);
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.credit), &cookie_a);
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.credit), &cookie_b);
  errno = e;
  return false;
}

bool KernelPath::grant(uint64_t cookie, uint64_t limit) {
  return bpf_map_update_elem(bpf_map__fd(skel_->maps.credit), &cookie, &limit, BPF_ANY) == 0;
}

bool KernelPath::held(uint64_t cookie) const {
  uint8_t v = 0;
  return bpf_map_lookup_elem(bpf_map__fd(skel_->maps.held), &cookie, &v) == 0;
}

bool KernelPath::hold(uint64_t cookie) {
  const uint8_t one = 1;
  return bpf_map_update_elem(bpf_map__fd(skel_->maps.held), &cookie, &one, BPF_ANY) == 0;
}

void KernelPath::forget(uint64_t cookie) {
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.active), &cookie);
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.targets), &cookie);
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.links), &cookie);
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.held), &cookie);
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.credit), &cookie);
}

int KernelPath::events_fd() const { return rb_fd_; }

uint64_t KernelPath::reports_lost() const {
  // The program's .bss, mapped into this process by the skeleton.
  return __atomic_load_n(&skel_->bss->reports_lost, __ATOMIC_RELAXED);
}

bool KernelPath::counts(uint64_t cookie, Counts& out) const {
  Link l;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.links), &cookie, &l) != 0) return false;
  out.redirected = l.redirected;
  out.trimmed = l.trimmed;
  out.broken = l.broken != 0;
  return true;
}

int KernelPath::on_event(void* ctx, void* data, size_t size) {
  auto* self = static_cast<KernelPath*>(ctx);
  if (size >= sizeof(uint64_t) && self->sink_) {
    uint64_t cookie;
    std::memcpy(&cookie, data, sizeof cookie);
    (*self->sink_)(cookie);
  }
  return 0;
}

void KernelPath::consume(const std::function<void(uint64_t)>& fn) {
  sink_ = &fn;
  ring_buffer__consume(rb_);
  sink_ = nullptr;
}

#endif

}  // namespace proxy
