// Child processes for track scripts and notify hooks, never blocking the
// control thread: posix_spawn (no fork of a multi-threaded daemon's memory),
// the exit observed through a pidfd on the io_context, a timeout that kills
// the child's whole process group (a script's own children included).
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vrrp {

struct ChildExit {
  bool started = false;    // false: posix_spawn failed (error in `detail`)
  bool timed_out = false;  // killed after the timeout
  int status = 0;          // waitpid() status when started
  std::string detail;
  bool success() const;    // started, not timed out, exited 0
};

class Spawner {
 public:
  explicit Spawner(boost::asio::io_context& io);
  ~Spawner();
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  // Runs `argv` (argv[0] a path). `user` non-empty: run as that user (via
  // setpriv, which keeps the PID so the timeout still kills the right
  // process). timeout 0: none. `done` runs on the io_context.
  void run(std::vector<std::string> argv, const std::string& user, std::chrono::milliseconds timeout,
           std::function<void(const ChildExit&)> done);
  // `/bin/sh -c "command"`, with extra positional arguments ("$@") after it,
  // so notify hooks get keepalived's arguments however the command is quoted.
  static std::vector<std::string> shell(const std::string& command, const std::vector<std::string>& args = {});

  // Stops waiting for every child (the io_context can then run dry); children
  // still running are killed when `kill_running` is set.
  void stop(bool kill_running);
  std::size_t running() const;

 private:
  struct Child;
  boost::asio::io_context& io_;
  std::vector<std::shared_ptr<Child>> children_;
  bool stopped_ = false;
  void reap(const std::shared_ptr<Child>& c);
};

}  // namespace vrrp
