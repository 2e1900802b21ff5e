// One client connection and its backend connection. Owned by one worker
// (its event loop, its lists); freed by the loop after the batch of events
// in which it closed.
#pragma once

#include <netinet/in.h>
#include <sys/epoll.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "proxy/loop.h"
#include "proxy/pump.h"
#include "proxy/runtime.h"

namespace proxy {

class Worker;
struct ProxySlot;

// Named as in the session log (proxies[].log_sessions).
enum class CloseReason {
  done,           // both sides closed their half cleanly
  error,          // a socket error on either side
  backend_down,   // the backend stopped being eligible (shutdown_sessions_on_down)
  queue_timeout,  // no eligible backend within queue_timeout
  idle_timeout,
  fin_timeout,    // half-closed and quiet for client_fin_timeout / server_fin_timeout
  stopping,       // the daemon is stopping, or a reload removed the proxy or backend
};
const char* to_string(CloseReason r);

// The client's address as accept4() gave it (for the session log).
union PeerAddress {
  sockaddr sa;
  sockaddr_in in;
  sockaddr_in6 in6;
};
std::string to_string(const PeerAddress& a);

// The data path a session uses now (proxies[].data_path picks where it
// starts; see Session::path()).
enum class SessionPath : uint8_t { copy, splice, kernel };
const char* to_string(SessionPath p);

class Session {
 public:
  // Takes `client_fd` (accepted non-blocking from `client`).
  Session(Worker& worker, std::shared_ptr<ProxySlot> slot, int client_fd, const PeerAddress& client);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start();
  // Idempotent; frees the session once the current batch of events is done.
  void close(CloseReason why);
  // The worker tells a waiting session that a backend became eligible.
  void backend_available();
  // The worker tells a session still connecting that its backend stopped
  // being eligible: the connect is abandoned and another backend chosen (or
  // the client waits for one, within queue_timeout).
  void backend_gone();
  // The kernel path's program reported another batch of bytes on the
  // socket with this cookie (`reported`), or the worker looks at every
  // socket because reports were lost (false: not counted towards a bulk
  // stream).
  void on_kernel_report(uint64_t cookie, bool reported = true);

  // The proxy this session was accepted by (its generation may change under
  // it; the backend of an established session does not).
  ProxySlot& slot() const { return *slot_; }
  const BackendRuntime* backend() const { return backend_.get(); }
  ProxyCounters& counters() const { return counters_; }
  bool waiting() const { return state_ == State::waiting; }
  SessionPath path() const { return path_; }

  // Intrusive links: the worker's per-backend, connecting and waiting lists
  // cost no allocation per session.
  Session* prev = nullptr;
  Session* next = nullptr;
  // Set by the worker when a reload removes this session's proxy or
  // backend: the end of its drain (that reload's hard_stop_after). Set once,
  // so a later reload does not extend it. max(): not orphaned.
  Loop::Clock::time_point orphan_deadline = Loop::Clock::time_point::max();

 private:
  enum class State { waiting, connecting, established, closed };
  enum class Wait : uint8_t { none, read, write };
  enum class KState : uint8_t { none, forwarding, returning };
  // Every socket of a session is registered once, edge-triggered, for all it
  // may wait for (proxy/loop.h says why EPOLLOUT costs nothing there).
  static constexpr uint32_t kSocketEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP;

  // One socket as registered with the loop: 0 the client, 1 the backend.
  struct Side final : Loop::Watcher {
    Session* session = nullptr;
    int index = 0;
    int fd = -1;
    Readiness ready;
    void on_io(uint32_t events) override { session->on_io(index, events); }
  };

