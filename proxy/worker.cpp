#include "proxy/worker.h"

#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "cfg/listen.h"
#include "proxy/kernel_path.h"
#include "proxy/session.h"
#include "proxy/socket_options.h"

namespace proxy {

using Clock = Loop::Clock;

namespace {
// Pauses after accept() fails for lack of resources (EMFILE, ENFILE, ENOBUFS,
// ENOMEM): retrying at once would spin a core while nothing can change.
constexpr auto kAcceptErrorPause = std::chrono::milliseconds(100);
// While at maxconn, look again this often (sessions closing on this worker
// resume at once; this covers sessions closing on other workers).
constexpr auto kMaxconnRecheck = std::chrono::milliseconds(20);

bool resource_error(int e) { return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM; }
}  // namespace

void SessionList::push(Session* s) {
  s->prev = nullptr;
  s->next = head_;
  if (head_) head_->prev = s;
  head_ = s;
  ++size_;
}

void SessionList::erase(Session* s) {
  if (s->prev) s->prev->next = s->next;
  else head_ = s->next;
  if (s->next) s->next->prev = s->prev;
  s->prev = s->next = nullptr;
  --size_;
}

Listener::~Listener() {
  if (loop) loop->cancel(pause);
  if (fd >= 0) ::close(fd);
}

void Listener::shut() {
  if (loop) loop->cancel(pause);
  if (fd >= 0) ::close(fd);  // the loop forgets a closed socket
  fd = -1;
  ready = nullptr;
}

Worker::Worker(size_t index, Hooks hooks) : index_(index), hooks_(std::move(hooks)) {
  pump_ctx_.pipes = &pipes_;
  pump_ctx_.scratch = scratch_.get();
  pump_ctx_.scratch_size = kScratchSize;
  trim_timer_.set([this] { trim_pipes(); });
  orphan_timer_.set([this] { close_orphans(); });
  drain_timer_.set([this] {
    spdlog::info("worker {}: hard_stop_after reached, closing {} sessions", index_, active_sessions());
    do_stop();
  });
}

Worker::~Worker() {
  stop();
  join();
  // The thread is gone (or never ran): what was posted runs here, so every
  // session is closed and freed while the pools and lists still exist.
  loop_.run_pending();
  do_stop();
  loop_.run_pending();
  loop_.cancel(trim_timer_);
  loop_.cancel(orphan_timer_);
  loop_.cancel(drain_timer_);
}

namespace {

// The listen address of `pc`, looked up as every worker binds it.
struct ListenAddress {
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> res{nullptr, ::freeaddrinfo};
  char text[NI_MAXHOST] = "?";
};

ListenAddress resolve_listen(const cfg::Proxy& pc) {
  std::string host = pc.listen.host == "*" ? "0.0.0.0" : pc.listen.host;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), std::to_string(pc.listen.port).c_str(), &hints, &res); rc != 0 || !res)
    throw std::system_error(std::make_error_code(std::errc::host_unreachable),
                            "proxy " + pc.name + ": cannot resolve listen address " + host + ": " +
                                ::gai_strerror(rc));
  ListenAddress a;
  a.res.reset(res);
  ::getnameinfo(res->ai_addr, res->ai_addrlen, a.text, sizeof a.text, nullptr, 0, NI_NUMERICHOST);
  return a;
}

}  // namespace

std::string Worker::listen_taken(const cfg::Proxy& pc) {
  const ListenAddress a = resolve_listen(pc);
  const addrinfo* res = a.res.get();
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";  // the real bind says why
  int one = 1;
  // SO_REUSEADDR as the listeners have it: a restart's connections still in
  // TIME_WAIT on the port do not count, a socket listening there does.
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool taken = ::bind(fd, res->ai_addr, res->ai_addrlen) < 0 && errno == EADDRINUSE;
  ::close(fd);
  if (!taken) return "";
  return "proxy " + pc.name + ": cannot listen on " + a.text + ":" + std::to_string(pc.listen.port) +
         ": another process already listens there (a second vipproxy on this file? `ss -ltnp 'sport = :" +
         std::to_string(pc.listen.port) + "'` names it)";
}

