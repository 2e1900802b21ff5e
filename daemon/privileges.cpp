#include "daemon/privileges.h"

#include <dirent.h>
#include <linux/capability.h>
#include <linux/prctl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace daemon_::privileges {

std::vector<Need> needed(const cfg::Config& config, bool kernel_path) {
  std::vector<Need> out;
  auto add = [&](unsigned cap, std::string why) {
    for (const auto& n : out)
      if (n.cap == cap) return;  // the first reason is enough for the log
    out.push_back({cap, std::move(why)});
  };

  // Ports below 1024: a listener bound at start keeps its socket, but a
  // reload that adds or moves a listener binds again.
  for (const auto& p : config.proxies)
    if (p.listen.port < 1024)
      add(kCapNetBindService, "proxy " + p.name + " listens on port " + std::to_string(p.listen.port));
  if (config.admin.enabled && config.admin.listen.port < 1024)
    add(kCapNetBindService, "admin endpoint on port " + std::to_string(config.admin.listen.port));

  if (!config.vrrp.empty()) {
    // Entering MASTER adds the VIPs and leaving it removes them, through
    // netlink (RTM_NEWADDR/RTM_DELADDR), at any time while running.
    add(kCapNetAdmin, "VIPs of " + std::to_string(config.vrrp.size()) + " VRRP instance(s) via netlink");
    // Today every raw socket (IPPROTO_VRRP per instance, AF_PACKET for GARP
    // and NA) is opened once at start (vrrp::Engine::start, NetlinkKernel)
    // and sending on an open socket needs no capability. CAP_NET_RAW is kept
    // anyway so that a reload adding or restarting an instance can open its
    // socket without a restart; the daemon already holds raw sockets, so the
    // capability adds little an attacker would not have.
    add(kCapNetRaw, "raw VRRP sockets of instances a reload (re)starts");
  }

  // A take-back from the kernel data path enlarges the session's send
  // buffers past net.core.wmem_max (SO_SNDBUFFORCE), or the kernel's
  // backlog for a slow reader cannot empty and the window stays open
  // (proxy/session_kernel.cpp, make_room_for_redirected). Not when the
  // kernel path is not loaded: such a proxy's sessions use splice.
  for (const auto& p : config.proxies)
    if (kernel_path && p.data_path == cfg::DataPath::kernel)
      add(kCapNetAdmin, "proxy " + p.name + " data_path kernel: send buffers of sessions taken back (SO_SNDBUFFORCE)");

  // Track scripts with `user:` run through setpriv (vrrp/spawn.cpp), which
  // inherits from the daemon: as root its capabilities come from the
  // bounding set, so SETUID/SETGID must stay there, and a timed-out script
  // (now another user) is killed by process group, which needs CAP_KILL.
  // Without any `user:` the scripts run as the daemon's own user and none of
  // the three is needed.
  for (const auto& v : config.vrrp)
    for (const auto& s : v.track.scripts)
      if (!s.user.empty()) {
        std::string who = " for vrrp " + v.name + " track script " + s.name + ", user " + s.user;
        add(kCapKill, "kill on timeout" + who);
        add(kCapSetgid, "setpriv --regid" + who);
        add(kCapSetuid, "setpriv --reuid" + who);
      }

  std::sort(out.begin(), out.end(), [](const Need& a, const Need& b) { return a.cap < b.cap; });
  return out;
}

uint64_t mask_of(const std::vector<Need>& needs) {
  uint64_t m = 0;
  for (const auto& n : needs) m |= bit(n.cap);
  return m;
}

std::string name(unsigned cap) {
  static const char* const kNames[] = {
      "cap_chown",         "cap_dac_override", "cap_dac_read_search", "cap_fowner",         "cap_fsetid",
      "cap_kill",          "cap_setgid",       "cap_setuid",          "cap_setpcap",        "cap_linux_immutable",
      "cap_net_bind_service", "cap_net_broadcast", "cap_net_admin",   "cap_net_raw",        "cap_ipc_lock",
      "cap_ipc_owner",     "cap_sys_module",   "cap_sys_rawio",       "cap_sys_chroot",     "cap_sys_ptrace",
      "cap_sys_pacct",     "cap_sys_admin",    "cap_sys_boot",        "cap_sys_nice",       "cap_sys_resource",
      "cap_sys_time",      "cap_sys_tty_config", "cap_mknod",         "cap_lease",          "cap_audit_write",
      "cap_audit_control", "cap_setfcap",      "cap_mac_override",    "cap_mac_admin",      "cap_syslog",
      "cap_wake_alarm",    "cap_block_suspend", "cap_audit_read",     "cap_perfmon",        "cap_bpf",
      "cap_checkpoint_restore"};
  if (cap < std::size(kNames)) return kNames[cap];
  return "cap_" + std::to_string(cap);
}

std::string names(uint64_t mask) {
  std::string out;
  for (unsigned c = 0; c < 64; ++c)
    if (mask & bit(c)) out += (out.empty() ? "" : ", ") + name(c);
  return out.empty() ? "none" : out;
}

