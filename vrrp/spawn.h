// Child processes for track scripts and notify hooks, never blocking the
// control thread: posix_spawn (no fork of a multi-threaded daemon's memory),
// the exit observed through a pidfd on the io_context, a timeout that kills
// the child's whole process group (a script's own children included).
//
// A child gets descriptors 0 (/dev/null), 1 and 2 and nothing else: every
// descriptor above 2 is closed in the child before exec, whether or not it
// was opened close-on-exec, so a hook that lingers can hold no listener,
// session or check socket of the daemon.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vrrp {

struct ChildExit {
  bool started = false;    // false: posix_spawn failed, or the exit status was lost (`detail`)
  bool timed_out = false;  // killed after the timeout
  bool cancelled = false;  // killed, or never started, because cancel() asked
  int status = 0;          // waitpid() status when started
  std::string detail;
  bool success() const;    // started, not timed out, exited 0
};

class Spawner {
 public:
  // `held`: nothing starts before release() (see there).
  explicit Spawner(boost::asio::io_context& io, bool held = false);
  ~Spawner();
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  // Runs `argv` (argv[0] a path). `user` non-empty: run as that user (via
  // setpriv, which keeps the PID so the timeout still kills the right
  // process). timeout 0: none. `done` runs on the io_context. While held,
  // the run waits (in order) and its timeout starts when it is started.
  // Returns the run's id for cancel() (0: not run, the Spawner is stopped).
  uint64_t run(std::vector<std::string> argv, const std::string& user, std::chrono::milliseconds timeout,
               std::function<void(const ChildExit&)> done);
  // Kills run `id` (its whole process group) if it is running, or drops it
  // if it waits for release(); `done` then gets `cancelled`. A track script
  // whose result nobody will read any more (its instance stopped or
  // reconfigured) is not left to run to its timeout.
  void cancel(uint64_t id);
  // `/bin/sh -c "command"`, with extra positional arguments ("$@") after it,
  // so notify hooks get keepalived's arguments however the command is quoted.
  static std::vector<std::string> shell(const std::string& command, const std::vector<std::string>& args = {});

  // The soft RLIMIT_NOFILE every child gets: the one the daemon was started
  // with, before it lifted its own to the hard limit (daemon/main.cpp).
  // systemd.exec(5) asks for 1024 in what a service starts: select() fails
  // past descriptor 1023, and some programs close every descriptor up to the
  // limit. Children then start through prlimit(1) (it execs the command: the
  // PID stays). 0 (the default): children keep the daemon's limit.
  static void set_children_nofile(unsigned long soft);

  // The daemon opens its VRRP sockets before dropping its capabilities and
  // runs no script before the drop (a child exec'd by root before it would
  // get the full bounding set back): the first track scripts and notify
  // hooks wait for release(), which the daemon calls right after the drop.
  void release();
  bool held() const { return held_; }

  // Kills every child still running (its whole process group) and reaps it;
  // nothing starts afterwards. Without this, children simply run to their
  // exit or timeout while the io_context waits for them.
  void stop();
  std::size_t running() const;
  // Process IDs of the running children (= their process group IDs).
  std::vector<int> pids() const;

 private:
  struct Child;
  struct Held {
    std::vector<std::string> argv;
    std::string user;
    std::chrono::milliseconds timeout;
    std::function<void(const ChildExit&)> done;
    uint64_t id = 0;
  };
  boost::asio::io_context& io_;
  uint64_t next_id_ = 0;
  std::vector<std::shared_ptr<Child>> children_;
  std::vector<Held> held_runs_;
  bool held_ = false;
  bool stopped_ = false;
  void start(std::vector<std::string> argv, const std::string& user, std::chrono::milliseconds timeout,
             std::function<void(const ChildExit&)> done, uint64_t id);
  void reap(const std::shared_ptr<Child>& c);
};

// The notify hooks of one VRRP instance over the shared Spawner: each with
// its timeout, at most `max_running` at once. The others wait, in the order
// of the transitions that asked for them (so with the default of 1 a
// MASTER -> BACKUP -> MASTER flap runs master, backup, master hooks in that
// order and the last one to finish is the current state's). At most
// kMaxWaiting wait: past that the oldest waiting hook is dropped, never
// started (a newer transition has superseded it), logged and counted. A
// running hook is never cut short except by its timeout.
//
// stopping(): the instance is stopping; hooks still waiting are dropped and
// every hook asked for from now on (the "stop" hook) starts at once, whatever
// max_running says. Hooks already running keep their deadline.
class NotifyQueue {
 public:
  static constexpr std::size_t kMaxWaiting = 32;
  struct Stats {
    uint64_t started = 0, timed_out = 0, dropped = 0;
  };

  NotifyQueue(Spawner& spawner, std::string instance);
  ~NotifyQueue();
  NotifyQueue(const NotifyQueue&) = delete;
  NotifyQueue& operator=(const NotifyQueue&) = delete;

  void set_limits(std::chrono::milliseconds timeout, std::size_t max_running);
  // `command` run as Spawner::shell(command, args); `label` names it in logs.
  void run(const std::string& command, std::vector<std::string> args);
  void stopping();

  std::size_t running() const;
  std::size_t waiting() const;
  const Stats& stats() const;

 private:
  struct State;
  std::shared_ptr<State> st_;
  static void pump(const std::shared_ptr<State>& st);
};

}  // namespace vrrp
