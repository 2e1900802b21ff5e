// A worker thread: its own event loop (proxy/loop.h), its own listening
// socket per proxy (SO_REUSEPORT, so the kernel spreads connections over
// workers without a shared accept lock), and the sessions it accepted.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "proxy/loop.h"
#include "proxy/pipe_pool.h"
#include "proxy/pump.h"
#include "proxy/runtime.h"

namespace proxy {

class Session;
union PeerAddress;
class KernelPath;

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

// A proxy's listening socket on one worker. Bound on any thread (a reload
// binds everything before changing anything); watched by one worker's loop.
struct Listener final : Loop::Watcher {
  Listener() = default;
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  void on_io(uint32_t) override {
    if (ready) ready();
  }
  // Stops watching and closes the socket (on the loop's thread).
  void shut();

  int fd = -1;
  cfg::Endpoint bound;   // the address bound, numeric (a listen host name as looked up)
  Loop* loop = nullptr;  // set once watched
  std::function<void()> ready;
  Loop::Timer pause;  // maxconn, accept errors, and batches of accepts
  bool paused = false;
};

// One proxy on one worker: its listening socket, the clients waiting for a
// backend, and the generation in force. Sessions hold their slot, so a slot
// removed by a reload lives on (without a listener) until its last session
// ends. Touched only by its worker's thread.
struct ProxySlot : std::enable_shared_from_this<ProxySlot> {
  std::shared_ptr<ProxyRuntime> rt;
  std::unique_ptr<Listener> listener;  // null once a reload removed the proxy
  SessionList waiting;
};

class Worker {
 public:
  struct Hooks {
    // Called on this worker's thread when connecting to a backend failed;
    // the daemon posts a check_soon to the control thread (evidence beats
    // waiting for the next interval).
    // `error`: the connect's errno (ETIMEDOUT for connect_timeout).
    std::function<void(std::weak_ptr<BackendRuntime> backend, int error)> connect_failed;
    // Called on this worker's thread once its loop has ended (drained or
    // stopped): the daemon stops the checks when every worker has.
    std::function<void()> ended;
  };

  // A reload, as the control thread prepared it: the new generation of every
  // proxy, and for each one either a listener bound in advance (new proxy or
  // new listen address) or null (keep the running listener).
  struct Reload {
    std::vector<std::shared_ptr<ProxyRuntime>> proxies;
    std::vector<std::unique_ptr<Listener>> listeners;
    // Sessions of removed proxies and backends may go on this long.
    std::chrono::milliseconds grace{0};
  };

  Worker(size_t index, Hooks hooks);
  ~Worker();

  // Binds every proxy's listener; throws std::system_error naming the address.
  // Returns the addresses bound, in the order of `proxies`.
  std::vector<cfg::Endpoint> listen(const std::vector<std::shared_ptr<ProxyRuntime>>& proxies);
  // Binds one listener without starting to accept. Any thread; throws
  // std::system_error naming the proxy and address.
  static std::unique_ptr<Listener> bind_listener(const cfg::Proxy& proxy);
  // "" or why `proxy`'s listen address is not ours to take: another socket
  // listens there. SO_REUSEPORT (bind_listener) would have joined its group
  // when it belongs to our user (a second vipproxy on the same file) and the
  // kernel would have split the clients between the two daemons; a bind
  // without it is refused instead. Asked at start, before anything is bound.
  static std::string listen_taken(const cfg::Proxy& proxy);
  void start_thread();
  // Stops accepting, closes all sessions, stops the loop. Thread-safe.
  void stop();
  // Graceful: stops accepting and closes clients still waiting for a
  // backend; established sessions go on until they end or `grace` passes,
  // then stop() closes the rest. The loop ends when nothing is left.
  // Thread-safe.
  void drain(std::chrono::milliseconds grace);
  void join();

