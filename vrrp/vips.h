// Virtual addresses as desired vs. actual state, pure. The engine wants its
// VIPs present while MASTER and absent otherwise; what the kernel actually
// has is known only from its answers (the netlink ACK of an add or delete,
// or an RTM_GETADDR dump when an event or the periodic check asks). A slot
// is never marked present or absent before the kernel said so, a failed
// operation is retried with back-off, and a master that cannot install a
// VIP for `give_up_after` (three advert intervals) gives the mastership
// away (engine: priority 0, then FAULT until the address can be added).
// No clock, no kernel: the engine passes the time and executes the ops.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vrrp/address.h"
#include "vrrp/fsm.h"

namespace vrrp::vips {

using Duration = fsm::Duration;
using TimePoint = fsm::TimePoint;

enum class Presence : uint8_t { unknown, absent, present };
std::string_view to_string(Presence p);

struct Policy {
  Duration retry_base{std::chrono::milliseconds(100)};  // first retry after a failure
  Duration retry_cap{std::chrono::seconds(5)};          // back-off ceiling
  Duration give_up_after{std::chrono::seconds(3)};      // master: wanted VIP missing this long
  Duration verify_every{std::chrono::seconds(5)};       // ask the kernel what it really has
};

// The policy for an instance: retries start one advert interval apart (at
// least 10 ms, at most 1 s) and double up to 5 s; a master gives up after
// 3 x advert_int (RFC 5798's Master_Down_Interval without the skew: about
// when a backup would have taken over from a dead master); the kernel is
// asked every advert interval as MASTER (the VIP is what we advertise) but
// at most once a second (an address dump: see policy_for), every 5 s
// otherwise.
Policy policy_for(Duration advert_int, bool master);

struct Slot {
  Presence actual = Presence::unknown;
  unsigned failures = 0;                 // consecutive failed add/delete attempts
  TimePoint retry_at{};                  // while failures > 0: no attempt before
  std::optional<TimePoint> unmet_since;  // wanted present and not present, since
  std::string last_error;                // of the last failed attempt, "" once one succeeded
  TimePoint last_logged{};               // of a failure (the engine's log rate limit)
};

enum class Op : uint8_t { none, add, del };

// The operation due for `s` now: none while in sync or backing off. An
// unknown presence is settled by the (idempotent) operation toward `want`.
Op due(bool want, const Slot& s, TimePoint now);

// The kernel's answer to `op`: `error` empty means it was done (an add of an
// address already there or a delete of one already gone is success too).
void record(Slot& s, bool want, Op op, const std::string& error, TimePoint now, const Policy& p);

// What the kernel has now, from a dump (after an event, a periodic check or
// a resync). Resets the back-off when it shows something new to act on.
void observe(Slot& s, bool want, bool present, TimePoint now);

// What we have no answer for any more (events lost, ENOBUFS): unknown.
void forget(Slot& s, bool want, TimePoint now);

// The desire changed (a transition): a fresh start, no back-off owed.
void want_changed(Slot& s, bool want, TimePoint now);

bool in_sync(bool want, const Slot& s);
Duration backoff(unsigned failures, const Policy& p);

// A master that has missed a wanted VIP for give_up_after.
bool give_up(bool want, const std::vector<Slot>& slots, TimePoint now, const Policy& p);

// The latest time the engine must look again: a retry, the give-up
// deadline, or the next periodic check after `last_verify`.
TimePoint next_wake(bool want, const std::vector<Slot>& slots, TimePoint last_verify, TimePoint now,
                    const Policy& p);

// --- Whose is an address already there when an instance starts ---
//
// An instance removes its VIPs when it starts, as keepalived does: a run
// killed with SIGKILL leaves them on the interface, and a BACKUP holding one
// answers ARP beside the MASTER. But a configured VIP may also be an address
// the host had for its own (RFC 5798's "address owner" set-up, or the node's
// own address typed as the VIP): removing that takes the node off the
// network. The rule: an address already on the VIP's device at start is
// removed only when it is ours, that is each entry of it carries the mark
// the engine puts on every address it adds (IFA_PROTO kVipAddressProtocol,
// Linux 5.18 and later keep it), or a running instance of this daemon holds
// it (a reload that restarts an instance or moves a VIP between instances).
// Anything else is not ours, and so is an address whose entries the kernel
// could not be asked for: the instance refuses to start (the daemon at
// start, a reload is refused and the running configuration kept) and the
// address stays. Limit: on a kernel before 5.18 no mark is kept, so a VIP
// that a killed run left is refused too (remove it by hand; under systemd
// the unit's ExecStopPost, vipproxy release-vips, has removed it before).

// IFA_PROTO of the addresses the engine adds: VRRP's IP protocol number,
// shown as "proto 112" by an `ip address` newer than iproute2 6.1 (which
// can neither set nor show it: tests/integration/addrproto.py does both).
inline constexpr uint8_t kVipAddressProtocol = 112;

// One entry of an address on a device, as the kernel dumps it (an IPv4
// address may be there several times, with different prefix lengths).
struct Entry {
  unsigned prefix_len = 0;
  uint8_t protocol = 0;  // IFA_PROTO; 0 when unset or the kernel keeps none
  bool operator==(const Entry&) const = default;
};

enum class Claim : uint8_t {
  free,      // not on the device
  ours,      // every entry marked by us, or held by a running instance of ours
  not_ours,  // an entry we did not add: the host's own address, or another program's
  unknown,   // the kernel could not be asked: treated as not ours
};
std::string_view to_string(Claim c);

// `entries`: the address's entries on its device (nullopt: no dump);
// `held_by_running`: a running instance of this daemon has the VIP.
Claim claim_at_start(const std::optional<std::vector<Entry>>& entries, bool held_by_running);

// --- The same address on another device of the host ---
//
// A VIP that is an address of another device (the VIP typed as eth1's
// address while VRRP runs on eth0) is not ours either: Linux answers ARP for
// any of its addresses on every interface by default (arp_ignore 0), so as
// BACKUP this node still answers for the VIP beside the MASTER, and as
// MASTER two devices have it. vipproxy never touches the other device (it
// adds and deletes on the VIP's own device only), so the start or reload is
// refused, naming the device, rather than run (keepalived adds it on its
// interface regardless). Two exceptions: an IPv6 link-local address is
// scoped to its link (fe80::1 on eth1 is another address than fe80::1 on
// eth0, and VRRPv3's first VIP is link-local: RFC 5798 §5.2.9), and an
// entry a running instance of ours holds there (a reload moving the VIP to
// another device: that instance removes it).
struct Elsewhere {
  std::string device;
  int ifindex = 0;
  Entry entry;
  bool operator==(const Elsewhere&) const = default;
};
// `others`: `vip`'s entries on devices other than the VIP's; `held(e)`: a
// running instance of ours holds the VIP on e's device. Those that forbid
// the VIP, in order.
std::vector<Elsewhere> taken_elsewhere(const IpAddress& vip, const std::vector<Elsewhere>& others,
                                       const std::function<bool(const Elsewhere&)>& held);

}  // namespace vrrp::vips