std::unique_ptr<Listener> Worker::bind_listener(const cfg::Proxy& pc) {
  const ListenAddress a = resolve_listen(pc);
  const addrinfo* res = a.res.get();
  const char* text = a.text;
  auto fail = [&](int e) {
    throw std::system_error(e, std::generic_category(),
                            "proxy " + pc.name + ": cannot listen on " + text + ":" + std::to_string(pc.listen.port));
  };
  auto l = std::make_unique<Listener>();
  l->bound = {text, pc.listen.port};
  l->fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (l->fd < 0) fail(errno);
  int one = 1;
  ::setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // One listening socket per worker; the kernel balances connections. Also
  // lets a reload bind a proxy's new address while the old one still listens.
  // It also lets any other process of our user join the group and take a
  // share of the clients: listen_taken() is asked first.
  ::setsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  // Accepted sockets inherit these from the listener: no setsockopt per
  // connection on the client side.
  apply_session_options(l->fd, pc);
  if (::bind(l->fd, res->ai_addr, res->ai_addrlen) < 0) fail(errno);
  if (::listen(l->fd, SOMAXCONN) < 0) fail(errno);
  return l;
}

std::vector<cfg::Endpoint> Worker::listen(const std::vector<std::shared_ptr<ProxyRuntime>>& proxies) {
  std::vector<cfg::Endpoint> bound;
  for (const auto& rt : proxies) {
    auto slot = std::make_shared<ProxySlot>();
    slot->rt = rt;
    slot->listener = bind_listener(rt->cfg);
    bound.push_back(slot->listener->bound);
    slots_.push_back(std::move(slot));
  }
  for (const auto& slot : slots_) watch(slot);
  loop_.arm_after(trim_timer_, std::chrono::seconds(1));
  return bound;
}

void Worker::watch(const std::shared_ptr<ProxySlot>& slot) {
  Listener& l = *slot->listener;
  l.loop = &loop_;
  ProxySlot* s = slot.get();
  l.ready = [this, s] { accept(*s); };
  l.pause.set([this, s] { resume_accepting(*s); });
  // Level-triggered, one accept4() per wake-up: the loop reports the
  // listener again while connections wait, so no accept4() ends in EAGAIN.
  if (!loop_.add(l.fd, EPOLLIN, &l, false))
    throw std::system_error(errno, std::generic_category(), "proxy " + slot->rt->cfg.name + ": epoll_ctl");
}

void Worker::trim_pipes() {
  pipes_.trim();
  if (!stopping_) loop_.arm_after(trim_timer_, std::chrono::seconds(1));
}

void Worker::pause_accepting(Listener& l, std::chrono::milliseconds d) {
  // Level-triggered: a paused listener must be taken out of the wait set,
  // or every epoll_wait would report it again.
  if (!l.paused) loop_.modify(l.fd, 0, &l, false);
  l.paused = true;
  loop_.arm_after(l.pause, d);
}

void Worker::resume_accepting(ProxySlot& slot) {
  Listener* l = slot.listener.get();
  if (!l || l->fd < 0 || stopping_ || draining_) return;
  ProxyRuntime& rt = *slot.rt;
  if (rt.stats->sessions_current.load(std::memory_order_relaxed) >= rt.cfg.maxconn) {
    loop_.arm_after(l->pause, kMaxconnRecheck);  // still full: stay paused, no new warning
    return;
  }
  if (l->paused) {
    l->paused = false;
    loop_.modify(l->fd, EPOLLIN, l, false);
  }
  accept(slot);
}