  void on_io(int side, uint32_t events);
  void on_timer();
  void try_connect();
  void enter_waiting(bool retry_soon);
  void on_connected(int err);
  void start_pumps();
  // Runs direction `dir` (0: client -> server, 1: server -> client).
  void run(int dir);
  void count_bytes(int dir);
  void arm_idle_timer();
  // tcp_user_timeout against a reader that only paused (see session.cpp).
  void on_stall();
  // Every half tcp_user_timeout, but not in a loop for a timeout of a few
  // milliseconds (the configuration allows 1 ms).
  std::chrono::milliseconds stall_every() const {
    return std::max(user_timeout_ / 2, std::chrono::milliseconds(50));
  }
  // HAProxy's `timeout client-fin` / `server-fin` (see session.cpp).
  void half_closed();
  void touch(int side) {
    if (watch_io_) last_io_[side] = loop_.now();
  }
  std::pair<Loop::Clock::time_point, CloseReason> inactivity_deadline() const;
  void set_path(SessionPath p);
  std::atomic<uint64_t>& path_gauge(SessionPath p) const;
  // The kernel path (session_kernel.cpp): hand over once the session has
  // shown it will live; take back (slow reader, bulk stream) through a drain
  // of what the kernel still holds.
  void maybe_hand_over();
  void hand_over();
  void on_kick();
  // The kernel path cannot account for the session's bytes any more (a
  // skb the program could not trim, or its sockets unreadable): log why
  // and close it.
  void kernel_lost();
  void take_back(const char* why);
  // Lets each socket's send queue take what the kernel redirected towards
  // it (see take_back); once the take-back has drained, a send buffer keeps
  // the larger of its old size and autotuning's usual maximum.
  void make_room_for_redirected();
  void restore_send_buffers();
  void finish_take_back();
  void forget_kernel();
  bool in_kernel() const { return kstate_ != KState::none; }
  // The session log's line (proxies[].log_sessions), at close.
  void log_end(CloseReason why, bool established) const;

  const cfg::Proxy& settings() const;

  Worker& worker_;
  Loop& loop_;
  std::shared_ptr<ProxySlot> slot_;
  ProxyCounters& counters_;  // the proxy's, carried across reloads
  std::shared_ptr<BackendRuntime> backend_;  // null while waiting
  // Taken from the configuration when the session starts: a reload changes
  // the timeouts of new sessions only (like HAProxy's old process).
  std::chrono::milliseconds idle_timeout_{0};
  std::chrono::milliseconds fin_timeout_[2]{};  // client side, server side
  bool half_closed_ = false;  // a FIN came from either side
  // Read only when idle_timeout or a -fin timeout is running (watch_io_):
  // an ordinary session does not pay for a clock read per burst.
  bool watch_io_ = false;
  State state_ = State::waiting;
  SessionPath path_ = SessionPath::splice;
  bool in_list_ = false;  // in the worker's waiting or connecting list
  bool queued_ = false;   // counted in queued_total (once per connection)
  bool options_pending_ = false;  // the backend socket's dead-peer options are not set yet
  Loop::Clock::time_point options_due_{};  // when they are set (start_pumps + 1 s)
  Side side_[2];
  std::unique_ptr<Pump> pump_[2];
  Wait wait_[2] = {Wait::none, Wait::none};
  uint64_t counted_[2] = {0, 0};  // bytes of each pump already in the counters
  Loop::Timer timer_;  // connect, queue, idle: one at a time
  // While a direction waits for its socket to take bytes: on_stall.
  Loop::Timer stall_;
  std::chrono::milliseconds user_timeout_{0};  // tcp_user_timeout when the session started
  bool uto_off_[2] = {false, false};  // TCP_USER_TIMEOUT taken off this side's socket: its window is closed
  // Kernel path: drains (FIN, take-back) are polled with this.
  Loop::Timer kick_;
  std::chrono::milliseconds kick_every_{1};
  KState kstate_ = KState::none;
  bool kernel_wanted_ = false;
  bool held_ = false;  // taken back: its sockets stay in the kernel path's maps until it closes
  bool path_counted_ = false;  // path_ is in the proxy's session gauges
  uint64_t cookie_[2] = {0, 0};
  uint64_t carried_[2] = {0, 0};  // bytes moved by earlier pumps of each direction
  int saved_sndbuf_[2] = {0, 0};  // SO_SNDBUF before a take-back enlarged it; 0: untouched
  Loop::Clock::time_point report_window_;
  uint32_t reports_ = 0;
  Loop::Clock::time_point queue_deadline_;
  Loop::Clock::time_point last_io_[2];  // last I/O on the client, server side
  Loop::Clock::time_point accepted_at_;
  PeerAddress client_;
};

}  // namespace proxy
