#include "proxy/worker.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>

#include "proxy/session.h"
#include "proxy/socket_options.h"

namespace proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
// Pauses after accept() fails for lack of resources (EMFILE, ENFILE, ENOBUFS,
// ENOMEM): retrying at once would spin a core while nothing can change.
constexpr auto kAcceptErrorPause = std::chrono::milliseconds(100);
// While at maxconn, look again this often (sessions closing on this worker
// resume at once; this covers sessions closing on other workers).
constexpr auto kMaxconnRecheck = std::chrono::milliseconds(20);

bool resource_error(const boost::system::error_code& ec) {
  int v = ec.value();
  return ec.category() == boost::system::system_category() &&
         (v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM);
}
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

Worker::Worker(size_t index, Hooks hooks) : index_(index), hooks_(std::move(hooks)) {}

Worker::~Worker() {
  stop();
  join();
  // Let every session's handlers run to completion while the pools and lists
  // they touch still exist.
  io_.restart();
  io_.run();
}

std::unique_ptr<Listener> Worker::bind_listener(const cfg::Proxy& pc) {
  auto l = std::make_unique<Listener>(io_);
  std::string host = pc.listen.host == "*" ? "0.0.0.0" : pc.listen.host;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    tcp::resolver r(io_);
    auto res = r.resolve(host, std::to_string(pc.listen.port), ec);
    if (ec || res.empty())
      throw std::system_error(ec, "proxy " + pc.name + ": cannot resolve listen address " + host);
    addr = res.begin()->endpoint().address();
  }
  tcp::endpoint ep(addr, pc.listen.port);
  l->acceptor.open(ep.protocol());
  set_cloexec(l->acceptor.native_handle());
  l->acceptor.set_option(tcp::acceptor::reuse_address(true));
  int one = 1;
  // One listening socket per worker; the kernel balances connections. Also
  // lets a reload bind a proxy's new address while the old one still listens.
  ::setsockopt(l->acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  l->acceptor.bind(ep, ec);
  if (ec)
    throw std::system_error(ec, "proxy " + pc.name + ": cannot listen on " + ep.address().to_string() + ":" +
                                    std::to_string(ep.port()));
  l->acceptor.listen(asio::socket_base::max_listen_connections);
  l->acceptor.non_blocking(true);
  return l;
}

void Worker::listen(const std::vector<std::shared_ptr<ProxyRuntime>>& proxies) {
  for (const auto& rt : proxies) {
    auto slot = std::make_shared<ProxySlot>();
    slot->rt = rt;
    slot->listener = bind_listener(rt->cfg);
    slots_.push_back(std::move(slot));
  }
  for (const auto& slot : slots_) asio::post(io_, [this, slot] { accept(slot); });
  trim_pipes();
}

void Worker::trim_pipes() {
  pipes_.trim();
  trim_timer_.expires_after(std::chrono::seconds(1));
  trim_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e && !stopping_) trim_pipes();
  });
}

