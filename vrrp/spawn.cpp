#include "vrrp/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <string_view>
#include <spdlog/spdlog.h>

extern char** environ;

namespace vrrp {

namespace asio = boost::asio;

namespace {
std::atomic<unsigned long> g_children_nofile{0};
}  // namespace

void Spawner::set_children_nofile(unsigned long soft) { g_children_nofile = soft; }

bool ChildExit::success() const {
  return started && !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct Spawner::Child {
  Child(asio::io_context& io, pid_t p, int pidfd) : pid(p), sd(io, pidfd), timer(io) {}
  pid_t pid;
  asio::posix::stream_descriptor sd;
  asio::steady_timer timer;
  std::function<void(const ChildExit&)> done;
  uint64_t id = 0;
  bool timed_out = false;
  bool cancelled = false;
  bool finished = false;
};

Spawner::Spawner(asio::io_context& io, bool held) : io_(io), held_(held) {
  // SIGCHLD ignored (SIG_IGN or SA_NOCLDWAIT, inherited across exec from a
  // parent that set it: a shell's `trap '' CHLD`, some supervisors) makes
  // the kernel reap our children itself: waitpid() then has no status to
  // give, and a failing track script would pass. Back to the default, which
  // leaves each child for reap().
  struct sigaction sa {};
  if (::sigaction(SIGCHLD, nullptr, &sa) == 0 && (sa.sa_handler == SIG_IGN || (sa.sa_flags & SA_NOCLDWAIT))) {
    sa = {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGCHLD, &sa, nullptr);
  }
}
Spawner::~Spawner() { stop(); }

void Spawner::release() {
  if (!held_) return;
  held_ = false;
  auto runs = std::move(held_runs_);
  held_runs_.clear();
  for (auto& h : runs) start(std::move(h.argv), h.user, h.timeout, std::move(h.done), h.id);
}

std::vector<std::string> Spawner::shell(const std::string& command, const std::vector<std::string>& args) {
  // "$0" is the command's name in messages from sh; "$@" the hook arguments.
  std::vector<std::string> v{"/bin/sh", "-c", args.empty() ? command : command + " \"$@\"", "vipproxy-script"};
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

uint64_t Spawner::run(std::vector<std::string> argv, const std::string& user, std::chrono::milliseconds timeout,
                      std::function<void(const ChildExit&)> done) {
  if (stopped_) return 0;
  const uint64_t id = ++next_id_;
  if (held_) {
    held_runs_.push_back(Held{std::move(argv), user, timeout, std::move(done), id});
    return id;
  }
  start(std::move(argv), user, timeout, std::move(done), id);
  return id;
}

void Spawner::cancel(uint64_t id) {
  if (id == 0) return;
  for (auto& c : children_)
    if (c->id == id && !c->finished && !c->cancelled) {
      c->cancelled = true;
      ::kill(-c->pid, SIGKILL);  // the pidfd then becomes readable: reap()
      return;
    }
  for (auto it = held_runs_.begin(); it != held_runs_.end(); ++it)
    if (it->id == id) {
      ChildExit r;
      r.cancelled = true;
      r.detail = "cancelled before it started";
      asio::post(io_, [done = std::move(it->done), r] { done(r); });
      held_runs_.erase(it);
      return;
    }
}

void Spawner::start(std::vector<std::string> argv, const std::string& user, std::chrono::milliseconds timeout,
                    std::function<void(const ChildExit&)> done, uint64_t id) {
  ChildExit fail;
  if (!user.empty()) {
    // The child looks the user up (id(1), then setpriv's initgroups), never
    // this thread: getpwnam here ran on the control thread at every run of
    // the script, and a user that only LDAP or sssd knows would hold the
    // adverts and checks for as long as NSS takes (keepalived looks
    // script_user up once, at parse, for the same reason). An unknown user
    // fails the run: exit 126, and id's "no such user" on our stderr.
    std::vector<std::string> pre{
        "/bin/sh", "-c",
        "u=$(/usr/bin/id -u -- \"$1\") && g=$(/usr/bin/id -g -- \"$1\") || exit 126; shift; "
        "exec /usr/bin/setpriv --reuid=\"$u\" --regid=\"$g\" --init-groups -- \"$@\"",
        "vipproxy-script-user", user};
    argv.insert(argv.begin(), pre.begin(), pre.end());
  }
  // posix_spawn cannot set a limit in the child: prlimit does, then execs.
  rlimit nofile{};
  if (const unsigned long soft = g_children_nofile; soft != 0 && ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
                                                     nofile.rlim_cur > soft) {
    std::vector<std::string> pre{"/usr/bin/prlimit", "--nofile=" + std::to_string(soft) + ":", "--"};
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
  // Everything above stderr goes, close-on-exec or not (glibc 2.34+: one
  // close_range(3, ~0U) in the child): listeners, sessions, check sockets,
  // raw and netlink sockets, pipes. A descriptor opened by another thread
  // between its socket() and its fcntl(FD_CLOEXEC) cannot slip through.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  // systemd's notification and watchdog variables are the daemon's, not its
  // children's (sd_notify's unset_environment): a script that runs an
  // sd_notify-aware program would have it report READY or ping the watchdog
  // on our unit's socket, with WATCHDOG_PID naming us.
  std::vector<char*> env;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("NOTIFY_SOCKET=") || kv.starts_with("WATCHDOG_USEC=") || kv.starts_with("WATCHDOG_PID="))
      continue;
    env.push_back(*e);
  }
  env.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, cargv[0], &fa, &attr, cargv.data(), env.data());
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
  c->id = id;
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
  r.cancelled = c->cancelled;
  pid_t got;
  do got = ::waitpid(c->pid, &r.status, 0);
  while (got < 0 && errno == EINTR);  // Asio's signal handlers have no SA_RESTART
  if (got != c->pid) {
    // Reaped by someone else: the status is unknown, never a success.
    r.started = false;
    r.detail = std::string("exit status lost: waitpid: ") + std::strerror(errno);
  }
  c->finished = true;
  c->timer.cancel();
  boost::system::error_code ignored;
  c->sd.close(ignored);
  children_.erase(std::remove(children_.begin(), children_.end(), c), children_.end());
  if (c->done) c->done(r);
}

void Spawner::stop() {
  stopped_ = true;
  held_runs_.clear();
  for (auto& c : children_) {
    c->finished = true;
    ::kill(-c->pid, SIGKILL);
    ::waitpid(c->pid, nullptr, 0);
    c->timer.cancel();
    boost::system::error_code ignored;
    c->sd.close(ignored);
  }
  children_.clear();
}

std::size_t Spawner::running() const { return children_.size(); }

std::vector<int> Spawner::pids() const {
  std::vector<int> out;
  for (const auto& c : children_) out.push_back(c->pid);
  return out;
}

// ---- NotifyQueue ----

struct NotifyQueue::State {
  Spawner& spawner;
  std::string instance;
  std::chrono::milliseconds timeout{20000};
  std::size_t max_running = 1;
  bool stopping = false;
  std::size_t running = 0;
  struct Hook {
    std::string command;
    std::vector<std::string> args;
  };
  std::deque<Hook> waiting;
  Stats stats;
  State(Spawner& s, std::string i) : spawner(s), instance(std::move(i)) {}
};

NotifyQueue::NotifyQueue(Spawner& spawner, std::string instance)
    : st_(std::make_shared<State>(spawner, std::move(instance))) {}

// Hooks already running finish (or time out) on their own; their completion
// holds the state, not the queue.
NotifyQueue::~NotifyQueue() { st_->waiting.clear(); }

void NotifyQueue::set_limits(std::chrono::milliseconds timeout, std::size_t max_running) {
  st_->timeout = timeout;
  st_->max_running = std::max<std::size_t>(1, max_running);
  pump(st_);  // a higher limit lets waiting hooks start now
}

void NotifyQueue::run(const std::string& command, std::vector<std::string> args) {
  auto& st = *st_;
  st.waiting.push_back({command, std::move(args)});
  if (st.waiting.size() > kMaxWaiting) {
    const auto& old = st.waiting.front();
    ++st.stats.dropped;
    spdlog::warn("vrrp {}: notify '{}' ({}) dropped without running: {} hooks already wait behind {} running "
                 "(notify.max_running); a later transition supersedes it",
                 st.instance, old.command, old.args.size() > 2 ? old.args[2] : "", kMaxWaiting, st.running);
    st.waiting.pop_front();
  }
  pump(st_);
}

void NotifyQueue::stopping() {
  auto& st = *st_;
  st.stopping = true;
  if (!st.waiting.empty()) {
    st.stats.dropped += st.waiting.size();
    spdlog::warn("vrrp {}: stopping: {} notify hook(s) still waiting dropped without running", st.instance,
                 st.waiting.size());
    st.waiting.clear();
  }
}

void NotifyQueue::pump(const std::shared_ptr<State>& sp) {
  auto& st = *sp;
  while (!st.waiting.empty() && (st.stopping || st.running < st.max_running)) {
    State::Hook h = std::move(st.waiting.front());
    st.waiting.pop_front();
    ++st.running;
    ++st.stats.started;
    std::string command = h.command;
    st.spawner.run(Spawner::shell(h.command, h.args), "", st.timeout,
                   [sp, command, timeout = st.timeout](const ChildExit& r) {
                     auto& s = *sp;
                     --s.running;
                     if (r.timed_out) {
                       ++s.stats.timed_out;
                       spdlog::warn("vrrp {}: notify '{}' still running after {} ms (notify.timeout): killed "
                                    "with its process group",
                                    s.instance, command, timeout.count());
                     } else if (!r.started) {
                       spdlog::error("vrrp {}: notify '{}' did not start: {}", s.instance, command, r.detail);
                     } else if (!r.success()) {
                       spdlog::warn("vrrp {}: notify '{}' exited with status {}", s.instance, command,
                                    WIFEXITED(r.status) ? WEXITSTATUS(r.status) : 128 + WTERMSIG(r.status));
                     }
                     pump(sp);
                   });
  }
}

std::size_t NotifyQueue::running() const { return st_->running; }
std::size_t NotifyQueue::waiting() const { return st_->waiting.size(); }
const NotifyQueue::Stats& NotifyQueue::stats() const { return st_->stats; }

}  // namespace vrrp
