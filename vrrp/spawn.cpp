#include "vrrp/spawn.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>

extern char** environ;

namespace vrrp {

namespace asio = boost::asio;

bool ChildExit::success() const {
  return started && !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct Spawner::Child {
  Child(asio::io_context& io, pid_t p, int pidfd) : pid(p), sd(io, pidfd), timer(io) {}
  pid_t pid;
  asio::posix::stream_descriptor sd;
  asio::steady_timer timer;
  std::function<void(const ChildExit&)> done;
  bool timed_out = false;
  bool finished = false;
};

Spawner::Spawner(asio::io_context& io) : io_(io) {}
Spawner::~Spawner() { stop(true); }

std::vector<std::string> Spawner::shell(const std::string& command, const std::vector<std::string>& args) {
  // "$0" is the command's name in messages from sh; "$@" the hook arguments.
  std::vector<std::string> v{"/bin/sh", "-c", args.empty() ? command : command + " \"$@\"", "vipproxy-script"};
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

void Spawner::run(std::vector<std::string> argv, const std::string& user, std::chrono::milliseconds timeout,
                  std::function<void(const ChildExit&)> done) {
  ChildExit fail;
  if (stopped_) return;
  if (!user.empty()) {
    const passwd* pw = ::getpwnam(user.c_str());
    if (!pw) {
      fail.detail = "no such user '" + user + "'";
      asio::post(io_, [done, fail] { done(fail); });
      return;
    }
    std::vector<std::string> pre{"/usr/bin/setpriv", "--reuid=" + std::to_string(pw->pw_uid),
                                 "--regid=" + std::to_string(pw->pw_gid), "--init-groups", "--"};
    argv.insert(argv.begin(), pre.begin(), pre.end());
  }
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group, so a timeout kills the script's children as well.
  // Signals the daemon ignores (SIGPIPE) or blocks would otherwise be
  // inherited across exec and confuse ordinary shell scripts.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, cargv[0], &fa, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    fail.detail = std::string("cannot start ") + cargv[0] + ": " + std::strerror(rc);
    asio::post(io_, [done, fail] { done(fail); });
    return;
  }
  // syscall(): glibc 2.36's <sys/pidfd.h> lacks extern "C" for C++.
  int pfd = int(::syscall(SYS_pidfd_open, pid, 0));
  if (pfd < 0) {
    // Without a pidfd we cannot wait asynchronously; do not leave a zombie
    // behind a blocked control thread: kill it and report.
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    fail.detail = std::string("pidfd_open: ") + std::strerror(errno);
    asio::post(io_, [done, fail] { done(fail); });
    return;
  }
  auto c = std::make_shared<Child>(io_, pid, pfd);
  c->done = std::move(done);
  children_.push_back(c);
  c->sd.async_wait(asio::posix::stream_descriptor::wait_read,
                   [this, c](const boost::system::error_code& ec) {
                     if (ec || c->finished) return;
                     reap(c);
                   });
  if (timeout.count() > 0) {
    c->timer.expires_after(timeout);
    c->timer.async_wait([c](const boost::system::error_code& ec) {
      if (ec || c->finished) return;
      c->timed_out = true;
      ::kill(-c->pid, SIGKILL);  // the pidfd then becomes readable
    });
  }
}

void Spawner::reap(const std::shared_ptr<Child>& c) {
  ChildExit r;
  r.started = true;
  r.timed_out = c->timed_out;
  ::waitpid(c->pid, &r.status, 0);
  c->finished = true;
  c->timer.cancel();
  boost::system::error_code ignored;
  c->sd.close(ignored);
  children_.erase(std::remove(children_.begin(), children_.end(), c), children_.end());
  if (c->done) c->done(r);
}

void Spawner::stop(bool kill_running) {
  stopped_ = true;
  for (auto& c : children_) {
    c->finished = true;
    if (kill_running) {
      ::kill(-c->pid, SIGKILL);
      ::waitpid(c->pid, nullptr, 0);
    }
    c->timer.cancel();
    boost::system::error_code ignored;
    c->sd.close(ignored);
  }
  children_.clear();
}

std::size_t Spawner::running() const { return children_.size(); }

}  // namespace vrrp
