// One session in userspace: waiting for a backend, connecting (retries
// within the queue deadline), the two pumps, the idle and -fin timeouts, and
// the close. The kernel path's handover and take-back: session_kernel.cpp.
#include "proxy/session.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "proxy/kernel_path.h"
#include "proxy/socket_options.h"
#include "proxy/worker.h"

namespace proxy {

using Clock = Loop::Clock;

namespace {
// After a refused/timed-out connect, retry this soon (bounded by the
// session's queue deadline) rather than failing the client at once.
constexpr auto kRetryAfterConnectFailure = std::chrono::milliseconds(200);
constexpr auto kDeadPeerOptionsAfter = std::chrono::seconds(1);

void close_fd(int& fd, bool abortive) {
  if (fd < 0) return;
  if (abortive) {
    // SO_LINGER 0: close() sends RST, so an error on one side reaches the
    // other as a reset, not as a clean end of stream.
    linger l{1, 0};
    (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  ::close(fd);
  fd = -1;
}
}  // namespace

const char* to_string(CloseReason r) {
  switch (r) {
    case CloseReason::done: return "done";
    case CloseReason::error: return "error";
    case CloseReason::backend_down: return "backend_down";
    case CloseReason::queue_timeout: return "queue_timeout";
    case CloseReason::idle_timeout: return "idle_timeout";
    case CloseReason::fin_timeout: return "fin_timeout";
    case CloseReason::stopping: return "stopping";
  }
  return "?";
}

namespace {
// "192.0.2.1:5432", "[2001:db8::1]:5432".
std::string format_sockaddr(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
  }
  return "[" + std::string(host) + "]:" + std::to_string(port);
}
}  // namespace

std::string to_string(const PeerAddress& a) { return format_sockaddr(&a.sa); }

const char* to_string(SessionPath p) {
  switch (p) {
    case SessionPath::copy: return "copy";
    case SessionPath::splice: return "splice";
    case SessionPath::kernel: return "kernel";
  }
  return "?";
}

Session::Session(Worker& worker, std::shared_ptr<ProxySlot> slot, int client_fd, const PeerAddress& client)
    : worker_(worker),
      loop_(worker.loop()),
      slot_(std::move(slot)),
      counters_(*slot_->rt->stats->per_worker[worker.index()]),
      client_(client) {
  for (int i = 0; i < 2; ++i) {
    side_[i].session = this;
    side_[i].index = i;
  }
  side_[0].fd = client_fd;
  timer_.set([this] { on_timer(); });
  kick_.set([this] { on_kick(); });
  stall_.set([this] { on_stall(); });
}

Session::~Session() {
  loop_.cancel(timer_);
  loop_.cancel(kick_);
  loop_.cancel(stall_);
  for (auto& p : pump_)
    if (p) p->release();
  close_fd(side_[0].fd, false);
  close_fd(side_[1].fd, false);
}

const cfg::Proxy& Session::settings() const { return slot_->rt->cfg; }

void Session::start() {
  // TCP_NODELAY, keepalive and TCP_USER_TIMEOUT came with the socket: they
  // are set on the listener and Linux copies them to accepted sockets
  // (tests/unit/proxy_socket_options_test.cpp checks each one).
  if (!loop_.add(side_[0].fd, kSocketEvents, &side_[0])) {
    close(CloseReason::error);
    return;
  }
  accepted_at_ = loop_.now();
  queue_deadline_ = accepted_at_ + settings().queue_timeout;
  idle_timeout_ = settings().idle_timeout;
  fin_timeout_[0] = settings().client_fin_timeout;
  fin_timeout_[1] = settings().server_fin_timeout;
  user_timeout_ = settings().tcp_user_timeout;
  const PumpContext& ctx = worker_.pump_context();
  switch (settings().data_path) {
    case cfg::DataPath::copy:
      path_ = SessionPath::copy;
      pump_[0] = std::make_unique<CopyPump>(ctx);
      pump_[1] = std::make_unique<CopyPump>(ctx);
      break;
    case cfg::DataPath::automatic:
      // Not the kernel path: a session taken back from it hung once with
      // bytes never delivered (README, "Kernel data path"); opt in with kernel.
    case cfg::DataPath::splice:
      path_ = SessionPath::splice;
      pump_[0] = std::make_unique<SplicePump>(ctx);
      pump_[1] = std::make_unique<SplicePump>(ctx);
      break;
    case cfg::DataPath::kernel:
      // Starts on splice; goes to the kernel once it has shown it will live.
      path_ = SessionPath::splice;
      kernel_wanted_ = worker_.kernel() != nullptr;
      pump_[0] = std::make_unique<SplicePump>(ctx);
      pump_[1] = std::make_unique<SplicePump>(ctx);
      break;
  }
  try_connect();
}

void Session::try_connect() {
  auto chosen = worker_.choose_backend(*slot_);
  if (!chosen) {
    enter_waiting(false);
    return;
  }
  if (in_list_) {
    worker_.remove_waiting(this);
    in_list_ = false;
  }
  backend_ = slot_->rt->backends[*chosen];
  state_ = State::connecting;
  worker_.add_connecting(this);
  in_list_ = true;
  BackendRuntime& b = *backend_;

  // Created non-blocking and close-on-exec: no fcntl/ioctl afterwards.
  int fd = ::socket(b.endpoint.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    on_connected(errno);  // typically EMFILE: treat like a failed connect, the client may wait
    return;
  }
  side_[1].fd = fd;
  side_[1].ready = {};
  apply_nodelay(fd);  // keepalive and TCP_USER_TIMEOUT once the session has lived (start_pumps)
  int rc = ::connect(fd, b.endpoint.data(), static_cast<socklen_t>(b.endpoint.size()));
  if (rc < 0 && errno != EINPROGRESS && errno != EINTR) {
    on_connected(errno);
    return;
  }
  // Registered after connect(): an unconnected socket polls as EPOLLHUP,
  // one in SYN_SENT as nothing, so the first event is the answer.
  if (!loop_.add(fd, kSocketEvents, &side_[1])) {
    on_connected(errno);
    return;
  }
  loop_.arm_after(timer_, settings().connect_timeout);
  if (rc == 0) on_connected(0);
  // Otherwise the loop reports EPOLLOUT (connected) or EPOLLERR (failed).
}

void Session::on_io(int side, uint32_t ev) {
  if (state_ == State::closed) return;
  Readiness& r = side_[side].ready;
  if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) r.readable = true;
  if (ev & EPOLLRDHUP) r.rdhup = true;