Plan plan(uint64_t needed, uint64_t permitted, uint64_t effective) {
  Plan p;
  // capset() can only lower the permitted set: what was never held cannot
  // be kept (e.g. a non-root run without ambient capabilities).
  p.keep = needed & permitted;
  p.missing = needed & ~permitted;
  p.drop_bounding = (effective & bit(kCapSetpcap)) != 0;
  return p;
}

uint64_t parse_mask(const std::string& hex) {
  size_t i = 0;
  while (i < hex.size() && (hex[i] == ' ' || hex[i] == '\t')) ++i;
  size_t used = 0;
  uint64_t v = 0;
  try {
    v = std::stoull(hex.substr(i), &used, 16);
  } catch (const std::exception&) {
    throw std::runtime_error("privileges: not a capability mask: '" + hex + "'");
  }
  if (used == 0) throw std::runtime_error("privileges: not a capability mask: '" + hex + "'");
  return v;
}

// ---- I/O: every thread of the process ----
//
// Capabilities belong to threads, not to the process: capset() and
// PR_CAPBSET_DROP change only the calling thread, and the worker threads
// (which face the network) exist already when we get here. Each other
// thread is therefore asked through a signal to apply the same sets to
// itself. That is what libcap's libpsx does, but libpsx 2.66 needs the whole
// program linked with -Wl,-wrap,pthread_create (sanitizer builds included);
// a signal of our own takes a few lines and no new dependency. The handler
// uses raw syscalls only (async-signal-safe) and reads a target written
// before the first signal is sent.

namespace {

struct Target {
  uint64_t keep = 0;
  bool drop_bounding = false;
};
Target g_target;
// The threads that have applied the target, by TID (lock-free for the handler).
constexpr size_t kMaxThreads = 4096;
std::atomic<pid_t> g_done[kMaxThreads];
std::atomic<size_t> g_done_count{0};
std::atomic<int> g_error{0};

int apply_here() noexcept {
  // Ambient first: clearing needs no privilege; a kernel without ambient
  // capabilities (before 4.3) answers EINVAL.
  if (::syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return errno;
  // The bounding set limits what an execve() can grant. It matters most
  // when the daemon runs as root: a child exec'd as uid 0 (a notify hook, a
  // track script without `user:`) gets permitted = inheritable | bounding,
  // i.e. every capability again unless the bounding set shrinks too.
  // Dropping from it needs CAP_SETPCAP, so it happens before capset()
  // below gives that up. Numbers above the kernel's last capability
  // answer EINVAL.
  if (g_target.drop_bounding)
    for (unsigned c = 0; c < 64; ++c)
      if (!(g_target.keep & bit(c)) && ::syscall(SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
        return errno;
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  for (int i = 0; i < 2; ++i) {
    auto part = static_cast<uint32_t>(g_target.keep >> (32 * i));
    data[i].effective = part;
    data[i].permitted = part;
    data[i].inheritable = 0;
  }
  if (::syscall(SYS_capset, &hdr, data) < 0) return errno;
  return 0;
}

void on_signal(int) {
  int saved = errno;
  if (int e = apply_here()) {
    int none = 0;
    g_error.compare_exchange_strong(none, e);
  }
  size_t i = g_done_count.fetch_add(1);
  if (i < kMaxThreads) g_done[i].store(static_cast<pid_t>(::syscall(SYS_gettid)));
  errno = saved;
}

struct Sets {
  uint64_t effective = 0, permitted = 0;
};

Sets capget_self() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) < 0)
    throw std::system_error(errno, std::generic_category(), "privileges: capget");
  Sets s;
  for (int i = 0; i < 2; ++i) {
    s.effective |= uint64_t{data[i].effective} << (32 * i);
    s.permitted |= uint64_t{data[i].permitted} << (32 * i);
  }
  return s;
}

std::vector<pid_t> threads() {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc/self/task");
  if (!d) throw std::system_error(errno, std::generic_category(), "privileges: /proc/self/task");
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') out.push_back(static_cast<pid_t>(std::stol(e->d_name)));
  ::closedir(d);
  return out;
}

// The "Name:" ... "CapAmb:" fields of /proc/self/task/TID/status; empty
// when the thread has gone.
struct ThreadStatus {
  std::string name;
  uint64_t sig_blocked = 0, inh = 0, prm = 0, eff = 0, bnd = 0, amb = 0;
  bool ok = false;
};

ThreadStatus thread_status(pid_t tid) {
  ThreadStatus st;
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon), value = line.substr(colon + 1);
    if (key == "Name") {
      auto start = value.find_first_not_of(" \t");
      st.name = start == std::string::npos ? "" : value.substr(start);
    } else if (key == "SigBlk") st.sig_blocked = parse_mask(value);
    else if (key == "CapInh") st.inh = parse_mask(value);
    else if (key == "CapPrm") st.prm = parse_mask(value);
    else if (key == "CapEff") st.eff = parse_mask(value);
    else if (key == "CapBnd") st.bnd = parse_mask(value);
    else if (key == "CapAmb") {
      st.amb = parse_mask(value);
      st.ok = true;
    }
  }
  return st;
}

}  // namespace