  // Thread-safe: posts to this worker. Established sessions of kept proxies
  // and backends are untouched; waiting clients move to the new generation.
  void post_reload(std::shared_ptr<Reload> reload);
  // Thread-safe: posts to this worker. `rt` is the generation in force.
  void post_backend_change(std::shared_ptr<ProxyRuntime> rt, size_t backend, bool eligible);
  // Thread-safe: the loop stores `seq` as heartbeat() at its next turn (the
  // systemd watchdog's proof that it turns: daemon/worker_watch.h). A
  // posted function, so nothing is added to the loop's per-event path.
  void post_heartbeat(uint64_t seq);
  // Thread-safe: the last heartbeat this worker's loop ran.
  uint64_t heartbeat() const { return heartbeat_.load(std::memory_order_relaxed); }

  // The kernel data path of this worker (null: not available). Only before
  // start_thread() (std::logic_error after): the thread reads it unlocked.
  void set_kernel(std::unique_ptr<KernelPath> k);
  KernelPath* kernel() const { return kernel_.get(); }
  // Which session a socket cookie in the kernel path belongs to (null: none).
  void kernel_session(uint64_t cookie, Session* s);

  Loop& loop() { return loop_; }
  PipePool& pipes() { return pipes_; }
  size_t index() const { return index_; }
  const Hooks& hooks() const { return hooks_; }
  // The copy path's buffer, shared by every session of this worker: a
  // session holds bytes only while its receiver is slow.
  static constexpr size_t kScratchSize = 16 * 1024;
  const PumpContext& pump_context() const { return pump_ctx_; }
  size_t pipes_in_use() const { return pipes_.in_use(); }

  // Called by sessions (this thread only).
  std::optional<size_t> choose_backend(ProxySlot& slot);
  void add_waiting(Session* s);
  void remove_waiting(Session* s);
  void add_connecting(Session* s) { connecting_.push(s); }
  void remove_connecting(Session* s) { connecting_.erase(s); }
  void add_active(Session* s);
  void remove_active(Session* s);
  // The session is closed and out of every list: freed after this batch.
  void session_closed(Session* s);

 private:
  void watch(const std::shared_ptr<ProxySlot>& slot);
  void accept(ProxySlot& slot);
  // A session for the client on `fd`, in `slot`.
  void start_session(ProxySlot& slot, int fd, const PeerAddress& peer);
  // Accepts every client queued on `from` (a listener a reload closes) into
  // `to`, so closing it resets none of them.
  void take_queued(Listener& from, ProxySlot& to);
  void pause_accepting(Listener& l, std::chrono::milliseconds d);
  void resume_accepting(ProxySlot& slot);
  void trim_pipes();
  void on_backend_change(const ProxyRuntime& rt, size_t backend, bool eligible);
  void apply_reload(Reload& reload);
  // Closes sessions whose proxy or backend a reload removed.
  void mark_orphans(Loop::Clock::time_point deadline);
  void close_orphans();
  ProxySlot* find_slot(const std::string& proxy_name);
  size_t active_sessions() const;
  void do_stop();
  void close_all();

  // The ring buffer of the kernel path's reports, watched by the loop.
  struct KernelEvents final : Loop::Watcher {
    Worker* worker = nullptr;
    void on_io(uint32_t) override { worker->on_kernel_events(); }
  };
  void on_kernel_events();

  size_t index_;
  Loop loop_;
  std::unique_ptr<KernelPath> kernel_;
  KernelEvents kernel_events_;
  std::unordered_map<uint64_t, Session*> kernel_sessions_;
  uint64_t kernel_reports_lost_ = 0;  // KernelPath::reports_lost() as last seen
  Loop::Clock::time_point kernel_lost_logged_{};
  Hooks hooks_;
  PipePool pipes_;
  std::vector<std::shared_ptr<ProxySlot>> slots_;  // proxies in force, config order
  std::unordered_map<const BackendRuntime*, SessionList> active_;  // established, per backend
  SessionList connecting_;
  size_t live_ = 0;  // sessions not yet freed
  std::vector<Candidate> scratch_candidates_;
  std::unique_ptr<char[]> scratch_ = std::make_unique<char[]>(kScratchSize);
  PumpContext pump_ctx_;
  Loop::Timer trim_timer_;
  Loop::Timer orphan_timer_;
  Loop::Timer drain_timer_;
  std::thread thread_;
  std::atomic<uint64_t> heartbeat_{0};
  bool stopping_ = false;
  bool draining_ = false;
};

}  // namespace proxy