  if (state_ == State::connecting && side == 1) {
    if (ev & (EPOLLERR | EPOLLHUP)) {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(side_[1].fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0) err = ECONNREFUSED;
      on_connected(err);
    } else if (ev & EPOLLOUT) {
      on_connected(0);
    }
    return;
  }
  if (state_ == State::established && in_kernel()) {
    // Registered for EPOLLRDHUP only: the bytes do not wake us.
    if (ev & EPOLLERR) {
      close(CloseReason::error);
      return;
    }
    if (kstate_ == KState::forwarding) {
      const int reader = side == 0 ? 0 : 1;
      run(reader);
    }
    return;
  }
  if (state_ != State::established) {
    // A client that went away while waiting for a backend: nothing to keep.
    // A client's bytes or FIN are kept for when the backend is there.
    if (side == 0 && (ev & EPOLLERR)) close(CloseReason::error);
    return;
  }
  // The direction reading this socket, then the one writing to it.
  const int reader = side == 0 ? 0 : 1, writer = 1 - reader;
  if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) && wait_[reader] == Wait::read) run(reader);
  if (state_ == State::established && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && wait_[writer] == Wait::write)
    run(writer);
  // A reset (or a dead peer's timeout) that neither pump saw: the direction
  // reading this socket waits for the other side to take what it holds (or
  // is done), and the one writing to it waits for bytes. Neither would run
  // before the other side moves, which a backend that does not read, or a
  // client that does not, may never do: the reset goes on now.
  if (state_ == State::established && (ev & EPOLLERR)) close(CloseReason::error);
}

