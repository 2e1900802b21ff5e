// What a SIGHUP reload changes, decided from two validated configurations.
// Pure: the daemon, the workers and the VRRP service apply the mechanics;
// this says what differs, for the decisions that depend on it and for the
// log line per change an operator reads after `systemctl reload`.
#pragma once

#include <string>
#include <vector>

#include "cfg/config.h"

namespace cfg {

// A backend keeps its run-time state (established sessions, eligibility, its
// check's rise/fall state, counters) across a reload when its name and
// address are unchanged; a new address is a new backend.
bool same_backend(const Backend& running, const Backend& next);

// The listener of a proxy is kept when its address is unchanged; otherwise
// the new address is bound first and the old one closed.
bool same_listener(const Proxy& running, const Proxy& next);

// Whether a VRRP instance must restart to take `next` (interface, VRID,
// version, which addresses on which devices, source address, multicast <->
// unicast); everything else (priority, advert_int, preempt, auth, unicast
// peers, checksum form, a VIP's prefix length or label, the order of the
// VIPs, track, notify, GARP) an engine takes in place.
// The `state` key is a starting hint only: a change to it is ignored.
bool vrrp_needs_restart(const VrrpInstance& running, const VrrpInstance& next);

struct Diff {
  // One line per change, e.g. "proxy postgres: backend catalog03 added",
  // "proxy postgres: check.interval 2000ms -> 1000ms".
  std::vector<std::string> changes;
  // Keys whose change only a restart applies (threads, node, admin.listen,
  // admin.enabled); the running values stay until then.
  std::vector<std::string> restart_only;
  bool empty() const { return changes.empty() && restart_only.empty(); }
};

Diff diff(const Config& running, const Config& next);

}  // namespace cfg