uint64_t newly_missing(const cfg::Config& running, const cfg::Config& next, uint64_t permitted, bool kernel_path) {
  const uint64_t before = mask_of(needed(running, kernel_path)), after = mask_of(needed(next, kernel_path));
  return after & ~before & ~permitted;
}

uint64_t permitted_now() { return capget_self().permitted; }

void drop_after_start(const cfg::Config& config, bool kernel_path) {
  const auto needs = needed(config, kernel_path);
  const Sets before = capget_self();
  const Plan p = plan(mask_of(needs), before.permitted, before.effective);
  g_target = {p.keep, p.drop_bounding};
  g_done_count = 0;
  g_error = 0;

  // A real-time signal nobody else in the daemon uses. The handler stays
  // installed afterwards: a late delivery re-applies the same sets (or
  // fails harmlessly), whereas the default action would kill the process.
  const int sig = SIGRTMIN + 5;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(sig, &sa, nullptr) < 0) throw std::system_error(errno, std::generic_category(), "privileges: sigaction");

  const pid_t self = ::gettid(), pid = ::getpid();
  std::vector<pid_t> pending;
  for (pid_t tid : threads())
    if (tid != self && ::syscall(SYS_tgkill, pid, tid, sig) == 0) pending.push_back(tid);
  // Wait for every thread to answer. A thread blocks every signal while
  // glibc starts it (microseconds); one that still blocks ours after a
  // while never will: a sanitizer's background thread (TSan) does that and
  // runs no daemon code. It is left as it is and named in a warning; should
  // it ever unblock the signal, the pending one still drops its set.
  const auto start = std::chrono::steady_clock::now();
  std::vector<pid_t> skipped;
  std::string skipped_names;
  for (;;) {
    size_t n = std::min(g_done_count.load(), kMaxThreads);
    for (size_t i = 0; i < n; ++i) {
      pid_t t = g_done[i].load();
      pending.erase(std::remove(pending.begin(), pending.end(), t), pending.end());
    }
    const auto waited = std::chrono::steady_clock::now() - start;
    if (!pending.empty() && waited > std::chrono::milliseconds(200)) {
      for (auto it = pending.begin(); it != pending.end();) {
        ThreadStatus st = thread_status(*it);
        bool gone = !st.ok, blocks = st.sig_blocked & bit(static_cast<unsigned>(sig - 1));
        if (blocks) {
          skipped.push_back(*it);
          skipped_names += (skipped_names.empty() ? "" : ", ") + st.name + " (" + std::to_string(*it) + ")";
        }
        it = gone || blocks ? pending.erase(it) : it + 1;
      }
    }
    if (pending.empty()) break;
    if (waited > std::chrono::seconds(5))
      throw std::runtime_error("privileges: " + std::to_string(pending.size()) +
                               " thread(s) did not drop their capabilities within 5 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (int e = apply_here()) throw std::system_error(e, std::generic_category(), "privileges: dropping capabilities");
  if (int e = g_error.load())
    throw std::system_error(e, std::generic_category(), "privileges: a worker thread could not drop its capabilities");

  // Check with the kernel's own account of every thread, not with ours.
  size_t checked = 0;
  for (pid_t tid : threads()) {
    if (std::find(skipped.begin(), skipped.end(), tid) != skipped.end()) continue;
    ThreadStatus st = thread_status(tid);
    if (!st.ok) continue;
    ++checked;
    if (st.eff != p.keep || st.prm != p.keep || st.inh != 0 || st.amb != 0 ||
        (p.drop_bounding && st.bnd != p.keep))
      throw std::runtime_error("privileges: thread " + st.name + " (" + std::to_string(tid) +
                               ") still holds effective " + names(st.eff) + ", permitted " + names(st.prm) +
                               ", inheritable " + names(st.inh) + ", ambient " + names(st.amb));
  }

  std::string kept;
  for (const auto& n : needs)
    if (p.keep & bit(n.cap)) kept += (kept.empty() ? "" : ", ") + name(n.cap) + " (" + n.why + ")";
  // Without CAP_SETPCAP (the packaged unit runs as an unprivileged user with
  // ambient capabilities only) the bounding set cannot shrink; the unit's
  // CapabilityBoundingSet= already limits it, and for a non-root user it
  // only matters to file-capability binaries, which NoNewPrivileges= stops.
  spdlog::info("privileges: keeping {} in {} thread(s); every other capability dropped from the effective, "
               "permitted, inheritable and ambient sets{}",
               kept.empty() ? "no capabilities" : kept, checked,
               p.drop_bounding ? " and from the bounding set" : " (bounding set unchanged: no CAP_SETPCAP)");
  if (p.missing)
    spdlog::warn("privileges: {} needed but not held ({})", names(p.missing),
                 [&] {
                   std::string w;
                   for (const auto& n : needs)
                     if (p.missing & bit(n.cap)) w += (w.empty() ? "" : "; ") + n.why;
                   return w;
                 }());
  if (!skipped.empty())
    spdlog::warn("privileges: thread(s) {} block signals and keep their capabilities", skipped_names);
}

}  // namespace daemon_::privileges