void Session::on_timer() {
  switch (state_) {
    case State::connecting:
      on_connected(ETIMEDOUT);
      break;
    case State::waiting:
      try_connect();  // re-enters waiting (or closes at the deadline) if still none
      break;
    case State::established: {
      if (options_pending_ && loop_.now() >= options_due_) {
        options_pending_ = false;
        apply_dead_peer_options(side_[1].fd, settings());
        // Its TCP_USER_TIMEOUT counts from the window's closing, which may
        // be older than the option: look at once.
        if (stall_.armed()) on_stall();
      }
      if (!watch_io_) break;
      if (kstate_ == KState::forwarding) {
        // The kernel moves the bytes: see whether it moved any.
        for (int d = 0; d < 2; ++d) {
          auto& p = static_cast<KernelPump&>(*pump_[d]);
          uint64_t before = p.bytes();
          if (!p.refresh(side_[d].fd, side_[1 - d].fd)) {
            kernel_lost();
            return;
          }
          count_bytes(d);
          if (p.bytes() != before) {
            touch(0);
            touch(1);
          }
        }
      }
      auto [when, why] = inactivity_deadline();
      if (when != Clock::time_point::max() && loop_.now() >= when) {
        bump(why == CloseReason::idle_timeout ? counters_.idle_timeouts : counters_.fin_timeouts);
        close(why);
      } else {
        arm_idle_timer();
      }
      break;
    }
    case State::closed:
      break;
  }
}

void Session::on_connected(int err) {
  if (state_ == State::closed) return;
  loop_.cancel(timer_);
  if (in_list_) {
    worker_.remove_connecting(this);
    in_list_ = false;
  }
  if (err) {
    BackendRuntime& b = *backend_;
    b.connect_errors.fetch_add(1, std::memory_order_relaxed);
    bump(counters_.connect_errors);
    spdlog::debug("proxy {}: connect to backend {} ({}) failed: {}", settings().name, b.cfg.name,
                  b.endpoint.address().to_string(),
                  err == ETIMEDOUT ? "timeout" : std::system_category().message(err));
    if (worker_.hooks().connect_failed) worker_.hooks().connect_failed(backend_, err);
    close_fd(side_[1].fd, false);
    backend_.reset();
    enter_waiting(true);
    return;
  }
  BackendRuntime& b = *backend_;
  // The backend may have been marked down (or removed by a reload) while we
  // were connecting: a new session never starts on a backend that is not
  // eligible, whatever shutdown_sessions_on_down says of established ones.
  if (!b.eligible.load(std::memory_order_acquire)) {
    backend_.reset();
    close_fd(side_[1].fd, false);
    enter_waiting(true);
    return;
  }
  state_ = State::established;
  set_path(path_);
  b.sessions.fetch_add(1, std::memory_order_relaxed);
  b.sessions_total.fetch_add(1, std::memory_order_relaxed);
  worker_.add_active(this);
  start_pumps();
}

void Session::enter_waiting(bool retry_soon) {
  state_ = State::waiting;
  auto now = loop_.now();
  if (now >= queue_deadline_) {
    bump(counters_.queue_timeouts);
    spdlog::debug("proxy {}: no eligible backend within queue_timeout, closing client", settings().name);
    close(CloseReason::queue_timeout);
    return;
  }
  if (!in_list_) {
    worker_.add_waiting(this);
    in_list_ = true;
  }
  if (!queued_) {  // a connection, however often it waits (connect retries)
    queued_ = true;
    bump(counters_.queued_total);
  }
  auto when = queue_deadline_;
  if (retry_soon && now + kRetryAfterConnectFailure < when) when = now + kRetryAfterConnectFailure;
  loop_.arm(timer_, when);
}

void Session::backend_available() {
  if (state_ != State::waiting) return;
  loop_.cancel(timer_);
  try_connect();
}

void Session::backend_gone() {
  if (state_ != State::connecting) return;
  loop_.cancel(timer_);
  if (in_list_) {
    worker_.remove_connecting(this);
    in_list_ = false;
  }
  close_fd(side_[1].fd, false);  // the loop forgets a closed socket
  side_[1].ready = {};
  backend_.reset();
  try_connect();
}

void Session::start_pumps() {
  if (idle_timeout_.count() > 0) {
    apply_dead_peer_options(side_[1].fd, settings());
    watch_io_ = true;
    last_io_[0] = last_io_[1] = loop_.now();
    arm_idle_timer();
  } else {
    // Keepalive and TCP_USER_TIMEOUT on the backend socket only for a
    // session that lives a second (the client's came from the listener):
    // five system calls a short connection does without.
    options_pending_ = true;
    options_due_ = loop_.now() + kDeadPeerOptionsAfter;
    loop_.arm(timer_, options_due_);
  }
  // The client's first bytes (or its FIN) may have come while we were
  // connecting: the loop has recorded it in side_[0].ready.
  run(0);
  if (state_ == State::established) run(1);
}

