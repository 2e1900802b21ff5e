// A worker thread: its own io_context, its own listening socket per proxy
// (SO_REUSEPORT, so the kernel spreads connections over workers without a
// shared accept lock), and the sessions it accepted.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "proxy/pipe_pool.h"
#include "proxy/runtime.h"

namespace proxy {

class Session;

// A doubly linked list through Session::prev/next.
class SessionList {
 public:
  void push(Session* s);
  void erase(Session* s);
  Session* front() const { return head_; }
  bool empty() const { return head_ == nullptr; }
  size_t size() const { return size_; }

 private:
  Session* head_ = nullptr;
  size_t size_ = 0;
};

class Worker {
 public:
  struct Hooks {
    // Called on this worker's thread when connecting to a backend failed;
    // the daemon posts a check_now to the control thread (evidence beats
    // waiting for the next interval).
    std::function<void(size_t proxy, size_t backend)> connect_failed;
  };

  Worker(size_t index, std::vector<std::shared_ptr<ProxyRuntime>> proxies, Hooks hooks);
  ~Worker();

  // Binds every proxy's listener; throws std::system_error naming the address.
  void listen();
  void start_thread();
  // Stops accepting, closes all sessions, stops the loop. Thread-safe.
  void stop();
  // Graceful: stops accepting and closes clients still waiting for a
  // backend; established sessions go on until they end or `grace` passes,
  // then stop() closes the rest. The loop ends when nothing is left.
  // Thread-safe.
  void drain(std::chrono::milliseconds grace);
  void join();

  // Thread-safe: posts to this worker.
  void post_backend_change(size_t proxy, size_t backend, bool eligible);

  boost::asio::io_context& io() { return io_; }
  PipePool& pipes() { return pipes_; }
  size_t index() const { return index_; }
  ProxyRuntime& proxy(size_t i) { return *proxies_[i]; }
  ProxyCounters& counters(size_t proxy) { return *proxies_[proxy]->per_worker[index_]; }
  const Hooks& hooks() const { return hooks_; }
  // The copy path's buffer, shared by every session of this worker: a
  // session holds bytes only while its receiver is slow.
  static constexpr size_t kScratchSize = 16 * 1024;
  char* scratch() { return scratch_.get(); }
  size_t pipes_in_use() const { return pipes_.in_use(); }

  // Called by sessions (this thread only).
  std::optional<size_t> choose_backend(size_t proxy);
  void add_waiting(Session* s);
  void remove_waiting(Session* s);
  void add_active(Session* s);
  void remove_active(Session* s);
  void session_closed(size_t proxy);

 private:
  struct Listener {
    explicit Listener(boost::asio::io_context& io) : acceptor(io), pause(io) {}
    boost::asio::ip::tcp::acceptor acceptor;
    boost::asio::steady_timer pause;
    bool paused = false;
  };

  void accept(size_t proxy);
  void trim_pipes();
  void on_backend_change(size_t proxy, size_t backend, bool eligible);

  size_t index_;
  boost::asio::io_context io_{1};
  std::vector<std::shared_ptr<ProxyRuntime>> proxies_;
  Hooks hooks_;
  PipePool pipes_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<SessionList> waiting_;               // per proxy
  std::vector<std::vector<SessionList>> active_;   // per proxy, per backend
  std::vector<Candidate> scratch_candidates_;
  std::unique_ptr<char[]> scratch_ = std::make_unique<char[]>(kScratchSize);
  boost::asio::steady_timer trim_timer_{io_};
  std::thread thread_;
  bool stopping_ = false;
  bool draining_ = false;
  boost::asio::steady_timer drain_timer_{io_};
  size_t active_sessions() const;
};

}  // namespace proxy