void Worker::accept(ProxySlot& slot) {
  if (stopping_ || draining_ || !slot.listener || slot.listener->fd < 0) return;
  Listener& l = *slot.listener;
  ProxyRuntime& rt = *slot.rt;
  ProxyCounters& counters = *rt.stats->per_worker[index_];
  {
    if (rt.stats->sessions_current.load(std::memory_order_relaxed) >= rt.cfg.maxconn) {
      // maxconn: stop accepting; further clients wait in the kernel's listen
      // backlog (as with HAProxy) until a session ends.
      if (!l.paused) {
        bump(counters.maxconn_pauses);
        spdlog::warn("proxy {}: maxconn {} reached, new connections wait in the backlog", rt.cfg.name,
                     rt.cfg.maxconn);
      }
      pause_accepting(l, kMaxconnRecheck);
      return;
    }
    // Non-blocking and close-on-exec from the start: no FIONBIO/fcntl. The
    // client's address comes with it (for the session log): no getpeername,
    // which fails once a client has reset.
    PeerAddress peer{};
    socklen_t peer_len = sizeof peer;
    int fd = ::accept4(l.fd, &peer.sa, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) return;  // the loop reports it again
      bump(counters.accept_errors);
      if (resource_error(e)) {
        static thread_local Clock::time_point last_log;
        auto now = Clock::now();
        if (now - last_log > std::chrono::seconds(5)) {
          last_log = now;
          spdlog::error("proxy {}: accept failed: {}; pausing accepts for {} ms", rt.cfg.name, std::strerror(e),
                        kAcceptErrorPause.count());
        }
        pause_accepting(l, kAcceptErrorPause);
        return;
      }
      return;  // ECONNABORTED and the like: that client is gone; the loop reports the next
    }
    start_session(slot, fd, peer);
  }
}

void Worker::start_session(ProxySlot& slot, int fd, const PeerAddress& peer) {
  ProxyRuntime& rt = *slot.rt;
  rt.stats->sessions_current.fetch_add(1, std::memory_order_relaxed);
  bump(rt.stats->per_worker[index_]->sessions_total);
  ++live_;
  auto* s = new Session(*this, slot.shared_from_this(), fd, peer);
  s->start();
}

void Worker::take_queued(Listener& from, ProxySlot& to) {
  if (from.fd < 0) return;
  size_t taken = 0;
  for (;;) {
    PeerAddress peer{};
    socklen_t peer_len = sizeof peer;
    int fd = ::accept4(from.fd, &peer.sa, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;  // EAGAIN: none left (or an error the close below ends anyway)
    }
    // It was accepted under the old listener's socket options.
    apply_session_options(fd, to.rt->cfg);
    start_session(to, fd, peer);
    ++taken;
  }
  if (taken)
    spdlog::info("proxy {}: {} client(s) queued on the listener a reload closes taken over", to.rt->cfg.name, taken);
}

void Worker::set_kernel(std::unique_ptr<KernelPath> k) {
  // The worker's thread reads kernel_ without a lock on every accept.
  if (thread_.joinable()) throw std::logic_error("Worker::set_kernel after start_thread");
  kernel_ = std::move(k);
  if (!kernel_) return;
  kernel_events_.worker = this;
  if (!loop_.add(kernel_->events_fd(), EPOLLIN, &kernel_events_))
    throw std::system_error(errno, std::generic_category(), "kernel path: epoll_ctl(ring buffer)");
}

void Worker::kernel_session(uint64_t cookie, Session* s) {
  if (s) kernel_sessions_[cookie] = s;
  else kernel_sessions_.erase(cookie);
}

