// One client connection and its backend connection. Owned by one worker's
// io_context (no strand needed) and kept alive by its pending operations.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <utility>

#include "proxy/pipe_pool.h"
#include "proxy/runtime.h"

namespace proxy {

class Worker;
struct ProxySlot;

enum class CloseReason {
  done,           // both sides closed their half cleanly
  error,          // a socket error on either side
  backend_down,   // the backend stopped being eligible (shutdown_sessions_on_down)
  queue_timeout,  // no eligible backend within queue_timeout
  idle_timeout,
  fin_timeout,    // half-closed and quiet for client_fin_timeout / server_fin_timeout
  stopping,       // the daemon is stopping
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Worker& worker, std::shared_ptr<ProxySlot> slot, boost::asio::ip::tcp::socket client);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start();
  // Idempotent; safe from any handler of this worker.
  void close(CloseReason why);
  // The worker tells a waiting session that a backend became eligible.
  void backend_available();

  // The proxy this session was accepted by (its generation may change under
  // it; the backend of an established session does not).
  ProxySlot& slot() const { return *slot_; }
  const BackendRuntime* backend() const { return backend_.get(); }
  ProxyCounters& counters() const { return counters_; }
  bool waiting() const { return state_ == State::waiting; }

  // Intrusive links: the worker's per-backend and waiting lists cost no
  // allocation per session.
  Session* prev = nullptr;
  Session* next = nullptr;

 private:
  enum class State { waiting, connecting, established, closed };

  // One direction of the splice pump: bytes read from `from` go through a
  // pipe (or, if splice is impossible, a small heap buffer) into `to`. Holds
  // a pipe or buffer only while bytes are in flight.
  struct Direction {
    Pipe pipe;
    std::unique_ptr<char[]> buf;  // bytes a slow receiver has not taken yet
    size_t buf_off = 0;
    bool splicing = false;  // inside a bulk stream: zero-copy through `pipe`
    size_t burst = 0;       // bytes spliced since the last EAGAIN
    size_t pending = 0;  // bytes read but not yet written
    bool eof = false;    // `from` sent FIN
    bool done = false;   // FIN propagated to `to`
  };

  void try_connect();
  void enter_waiting(bool retry_soon);
  void on_connected(const boost::system::error_code& ec);
  void start_pumps();
  void pump(int dir);
  void wait(int dir, bool for_write);
  void arm_idle_timer();
  void half_closed();
  void touch(int side);
  std::pair<std::chrono::steady_clock::time_point, CloseReason> inactivity_deadline() const;
  int fd_of(int dir, bool to);

  const cfg::Proxy& settings() const;

  Worker& worker_;
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
  bool in_wait_list_ = false;
  boost::asio::ip::tcp::socket client_;
  boost::asio::ip::tcp::socket server_;
  boost::asio::steady_timer timer_;  // connect, queue, idle: one at a time
  std::chrono::steady_clock::time_point queue_deadline_;
  std::chrono::steady_clock::time_point last_io_[2];  // last I/O on the client, server side
  Direction dir_[2];  // 0: client -> server, 1: server -> client
  bool buffered_ = false;
};

}  // namespace proxy