// HAProxy's `timeout client-fin` / `server-fin`: once either side has sent
// its FIN, each side gets its own inactivity bound, so a peer that
// half-closed and went quiet (or a backend that never answers a FIN) cannot
// hold a session, and its maxconn slot, forever while idle_timeout is 0.
void Session::half_closed() {
  if (half_closed_) return;
  half_closed_ = true;
  if (fin_timeout_[0].count() == 0 && fin_timeout_[1].count() == 0) return;
  // Options still pending stay so: the timer fires at the earlier of their
  // time and the deadline (arm_idle_timer). A churned connection half-closes
  // within microseconds and closes right after: five system calls saved.
  if (!watch_io_) {
    watch_io_ = true;
    last_io_[0] = last_io_[1] = loop_.now();
  }
  arm_idle_timer();
}

std::pair<Clock::time_point, CloseReason> Session::inactivity_deadline() const {
  auto when = Clock::time_point::max();
  CloseReason why = CloseReason::idle_timeout;
  if (idle_timeout_.count() > 0) when = std::max(last_io_[0], last_io_[1]) + idle_timeout_;
  if (half_closed_)
    for (int side : {0, 1})
      if (fin_timeout_[side].count() > 0 && last_io_[side] + fin_timeout_[side] < when) {
        when = last_io_[side] + fin_timeout_[side];
        why = CloseReason::fin_timeout;
      }
  return {when, why};
}

// One timer for idle_timeout, the -fin timeouts and the backend socket's
// pending dead-peer options: it fires at the earliest and looks again if I/O
// moved a deadline meanwhile.
void Session::arm_idle_timer() {
  auto when = inactivity_deadline().first;
  if (options_pending_) when = std::min(when, options_due_);
  if (when != Clock::time_point::max()) loop_.arm(timer_, when);
}

std::atomic<uint64_t>& Session::path_gauge(SessionPath p) const {
  return p == SessionPath::copy     ? counters_.sessions_copy
         : p == SessionPath::splice ? counters_.sessions_splice
                                    : counters_.sessions_kernel;
}

void Session::set_path(SessionPath p) {
  if (path_counted_) bump(path_gauge(path_), ~uint64_t{0});  // minus one (single writer, wraps)
  path_ = p;
  bump(path_gauge(path_));
  path_counted_ = true;
}