void Worker::accept(const std::shared_ptr<ProxySlot>& slot) {
  if (stopping_ || draining_ || !slot->listener) return;
  Listener& l = *slot->listener;
  ProxyRuntime& rt = *slot->rt;
  if (rt.stats->sessions_current.load(std::memory_order_relaxed) >= rt.cfg.maxconn) {
    // maxconn: stop accepting; further clients wait in the kernel's listen
    // backlog (as with HAProxy) until a session ends.
    if (!l.paused) {
      bump(rt.stats->per_worker[index_]->maxconn_pauses);
      spdlog::warn("proxy {}: maxconn {} reached, new connections wait in the backlog", rt.cfg.name,
                   rt.cfg.maxconn);
    }
    l.paused = true;
    l.pause.expires_after(kMaxconnRecheck);
    l.pause.async_wait([this, slot](const boost::system::error_code& e) {
      if (!e) accept(slot);
    });
    return;
  }
  l.paused = false;
  l.acceptor.async_accept([this, slot, lp = &l](const boost::system::error_code& ec, tcp::socket sock) {
    if (ec == asio::error::operation_aborted || stopping_ || draining_ || !slot->listener) return;
    // A reload moved the proxy to a new listener (which has its own accept
    // loop): serve a connection this one accepted just before, then stop.
    const bool replaced = slot->listener.get() != lp;
    if (replaced && ec) return;
    Listener& l = *slot->listener;
    ProxyCounters& counters = *slot->rt->stats->per_worker[index_];
    if (ec) {
      bump(counters.accept_errors);
      if (resource_error(ec)) {
        static thread_local std::chrono::steady_clock::time_point last_log;
        auto now = std::chrono::steady_clock::now();
        if (now - last_log > std::chrono::seconds(5)) {
          last_log = now;
          spdlog::error("proxy {}: accept failed: {}; pausing accepts for {} ms", slot->rt->cfg.name,
                        ec.message(), kAcceptErrorPause.count());
        }
        l.pause.expires_after(kAcceptErrorPause);
        l.pause.async_wait([this, slot](const boost::system::error_code& e) {
          if (!e) accept(slot);
        });
        return;
      }
      accept(slot);
      return;
    }
    slot->rt->stats->sessions_current.fetch_add(1, std::memory_order_relaxed);
    bump(counters.sessions_total);
    auto s = std::make_shared<Session>(*this, slot, std::move(sock));
    s->start();
    if (!replaced) accept(slot);
  });
}

std::optional<size_t> Worker::choose_backend(ProxySlot& slot) {
  ProxyRuntime& rt = *slot.rt;
  rt.candidates(scratch_candidates_);
  uint64_t ticket = rt.cfg.balance == cfg::Balance::first
                        ? 0
                        : rt.stats->rr_ticket.fetch_add(1, std::memory_order_relaxed);
  return choose(rt.cfg.balance, scratch_candidates_, rt.current.load(std::memory_order_acquire), ticket);
}

void Worker::add_waiting(Session* s) {
  bump(s->counters().queued_total);
  s->slot().waiting.push(s);
}
void Worker::remove_waiting(Session* s) { s->slot().waiting.erase(s); }
void Worker::add_active(Session* s) { active_[s->backend()].push(s); }
void Worker::remove_active(Session* s) {
  auto it = active_.find(s->backend());
  if (it == active_.end()) return;
  it->second.erase(s);
  if (it->second.empty()) active_.erase(it);
}

void Worker::session_closed(ProxySlot& slot) {
  slot.rt->stats->sessions_current.fetch_sub(1, std::memory_order_relaxed);
  if (draining_ && active_sessions() == 0) drain_timer_.cancel();
  // A session closing frees room under maxconn: resume a paused listener at
  // once (slots are carried across reloads by name, so this is the live one
  // unless the proxy was removed, and then it has no listener).
  Listener* l = slot.listener.get();
  if (l && l->paused && !stopping_ && !draining_) {
    l->pause.cancel();
    l->paused = false;
    for (const auto& live : slots_)
      if (live.get() == &slot) asio::post(io_, [this, live] { accept(live); });
  }
}

ProxySlot* Worker::find_slot(const std::string& name) {
  for (auto& slot : slots_)
    if (slot->rt->cfg.name == name) return slot.get();
  return nullptr;
}

void Worker::post_backend_change(std::shared_ptr<ProxyRuntime> rt, size_t backend, bool eligible) {
  asio::post(io_, [this, rt = std::move(rt), backend, eligible] { on_backend_change(*rt, backend, eligible); });
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
  // Hand waiting clients to the backend that appeared. Sessions move out of
  // the list as they connect; take a snapshot first.
  ProxySlot* slot = find_slot(rt.cfg.name);
  if (!slot) return;
  std::vector<Session*> waiting;
  for (Session* s = slot->waiting.front(); s; s = s->next) waiting.push_back(s);
  for (Session* s : waiting) s->backend_available();
}

