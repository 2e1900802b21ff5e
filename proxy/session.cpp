#include "proxy/session.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proxy/socket_options.h"
#include "proxy/worker.h"

namespace proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {
// 64 KiB is the default pipe capacity: one splice fills it in one call.
constexpr size_t kChunk = 64 * 1024;
// After a refused/timed-out connect, retry this soon (bounded by the
// session's queue deadline) rather than failing the client at once.
constexpr auto kRetryAfterConnectFailure = std::chrono::milliseconds(200);
}  // namespace

Session::Session(Worker& worker, std::shared_ptr<ProxySlot> slot, tcp::socket client)
    : worker_(worker),
      slot_(std::move(slot)),
      counters_(*slot_->rt->stats->per_worker[worker.index()]),
      client_(std::move(client)),
      server_(worker.io()),
      timer_(worker.io()) {}

Session::~Session() {
  worker_.pipes().discard(dir_[0].pipe);
  worker_.pipes().discard(dir_[1].pipe);
}

const cfg::Proxy& Session::settings() const { return slot_->rt->cfg; }

void Session::start() {
  boost::system::error_code ec;
  client_.non_blocking(true, ec);
  apply_session_options(client_.native_handle(), settings());
  queue_deadline_ = Clock::now() + settings().queue_timeout;
  idle_timeout_ = settings().idle_timeout;
  fin_timeout_[0] = settings().client_fin_timeout;
  fin_timeout_[1] = settings().server_fin_timeout;
  try_connect();
}

void Session::try_connect() {
  auto chosen = worker_.choose_backend(*slot_);
  if (!chosen) {
    enter_waiting(false);
    return;
  }
  if (in_wait_list_) {
    worker_.remove_waiting(this);
    in_wait_list_ = false;
  }
  backend_ = slot_->rt->backends[*chosen];
  state_ = State::connecting;
  BackendRuntime& b = *backend_;

  boost::system::error_code ec;
  server_.open(b.endpoint.protocol(), ec);
  if (ec) {
    // Typically EMFILE: treat like a failed connect, the client may wait.
    on_connected(ec);
    return;
  }
  server_.non_blocking(true, ec);
  apply_session_options(server_.native_handle(), settings());

  timer_.expires_after(settings().connect_timeout);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
    if (e || self->state_ != State::connecting) return;
    boost::system::error_code ignored;
    self->server_.cancel(ignored);  // on_connected sees operation_aborted
  });
  server_.async_connect(b.endpoint, [self = shared_from_this()](const boost::system::error_code& e) {
    self->on_connected(e);
  });
}

void Session::on_connected(const boost::system::error_code& ec) {
  if (state_ == State::closed) return;
  timer_.cancel();
  if (ec) {
    BackendRuntime& b = *backend_;
    b.connect_errors.fetch_add(1, std::memory_order_relaxed);
    bump(counters_.connect_errors);
    spdlog::debug("proxy {}: connect to backend {} ({}) failed: {}", settings().name, b.cfg.name,
                  b.endpoint.address().to_string(),
                  ec == asio::error::operation_aborted ? "timeout" : ec.message());
    if (worker_.hooks().connect_failed) worker_.hooks().connect_failed(backend_);
    boost::system::error_code ignored;
    server_.close(ignored);
    backend_.reset();
    enter_waiting(true);
    return;
  }
  BackendRuntime& b = *backend_;
  // The backend may have been marked down (or removed by a reload) while we
  // were connecting.
  if (!b.eligible.load(std::memory_order_acquire) && settings().shutdown_sessions_on_down) {
    backend_.reset();
    boost::system::error_code ignored;
    server_.close(ignored);
    enter_waiting(true);
    return;
  }
  state_ = State::established;
  b.sessions.fetch_add(1, std::memory_order_relaxed);
  b.sessions_total.fetch_add(1, std::memory_order_relaxed);
  worker_.add_active(this);
  start_pumps();
}

