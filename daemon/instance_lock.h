// One daemon per VRRP instance on a host (a network namespace): a lock per
// instance, held for as long as the daemon runs it.
//
// Why: a second vipproxy started by mistake beside the running one (by hand
// on the unit's file, a second unit) ran a second VRRP router with the same
// VRID, interface and primary address. Its instance found the running
// MASTER's VIP carrying vipproxy's mark (IFA_PROTO 112, vrrp/vips.h) and
// took it for a leftover of a killed run; the two then removed and re-added
// the VIP hundreds of times a second (tests/integration/
// test_second_instance_netns.py) until both were MASTER. keepalived refuses
// a second instance ("daemon is already running", its pid file); so do we,
// before any instance is prepared.
//
// The lock is a Unix socket bound to an abstract name (unix(7)): scoped to
// the network namespace, as the VRID on a link is (two nodes of a lab in
// two namespaces are two hosts), needs no writable directory, and the
// kernel releases it when the process ends, however it ends (SIGKILL, the
// OOM killer): no stale lock file to remove before a restart.
#pragma once

#include <map>
#include <string>

#include "cfg/config.h"

namespace daemon_::instance_lock {

// The abstract name (without its leading NUL) of `v`'s lock: one per
// interface, address family and VRID (RFC 5798 §7.3: a VRID is unique per
// link and family).
std::string vrrp_name(const cfg::VrrpInstance& v);

// Locks held by this process, by name.
class Locks {
 public:
  Locks() = default;
  ~Locks();
  Locks(const Locks&) = delete;
  Locks& operator=(const Locks&) = delete;
  Locks(Locks&& o) noexcept : held_(std::move(o.held_)) { o.held_.clear(); }
  Locks& operator=(Locks&&) = delete;

  bool holds(const std::string& name) const { return held_.count(name) > 0; }
  // Takes `name`: "" when taken (or already held), else why not (another
  // process holds it, or the socket could not be made).
  std::string take(const std::string& name);
  // Moves every lock of `o` into this one.
  void adopt(Locks&& o);
  // Releases every lock whose name is not in `keep`.
  void keep_only(const std::map<std::string, std::string>& keep);

 private:
  std::map<std::string, int> held_;  // name -> bound socket
};

// For every instance of `vrrp` whose lock `held` does not hold: takes it
// into `taken`, or throws std::runtime_error naming the instance when another
// process holds it. Returns name -> instance for every instance of `vrrp`.
std::map<std::string, std::string> take_vrrp(const std::vector<cfg::VrrpInstance>& vrrp, const Locks& held,
                                             Locks& taken);

}  // namespace daemon_::instance_lock
