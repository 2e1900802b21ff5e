#include "proxy/worker.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>

#include "proxy/session.h"

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

Worker::Worker(size_t index, std::vector<std::shared_ptr<ProxyRuntime>> proxies, Hooks hooks)
    : index_(index), proxies_(std::move(proxies)), hooks_(std::move(hooks)) {
  waiting_.resize(proxies_.size());
  active_.resize(proxies_.size());
  for (size_t p = 0; p < proxies_.size(); ++p) active_[p].resize(proxies_[p]->backends.size());
}

Worker::~Worker() {
  stop();
  join();
  // Let every session's handlers run to completion while the pools and lists
  // they touch still exist.
  io_.restart();
  io_.run();
}

void Worker::listen() {
  for (size_t p = 0; p < proxies_.size(); ++p) {
    const cfg::Proxy& pc = proxies_[p]->cfg;
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
    l->acceptor.set_option(tcp::acceptor::reuse_address(true));
    int one = 1;
    // One listening socket per worker; the kernel balances connections.
    ::setsockopt(l->acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    l->acceptor.bind(ep, ec);
    if (ec)
      throw std::system_error(ec, "proxy " + pc.name + ": cannot listen on " + ep.address().to_string() +
                                      ":" + std::to_string(ep.port()));
    l->acceptor.listen(asio::socket_base::max_listen_connections);
    l->acceptor.non_blocking(true);
    listeners_.push_back(std::move(l));
  }
  for (size_t p = 0; p < proxies_.size(); ++p) asio::post(io_, [this, p] { accept(p); });
  trim_pipes();
}

void Worker::trim_pipes() {
  pipes_.trim();
  trim_timer_.expires_after(std::chrono::seconds(1));
  trim_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e && !stopping_) trim_pipes();
  });
}

void Worker::accept(size_t p) {
  if (stopping_ || draining_) return;
  Listener& l = *listeners_[p];
  ProxyRuntime& rt = *proxies_[p];
  if (rt.sessions_current.load(std::memory_order_relaxed) >= rt.cfg.maxconn) {
    // maxconn: stop accepting; further clients wait in the kernel's listen
    // backlog (as with HAProxy) until a session ends.
    if (!l.paused) {
      bump(counters(p).maxconn_pauses);
      spdlog::warn("proxy {}: maxconn {} reached, new connections wait in the backlog", rt.cfg.name,
                   rt.cfg.maxconn);
    }
    l.paused = true;
    l.pause.expires_after(kMaxconnRecheck);
    l.pause.async_wait([this, p](const boost::system::error_code& e) {
      if (!e) accept(p);
    });
    return;
  }
  l.paused = false;
  l.acceptor.async_accept([this, p](const boost::system::error_code& ec, tcp::socket sock) {
    if (ec == asio::error::operation_aborted || stopping_ || draining_) return;
    Listener& l = *listeners_[p];
    if (ec) {
      bump(counters(p).accept_errors);
      if (resource_error(ec)) {
        static thread_local std::chrono::steady_clock::time_point last_log;
        auto now = std::chrono::steady_clock::now();
        if (now - last_log > std::chrono::seconds(5)) {
          last_log = now;
          spdlog::error("proxy {}: accept failed: {}; pausing accepts for {} ms", proxies_[p]->cfg.name,
                        ec.message(), kAcceptErrorPause.count());
        }
        l.pause.expires_after(kAcceptErrorPause);
        l.pause.async_wait([this, p](const boost::system::error_code& e) {
          if (!e) accept(p);
        });
        return;
      }
      accept(p);
      return;
    }
    ProxyRuntime& rt = *proxies_[p];
    rt.sessions_current.fetch_add(1, std::memory_order_relaxed);
    bump(counters(p).sessions_total);
    auto s = std::make_shared<Session>(*this, p, std::move(sock));
    s->start();
    accept(p);
  });
}

std::optional<size_t> Worker::choose_backend(size_t p) {
  ProxyRuntime& rt = *proxies_[p];
  rt.candidates(scratch_candidates_);
  uint64_t ticket = rt.cfg.balance == cfg::Balance::first
                        ? 0
                        : rt.rr_ticket.fetch_add(1, std::memory_order_relaxed);
  return choose(rt.cfg.balance, scratch_candidates_, rt.current.load(std::memory_order_acquire), ticket);
}

void Worker::add_waiting(Session* s) {
  bump(counters(s->proxy_index()).queued_total);
  waiting_[s->proxy_index()].push(s);
}
void Worker::remove_waiting(Session* s) { waiting_[s->proxy_index()].erase(s); }
void Worker::add_active(Session* s) { active_[s->proxy_index()][s->backend_index()].push(s); }
void Worker::remove_active(Session* s) { active_[s->proxy_index()][s->backend_index()].erase(s); }

void Worker::session_closed(size_t p) {
  proxies_[p]->sessions_current.fetch_sub(1, std::memory_order_relaxed);
  if (draining_ && active_sessions() == 0) drain_timer_.cancel();
  Listener* l = p < listeners_.size() ? listeners_[p].get() : nullptr;
  if (l && l->paused && !stopping_ && !draining_) {
    l->pause.cancel();
    l->paused = false;
    asio::post(io_, [this, p] { accept(p); });
  }
}

void Worker::post_backend_change(size_t proxy, size_t backend, bool eligible) {
  asio::post(io_, [this, proxy, backend, eligible] { on_backend_change(proxy, backend, eligible); });
}

void Worker::on_backend_change(size_t p, size_t b, bool eligible) {
  if (stopping_) return;  // while draining, a backend going down still cuts its sessions
  ProxyRuntime& rt = *proxies_[p];
  if (!eligible && rt.cfg.shutdown_sessions_on_down) {
    // Cut at once so clients reconnect to the new primary instead of
    // talking to a demoted, read-only node.
    SessionList& list = active_[p][b];
    while (Session* s = list.front()) s->close(CloseReason::backend_down);
  }
  // Hand waiting clients to the backend that appeared. Sessions move out of
  // the list as they connect; take a snapshot first.
  std::vector<Session*> waiting;
  for (Session* s = waiting_[p].front(); s; s = s->next) waiting.push_back(s);
  for (Session* s : waiting) s->backend_available();
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
  for (const auto& per_backend : active_)
    for (const auto& list : per_backend) n += list.size();
  return n;
}

void Worker::drain(std::chrono::milliseconds grace) {
  asio::post(io_, [this, grace] {
    if (stopping_ || draining_) return;
    draining_ = true;
    for (auto& l : listeners_) {
      boost::system::error_code ignored;
      l->pause.cancel();
      l->acceptor.close(ignored);
    }
    trim_timer_.cancel();
    for (size_t p = 0; p < proxies_.size(); ++p)
      while (Session* s = waiting_[p].front()) s->close(CloseReason::stopping);
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
    for (auto& l : listeners_) {
      boost::system::error_code ignored;
      l->pause.cancel();
      l->acceptor.close(ignored);
    }
    for (size_t p = 0; p < proxies_.size(); ++p) {
      while (Session* s = waiting_[p].front()) s->close(CloseReason::stopping);
      for (auto& list : active_[p])
        while (Session* s = list.front()) s->close(CloseReason::stopping);
    }
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace proxy