void Session::enter_waiting(bool retry_soon) {
  state_ = State::waiting;
  auto now = Clock::now();
  if (now >= queue_deadline_) {
    bump(counters_.queue_timeouts);
    spdlog::debug("proxy {}: no eligible backend within queue_timeout, closing client", settings().name);
    close(CloseReason::queue_timeout);
    return;
  }
  if (!in_wait_list_) {
    worker_.add_waiting(this);
    in_wait_list_ = true;
  }
  auto when = queue_deadline_;
  if (retry_soon && now + kRetryAfterConnectFailure < when) when = now + kRetryAfterConnectFailure;
  timer_.expires_at(when);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
    if (e || self->state_ != State::waiting) return;
    self->try_connect();  // re-enters waiting (or closes at the deadline) if still none
  });
}

void Session::backend_available() {
  if (state_ != State::waiting) return;
  timer_.cancel();
  try_connect();
}

void Session::start_pumps() {
  if (idle_timeout_.count() > 0) {
    watch_io_ = true;
    last_io_[0] = last_io_[1] = Clock::now();
    arm_idle_timer();
  }
  pump(0);
  if (state_ != State::closed) pump(1);
}

void Session::touch(int side) {
  if (watch_io_) last_io_[side] = Clock::now();
}

// HAProxy's `timeout client-fin` / `server-fin`: once either side has sent
// its FIN, each side gets its own inactivity bound, so a peer that
// half-closed and went quiet (or a backend that never answers a FIN) cannot
// hold a session, and its maxconn slot, forever while idle_timeout is 0.
void Session::half_closed() {
  if (half_closed_) return;
  half_closed_ = true;
  if (fin_timeout_[0].count() == 0 && fin_timeout_[1].count() == 0) return;
  watch_io_ = true;
  last_io_[0] = last_io_[1] = Clock::now();
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

// One timer for idle_timeout and the -fin timeouts: it fires at the
// earliest deadline and re-arms if I/O moved it meanwhile.
void Session::arm_idle_timer() {
  auto [when, why] = inactivity_deadline();
  if (when == Clock::time_point::max()) return;
  timer_.expires_at(when);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
    if (e || self->state_ != State::established) return;
    auto [when, why] = self->inactivity_deadline();
    if (Clock::now() >= when) {
      bump(why == CloseReason::idle_timeout ? self->counters_.idle_timeouts : self->counters_.fin_timeouts);
      self->close(why);
    } else {
      self->arm_idle_timer();
    }
  });
}

int Session::fd_of(int dir, bool to) {
  // dir 0 reads the client and writes the server; dir 1 the reverse.
  bool client = (dir == 0) != to;
  return client ? client_.native_handle() : server_.native_handle();
}