void Worker::on_kernel_events() {
  kernel_->consume([this](uint64_t cookie) {
    // A report may come after its session left the kernel path: ignored.
    auto it = kernel_sessions_.find(cookie);
    if (it != kernel_sessions_.end()) it->second->on_kernel_report(cookie);
  });
  // Read after the ring was drained: a report dropped for want of room was
  // dropped while the ring held reports not yet read, so this wake-up (or
  // the one for them) sees it. Every socket then gets what a report gives
  // it (a take-back if the program held it, more credit otherwise).
  const uint64_t lost = kernel_->reports_lost();
  if (lost == kernel_reports_lost_) return;
  const uint64_t dropped = lost - kernel_reports_lost_;
  kernel_reports_lost_ = lost;
  std::vector<uint64_t> cookies;
  cookies.reserve(kernel_sessions_.size());
  for (const auto& [cookie, session] : kernel_sessions_) cookies.push_back(cookie);
  if (auto now = Clock::now(); now - kernel_lost_logged_ > std::chrono::seconds(5)) {
    kernel_lost_logged_ = now;
    spdlog::warn("worker {}: the kernel path's ring buffer was full ({} reports dropped, {} since start): looking "
                 "at its {} sockets",
                 index_, dropped, lost, cookies.size());
  }
  for (uint64_t cookie : cookies) {
    // A session closed or taken back meanwhile has left the table.
    auto it = kernel_sessions_.find(cookie);
    if (it != kernel_sessions_.end()) it->second->on_kernel_report(cookie, false);
  }
}

std::optional<size_t> Worker::choose_backend(ProxySlot& slot) {
  ProxyRuntime& rt = *slot.rt;
  rt.candidates(scratch_candidates_);
  uint64_t ticket = rt.cfg.balance == cfg::Balance::first
                        ? 0
                        : rt.stats->rr_ticket.fetch_add(1, std::memory_order_relaxed);
  return choose(rt.cfg.balance, scratch_candidates_, rt.current.load(std::memory_order_acquire), ticket);
}

void Worker::add_waiting(Session* s) { s->slot().waiting.push(s); }
void Worker::remove_waiting(Session* s) { s->slot().waiting.erase(s); }
void Worker::add_active(Session* s) { active_[s->backend()].push(s); }
void Worker::remove_active(Session* s) {
  auto it = active_.find(s->backend());
  if (it == active_.end()) return;
  it->second.erase(s);
  if (it->second.empty()) active_.erase(it);
}

void Worker::session_closed(Session* s) {
  ProxySlot& slot = s->slot();
  slot.rt->stats->sessions_current.fetch_sub(1, std::memory_order_relaxed);
  --live_;
  // Freed after this batch of events: one of its sockets may still have an
  // event in it.
  loop_.defer([s] { delete s; });
  if (draining_ && live_ == 0) {
    loop_.cancel(drain_timer_);
    loop_.stop();
  }
  // A session closing frees room under maxconn: resume a paused listener at
  // once (slots are carried across reloads by name, so this is the live one
  // unless the proxy was removed, and then it has no listener).
  Listener* l = slot.listener.get();
  if (l && l->paused && !stopping_ && !draining_) loop_.arm(l->pause, Clock::now());
}

ProxySlot* Worker::find_slot(const std::string& name) {
  for (auto& slot : slots_)
    if (slot->rt->cfg.name == name) return slot.get();
  return nullptr;
}

void Worker::post_backend_change(std::shared_ptr<ProxyRuntime> rt, size_t backend, bool eligible) {
  loop_.post([this, rt = std::move(rt), backend, eligible] { on_backend_change(*rt, backend, eligible); });
}

void Worker::post_heartbeat(uint64_t seq) {
  loop_.post([this, seq] { heartbeat_.store(seq, std::memory_order_relaxed); });
}

