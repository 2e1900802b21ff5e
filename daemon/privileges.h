// Capability dropping once the daemon has started: after the listeners are
// bound, the admin endpoint listens and the VRRP sockets are open, keep only
// the capabilities the running daemon still uses and drop every other one
// from the effective, permitted, inheritable and ambient sets (and from the
// bounding set when CAP_SETPCAP allows it), in every thread.
//
// The pure part decides from the validated configuration what is needed and
// why; the I/O part (drop_after_start) only applies that decision.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cfg/config.h"

namespace daemon_::privileges {

// Linux capability numbers (<linux/capability.h>), repeated here so the pure
// part and its tests need no kernel header.
inline constexpr unsigned kCapKill = 5;
inline constexpr unsigned kCapSetgid = 6;
inline constexpr unsigned kCapSetuid = 7;
inline constexpr unsigned kCapSetpcap = 8;
inline constexpr unsigned kCapNetBindService = 10;
inline constexpr unsigned kCapNetAdmin = 12;
inline constexpr unsigned kCapNetRaw = 13;
inline constexpr unsigned kCapSysAdmin = 21;
inline constexpr unsigned kCapPerfmon = 38;
inline constexpr unsigned kCapBpf = 39;

constexpr uint64_t bit(unsigned cap) { return uint64_t{1} << cap; }

struct Need {
  unsigned cap = 0;
  std::string why;  // for the log line and the tests
  bool operator==(const Need&) const = default;
};

// What the running daemon still needs, one entry per capability, in
// capability-number order. Empty: nothing (a proxy on ports >= 1024).
// `kernel_path`: the kernel data path is loaded (or, before start, may be);
// a proxy with data_path kernel whose sessions cannot use it (they use
// splice) needs nothing for it.
std::vector<Need> needed(const cfg::Config& config, bool kernel_path = true);
uint64_t mask_of(const std::vector<Need>& needs);

// "cap_net_admin, cap_net_raw"; "none" for 0.
std::string names(uint64_t mask);
std::string name(unsigned cap);

struct Plan {
  uint64_t keep = 0;          // effective and permitted after the drop
  uint64_t missing = 0;       // needed but not held (worth a warning)
  bool drop_bounding = false; // CAP_SETPCAP is effective: bounding set := keep
};
// `needed` from mask_of(needed(...)); `permitted`/`effective` as capget()
// reports them for the calling thread.
Plan plan(uint64_t needed, uint64_t permitted, uint64_t effective);

// SIGHUP: capabilities the new configuration needs that the running one did
// not and this process no longer holds (dropped after start). Pure; a
// reload that needs any is refused whole ("restart to apply").
uint64_t newly_missing(const cfg::Config& running, const cfg::Config& next, uint64_t permitted,
                       bool kernel_path = true);
// The calling thread's permitted set (capget).
uint64_t permitted_now();

// "0000003fffffffff" (the CapEff: field of /proc/PID/status) -> mask.
uint64_t parse_mask(const std::string& hex);

// Applies plan(needed(config), ...) to every thread of the process and logs
// one info line listing what was kept. Throws std::runtime_error when a
// thread could not be brought down to the plan.
void drop_after_start(const cfg::Config& config, bool kernel_path = true);

}  // namespace daemon_::privileges