// Moves bytes until a socket would block, then waits for readiness. Only
// reads when nothing is pending (back-pressure: never read more than the
// other side has taken), and only waits for readability after EAGAIN (the
// reactor is edge-triggered).
//
// Two ways to move bytes, chosen per burst. Small messages (the database
// protocol's usual request/response) are read into the worker's scratch
// buffer and sent at once: one copy each way is cheaper than splice's page
// juggling for a few hundred bytes, and nothing stays allocated. A read that
// fills the scratch buffer means a bulk stream: the direction then splices
// socket -> pipe -> socket (zero copy) until the source runs dry.
void Session::pump(int di) {
  Direction& d = dir_[di];
  const int in = fd_of(di, false);
  const int out = fd_of(di, true);
  auto& bytes = di == 0 ? counters_.bytes_in : counters_.bytes_out;

  for (;;) {
    if (state_ != State::established) return;
    if (d.pending > 0) {
      ssize_t n;
      if (d.buf)
        n = ::send(out, d.buf.get() + d.buf_off, d.pending, MSG_NOSIGNAL | MSG_DONTWAIT);
      else
        n = ::splice(d.pipe.rd, nullptr, out, nullptr, d.pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.pending -= static_cast<size_t>(n);
        d.buf_off += static_cast<size_t>(n);
        bump(bytes, static_cast<uint64_t>(n));
        touch(1 - di);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wait(di, true);
        return;
      }
      close(CloseReason::error);
      return;
    }

    // Nothing in flight. A leftover buffer is dropped at once; the pipe stays
    // borrowed while a bulk burst lasts and goes back to the pool at EAGAIN,
    // so an idle session holds neither.
    d.buf.reset();
    d.buf_off = 0;

    if (d.eof) {
      worker_.pipes().release(d.pipe);
      // Half-close: pass the FIN on, keep the other direction running.
      ::shutdown(out, SHUT_WR);
      d.done = true;
      if (dir_[1 - di].done) close(CloseReason::done);
      return;
    }

    ssize_t n;
    if (d.splicing) {
      if (!d.pipe) d.pipe = worker_.pipes().acquire();
      if (!d.pipe) {
        buffered_ = true;  // out of descriptors for pipes: copy instead
        d.splicing = false;
        bump(counters_.buffered_fallbacks);
        continue;
      }
      n = ::splice(in, nullptr, d.pipe.wr, nullptr, kChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.pending = static_cast<size_t>(n);
        d.burst += static_cast<size_t>(n);
        touch(di);
        continue;
      }
      if (n < 0 && errno == EINVAL) {
        worker_.pipes().release(d.pipe);
        buffered_ = true;
        d.splicing = false;
        bump(counters_.buffered_fallbacks);
        continue;
      }
    } else {
      char* scratch = worker_.scratch();
      n = ::recv(in, scratch, Worker::kScratchSize, MSG_DONTWAIT);
      if (n > 0) {
        touch(di);
        ssize_t m = ::send(out, scratch, static_cast<size_t>(n), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) m = 0;
        if (m < 0) {
          close(CloseReason::error);
          return;
        }
        bump(bytes, static_cast<uint64_t>(m));
        if (m > 0) touch(1 - di);
        if (m < n) {
          // The other side is slow: keep only what it has not taken yet,
          // and read no more until it has.
          d.pending = static_cast<size_t>(n - m);
          d.buf = std::make_unique<char[]>(d.pending);
          std::memcpy(d.buf.get(), scratch + m, d.pending);
        }
        if (static_cast<size_t>(n) == Worker::kScratchSize && !buffered_) d.splicing = true;
        continue;
      }
    }
    if (n == 0) {
      d.eof = true;
      half_closed();
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      worker_.pipes().release(d.pipe);
      // A stream stays on the zero-copy path while its bursts are big; a
      // short burst (a query, a reply) sends it back to the copy path.
      d.splicing = d.splicing && d.burst >= Worker::kScratchSize;
      d.burst = 0;
      wait(di, false);
      return;
    }
    close(CloseReason::error);
    return;
  }
}

void Session::wait(int di, bool for_write) {
  // dir 0 reads client / writes server; dir 1 reads server / writes client.
  tcp::socket& s = (di == 0) == for_write ? server_ : client_;
  s.async_wait(for_write ? tcp::socket::wait_write : tcp::socket::wait_read,
               [self = shared_from_this(), di](const boost::system::error_code& e) {
                 if (e) return;
                 self->pump(di);
               });
}

void Session::close(CloseReason why) {
  if (state_ == State::closed) return;
  const bool was_established = state_ == State::established;
  state_ = State::closed;
  if (in_wait_list_) {
    worker_.remove_waiting(this);
    in_wait_list_ = false;
  }
  if (was_established) {
    worker_.remove_active(this);
    backend_->sessions.fetch_sub(1, std::memory_order_relaxed);
  }
  if (why == CloseReason::backend_down) bump(counters_.sessions_cut_on_down);
  boost::system::error_code ignored;
  timer_.cancel();
  client_.close(ignored);
  server_.close(ignored);
  worker_.pipes().discard(dir_[0].pipe);
  worker_.pipes().discard(dir_[1].pipe);
  dir_[0].buf.reset();
  dir_[1].buf.reset();
  worker_.session_closed(*slot_);
}

}  // namespace proxy