void Worker::on_backend_change(const ProxyRuntime& rt, size_t b, bool eligible) {
  if (stopping_) return;  // while draining, a backend going down still cuts its sessions
  if (!eligible && rt.cfg.shutdown_sessions_on_down) {
    // Cut at once so clients reconnect to the new primary instead of
    // talking to a demoted, read-only node.
    auto it = active_.find(rt.backends[b].get());
    while (it != active_.end()) {
      it->second.front()->close(CloseReason::backend_down);  // erases the entry with its last session
      it = active_.find(rt.backends[b].get());
    }
  }
  if (!eligible) {
    // A client still connecting to it (a primary whose host died drops the
    // SYN: the connect would wait for connect_timeout, often past the
    // client's queue_timeout) goes to the backend in force or waits for one.
    const BackendRuntime* gone = rt.backends[b].get();
    std::vector<Session*> connecting;
    for (Session* s = connecting_.front(); s; s = s->next)
      if (s->backend() == gone) connecting.push_back(s);
    for (Session* s : connecting) s->backend_gone();
  }
  // Hand waiting clients to the backend that appeared. Sessions move out of
  // the list as they connect; take a snapshot first.
  ProxySlot* slot = find_slot(rt.cfg.name);
  if (!slot) return;
  std::vector<Session*> waiting;
  for (Session* s = slot->waiting.front(); s; s = s->next) waiting.push_back(s);
  for (Session* s : waiting) s->backend_available();
}

void Worker::post_reload(std::shared_ptr<Reload> reload) {
  loop_.post([this, reload = std::move(reload)] { apply_reload(*reload); });
}

void Worker::apply_reload(Reload& r) {
  if (stopping_ || draining_) return;
  std::vector<std::shared_ptr<ProxySlot>> next;
  // Listeners that close, and the proxy that takes the clients still queued
  // on them (the same proxy on its new address, or the one that now listens
  // on the address of a removed one); null: turned away (reset).
  struct Closing {
    std::unique_ptr<Listener> listener;
    std::shared_ptr<ProxySlot> to;
  };
  std::vector<Closing> closing;
  for (size_t i = 0; i < r.proxies.size(); ++i) {
    std::shared_ptr<ProxySlot> slot;
    for (auto& old : slots_)
      if (old && old->rt->cfg.name == r.proxies[i]->cfg.name) slot = std::exchange(old, nullptr);
    bool fresh = !slot;
    if (fresh) slot = std::make_shared<ProxySlot>();
    // Waiting clients stay in the slot: their next try uses the new
    // generation. Established sessions keep their backend.
    slot->rt = r.proxies[i];
    if (r.listeners[i]) {
      if (slot->listener) closing.push_back({std::move(slot->listener), slot});
      slot->listener = std::move(r.listeners[i]);
      watch(slot);
    } else if (slot->listener) {
      // The kept listener hands its options to the sessions accepted from
      // now on: set the new ones (keepalive, TCP_USER_TIMEOUT) on it.
      apply_session_options(slot->listener->fd, slot->rt->cfg);
    }
    next.push_back(std::move(slot));
  }
  // Proxies the new configuration no longer has: stop listening, turn away
  // the clients still waiting; established sessions drain (close_orphans).
  for (auto& old : slots_) {
    if (!old) continue;
    if (old->listener) {
      std::shared_ptr<ProxySlot> heir;
      for (const auto& n : next)
        if (n->listener && cfg::listens_clash(n->listener->bound, old->listener->bound)) heir = n;
      closing.push_back({std::move(old->listener), heir});
    }
    while (Session* s = old->waiting.front()) s->close(CloseReason::stopping);
  }
  slots_ = std::move(next);
  // Clients TCP accepted on a listener that closes would be reset with it
  // (only net.ipv4.tcp_migrate_req moves them within the SO_REUSEPORT group,
  // off by default): taken first, even past maxconn (their number is
  // bounded by the backlog, and the alternative is a reset).
  for (auto& c : closing) {
    if (c.to) take_queued(*c.listener, *c.to);
    c.listener->shut();
  }
  // Connects in flight: to a removed proxy, turned away like its waiting
  // clients (else it would queue in a proxy that no longer exists until its
  // queue_timeout); to a removed backend, now ineligible, handed to another
  // at once rather than after connect_timeout (the node removed may be one
  // that died, dropping the SYN).
  std::vector<Session*> connecting;
  for (Session* s = connecting_.front(); s; s = s->next) connecting.push_back(s);
  for (Session* s : connecting) {
    if (find_slot(s->slot().rt->cfg.name) != &s->slot())
      s->close(CloseReason::stopping);
    else if (s->slot().rt->index_of(s->backend()) == npos)
      s->backend_gone();
  }
  mark_orphans(loop_.now() + r.grace);
}