// tcp_user_timeout is for a dead peer: sent data that stays
// unacknowledged. But Linux (5.11+) also aborts a socket whose peer's window
// stays closed for TCP_USER_TIMEOUT, even while the peer answers every window
// probe: a reader that pauses (a client busy elsewhere, a backend waiting on
// a lock while the client streams) was cut after 30 s. So once bytes were
// written (and all along on the kernel path, where no write of ours tells),
// this looks every half timeout while a socket has bytes it has not sent:
// with none in flight, the window is closed and the option comes off that
// socket; it goes back on once the socket sends again, or once the peer
// leaves two probes in a row unanswered.
void Session::on_stall() {
  if (state_ != State::established) return;
  bool again = kstate_ == KState::forwarding;
  for (int s = 0; s < 2; ++s) {
    tcp_info ti{};
    socklen_t len = sizeof ti;
    int unsent = 0;
    if (::getsockopt(side_[s].fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        ::ioctl(side_[s].fd, SIOCOUTQNSD, &unsent) != 0)
      continue;
    again = again || unsent > 0;
    // A peer that answers no probe any more (two in a row) may be dead: the
    // option goes back on, and the kernel's next probe ends it.
    const bool closed_window = unsent > 0 && ti.tcpi_unacked == 0 && ti.tcpi_probes < 2;
    if (closed_window == uto_off_[s] || (s == 1 && options_pending_)) continue;
    const int ms = closed_window ? 0 : static_cast<int>(user_timeout_.count());
    if (::setsockopt(side_[s].fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms) == 0) uto_off_[s] = closed_window;
  }
  if (again || uto_off_[0] || uto_off_[1]) loop_.arm_after(stall_, stall_every());
}

void Session::count_bytes(int dir) {
  uint64_t now = carried_[dir] + pump_[dir]->bytes();
  if (now == counted_[dir]) return;
  touch(dir == 0 ? 1 : 0);  // written to the other side
  bump(dir == 0 ? counters_.bytes_in : counters_.bytes_out, now - counted_[dir]);
  counted_[dir] = now;
  // Bytes a reader may leave where they are (on_stall).
  if (user_timeout_.count() > 0 && !stall_.armed()) loop_.arm_after(stall_, stall_every());
}

void Session::run(int dir) {
  const int from = dir == 0 ? 0 : 1, to = 1 - from;
  const uint64_t reads = pump_[dir]->reads();
  const bool eof = pump_[dir]->eof();
  PumpStatus st = pump_[dir]->run(side_[from].fd, side_[from].ready, side_[to].fd);
  if (pump_[dir]->reads() != reads) touch(from);
  count_bytes(dir);
  if (!eof && pump_[dir]->eof()) half_closed();
  switch (st) {
    case PumpStatus::want_read:
      wait_[dir] = Wait::read;
      if (kernel_wanted_ && !in_kernel()) maybe_hand_over();
      return;
    case PumpStatus::want_write:
      wait_[dir] = Wait::write;
      // In the kernel: bytes before a FIN are still on their way.
      if (in_kernel() && !kick_.armed()) {
        kick_every_ = std::chrono::milliseconds(1);
        loop_.arm_after(kick_, kick_every_);
      }
      return;
    case PumpStatus::done:
      wait_[dir] = Wait::none;
      if (pump_[1 - dir]->done()) close(CloseReason::done);
      else pump_[1 - dir]->fin_by_close();
      return;
    case PumpStatus::error:
      close(CloseReason::error);
      return;
  }
}

void Session::close(CloseReason why) {
  if (state_ == State::closed) return;
  const State was = state_;
  state_ = State::closed;
  if (in_list_) {
    if (was == State::waiting) worker_.remove_waiting(this);
    else worker_.remove_connecting(this);
    in_list_ = false;
  }
  if (was == State::established) {
    worker_.remove_active(this);
    backend_->sessions.fetch_sub(1, std::memory_order_relaxed);
  }
  if (why == CloseReason::backend_down) bump(counters_.sessions_cut_on_down);
  if (in_kernel()) {
    // Out of the maps first (the kernel stops forwarding), then shut down.
    for (int d = 0; d < 2; ++d) {
      static_cast<KernelPump*>(pump_[d].get())->refresh(side_[d].fd, side_[1 - d].fd);
      count_bytes(d);
    }
    forget_kernel();
  } else if (held_) {
    forget_kernel();
  }
  if (path_counted_) {
    bump(path_gauge(path_), ~uint64_t{0});  // minus one (single writer, wraps)
    path_counted_ = false;
  }
  // The proxy's setting now: a reload turning it on logs the sessions that
  // end from then on.
  if (settings().log_sessions) log_end(why, was == State::established);
  loop_.cancel(kick_);
  loop_.cancel(stall_);
  if ((pump_[0] && pump_[0]->fell_back()) || (pump_[1] && pump_[1]->fell_back()))
    bump(counters_.buffered_fallbacks);
  loop_.cancel(timer_);
  // A side whose pump still holds bytes for it (a timeout, a demotion or a
  // drain's end cut the stream) gets a reset: a FIN after the bytes dropped
  // here would pass the cut stream off as whole.
  bool cut[2] = {false, false};
  for (int s = 0; s < 2; ++s) cut[s] = pump_[1 - s] && !pump_[1 - s]->idle();
  for (auto& p : pump_)
    if (p) p->release();
  const bool abortive = why == CloseReason::error;
  close_fd(side_[0].fd, abortive || cut[0]);
  // Cut because its node stopped being primary: not one more byte to that
  // node. A clean close() would still send what the socket's send queue
  // holds (a backend that was slow to read gets it all, then the FIN); the
  // reset drops it.
  close_fd(side_[1].fd, abortive || cut[1] || why == CloseReason::backend_down);
  worker_.session_closed(this);
}

// One line per session, as HAProxy's `option tcplog` gives one: who, to
// which backend, how it ended, how long, how many bytes each way. Bytes are
// what was forwarded (counted_ is up to date: each run and the kernel
// path's close count them).
void Session::log_end(CloseReason why, bool established) const {
  const double secs = std::chrono::duration<double>(loop_.now() - accepted_at_).count();
  if (!established) {
    spdlog::info("proxy {}: session {} -> (no backend) ended: {} after {:.3f} s", settings().name,
                 to_string(client_), to_string(why), secs);
    return;
  }
  spdlog::info("proxy {}: session {} -> {} {} ended: {} after {:.3f} s, client sent {} B, backend sent {} B, "
               "path {}",
               settings().name, to_string(client_), backend_->cfg.name, format_sockaddr(backend_->endpoint.data()),
               to_string(why), secs, counted_[0], counted_[1], to_string(path_));
}

}  // namespace proxy