void Worker::post_reload(std::shared_ptr<Reload> reload) {
  asio::post(io_, [this, reload = std::move(reload)] { apply_reload(*reload); });
}

void Worker::apply_reload(Reload& r) {
  if (stopping_ || draining_) return;
  std::vector<std::shared_ptr<ProxySlot>> next;
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
      if (slot->listener) {
        boost::system::error_code ignored;
        slot->listener->pause.cancel();
        slot->listener->acceptor.close(ignored);
      }
      slot->listener = std::move(r.listeners[i]);
      asio::post(io_, [this, slot] { accept(slot); });
    }
    next.push_back(std::move(slot));
  }
  // Proxies the new configuration no longer has: stop listening, turn away
  // the clients still waiting; established sessions drain (close_orphans).
  for (auto& old : slots_) {
    if (!old) continue;
    if (old->listener) {
      boost::system::error_code ignored;
      old->listener->pause.cancel();
      old->listener->acceptor.close(ignored);
      old->listener.reset();
    }
    while (Session* s = old->waiting.front()) s->close(CloseReason::stopping);
  }
  slots_ = std::move(next);
  orphan_timer_.expires_after(r.grace);
  orphan_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) close_orphans();
  });
}

void Worker::close_orphans() {
  std::vector<Session*> orphans;
  for (auto& [backend, list] : active_) {
    for (Session* s = list.front(); s; s = s->next) {
      ProxySlot* live = find_slot(s->slot().rt->cfg.name);
      if (live != &s->slot() || live->rt->index_of(backend) == npos) orphans.push_back(s);
    }
  }
  if (!orphans.empty())
    spdlog::info("worker {}: closing {} sessions of removed proxies or backends", index_, orphans.size());
  for (Session* s : orphans) s->close(CloseReason::stopping);
}

void Worker::start_thread() {
  thread_ = std::thread([this] {
    try {
      io_.run();
    } catch (const std::exception& e) {
      spdlog::critical("worker {}: {}", index_, e.what());
      std::abort();
    }
  });
}

size_t Worker::active_sessions() const {
  size_t n = 0;
  for (const auto& [backend, list] : active_) n += list.size();
  return n;
}

void Worker::drain(std::chrono::milliseconds grace) {
  asio::post(io_, [this, grace] {
    if (stopping_ || draining_) return;
    draining_ = true;
    for (auto& slot : slots_) {
      if (!slot->listener) continue;
      boost::system::error_code ignored;
      slot->listener->pause.cancel();
      slot->listener->acceptor.close(ignored);
    }
    trim_timer_.cancel();
    orphan_timer_.cancel();
    for (auto& slot : slots_)
      while (Session* s = slot->waiting.front()) s->close(CloseReason::stopping);
    if (active_sessions() == 0) return;  // nothing left: the loop ends by itself
    spdlog::info("worker {}: draining {} sessions for up to {} ms", index_, active_sessions(), grace.count());
    drain_timer_.expires_after(grace);
    drain_timer_.async_wait([this](const boost::system::error_code& e) {
      if (e) return;
      spdlog::info("worker {}: hard_stop_after reached, closing {} sessions", index_, active_sessions());
      stop();
    });
  });
}

void Worker::stop() {
  asio::post(io_, [this] {
    if (stopping_) return;
    stopping_ = true;
    trim_timer_.cancel();
    drain_timer_.cancel();
    orphan_timer_.cancel();
    for (auto& slot : slots_) {
      if (slot->listener) {
        boost::system::error_code ignored;
        slot->listener->pause.cancel();
        slot->listener->acceptor.close(ignored);
      }
      while (Session* s = slot->waiting.front()) s->close(CloseReason::stopping);
    }
    while (!active_.empty()) active_.begin()->second.front()->close(CloseReason::stopping);
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace proxy