// Each session drains for the grace of the reload that removed its proxy or
// backend: a second reload within that time neither extends nor shortens
// it (one timer re-armed per reload would have kept the first reload's
// sessions until the last reload's grace ended).
// Only established sessions: one still connecting to a removed backend
// was sent elsewhere by apply_reload (and the reload made that backend
// ineligible, so Session::on_connected would not establish it there).
void Worker::mark_orphans(Loop::Clock::time_point deadline) {
  auto earliest = Loop::Clock::time_point::max();
  auto mark = [&](Session* s) {
    if (s->orphan_deadline == Loop::Clock::time_point::max()) {
      ProxySlot* live = find_slot(s->slot().rt->cfg.name);
      if (live == &s->slot() && live->rt->index_of(s->backend()) != npos) return;  // kept
      s->orphan_deadline = deadline;
    }
    earliest = std::min(earliest, s->orphan_deadline);
  };
  for (auto& [backend, list] : active_)
    for (Session* s = list.front(); s; s = s->next) mark(s);
  if (earliest != Loop::Clock::time_point::max()) loop_.arm(orphan_timer_, earliest);
}

void Worker::close_orphans() {
  std::vector<Session*> due;
  auto next = Loop::Clock::time_point::max();
  auto due_or_later = [&](Session* s) {
    if (s->orphan_deadline <= loop_.now())
      due.push_back(s);
    else
      next = std::min(next, s->orphan_deadline);
  };
  for (auto& [backend, list] : active_)
    for (Session* s = list.front(); s; s = s->next) due_or_later(s);
  if (!due.empty()) spdlog::info("worker {}: closing {} sessions of removed proxies or backends", index_, due.size());
  for (Session* s : due) s->close(CloseReason::stopping);
  if (next != Loop::Clock::time_point::max()) loop_.arm(orphan_timer_, next);
}

void Worker::start_thread() {
  thread_ = std::thread([this] {
    try {
      loop_.run();
    } catch (const std::exception& e) {
      spdlog::critical("worker {}: {}", index_, e.what());
      std::abort();
    }
    if (hooks_.ended) hooks_.ended();
  });
}

size_t Worker::active_sessions() const {
  size_t n = 0;
  for (const auto& [backend, list] : active_) n += list.size();
  return n;
}

void Worker::drain(std::chrono::milliseconds grace) {
  loop_.post([this, grace] {
    if (stopping_ || draining_) return;
    draining_ = true;
    for (auto& slot : slots_)
      if (slot->listener) slot->listener->shut();
    loop_.cancel(trim_timer_);
    loop_.cancel(orphan_timer_);
    for (auto& slot : slots_)
      while (Session* s = slot->waiting.front()) s->close(CloseReason::stopping);
    if (live_ == 0) {  // nothing left: the loop ends
      loop_.stop();
      return;
    }
    spdlog::info("worker {}: draining {} sessions for up to {} ms", index_, active_sessions(), grace.count());
    loop_.arm_after(drain_timer_, grace);
  });
}

void Worker::close_all() {
  for (auto& slot : slots_) {
    if (slot->listener) slot->listener->shut();
    while (Session* s = slot->waiting.front()) s->close(CloseReason::stopping);
  }
  while (Session* s = connecting_.front()) s->close(CloseReason::stopping);
  while (!active_.empty()) active_.begin()->second.front()->close(CloseReason::stopping);
}

void Worker::do_stop() {
  if (!stopping_) {
    stopping_ = true;
    loop_.cancel(trim_timer_);
    loop_.cancel(drain_timer_);
    loop_.cancel(orphan_timer_);
  }
  close_all();
  loop_.stop();
}

void Worker::stop() {
  loop_.post([this] { do_stop(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace proxy
