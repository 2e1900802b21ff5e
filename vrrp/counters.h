// VRRP counters, declared once and exported to both /status (JSON) and
// /metrics (Prometheus) by iterating the same X-macros (Envoy ALL_*_STATS).
#pragma once

#include <cstdint>

namespace vrrp {

// X(name, help)
#define VIPPROXY_VRRP_COUNTERS(X)                                                          \
  X(adverts_sent, "VRRP advertisements sent (each unicast peer counts once)")              \
  X(adverts_received, "Valid advertisements received for this instance")                   \
  X(transitions, "VRRP state changes")                                                     \
  X(became_master, "Transitions to MASTER")                                                \
  X(garp_sent, "Gratuitous ARPs sent")                                                     \
  X(send_errors, "Advertisements or ARPs the kernel refused to send")                      \
  X(advert_send_failures, "Adverts no destination took (sendto failed: an OUTPUT firewall rule, no route); the priority-0 probes of a FAULT for it included") \
  X(mute_master_faults, "MASTER left for FAULT: its adverts could not be sent and another router was heard as MASTER for Master_Down_Interval") \
  X(vip_errors, "Virtual address additions or removals that failed")                       \
  X(vip_readded, "Virtual addresses re-added after being removed while MASTER")            \
  X(vip_removed_not_master, "Virtual addresses found on the interface while not MASTER and removed (another program added them)") \
  X(other_vrid, "Adverts of other virtual routers on the link (ignored, not an error)")  \
  X(owner_address_mismatch, "Adverts from an address owner (priority 255) listing other addresses than ours: accepted (RFC 5798 7.1), logged") \
  X(script_runs, "Track script runs")                                                      \
  X(script_timeouts, "Track script runs killed after their timeout")                      \
  X(notify_runs, "Notify hooks started")                                                   \
  X(notify_timeouts, "Notify hooks killed (with their process group) after notify.timeout") \
  X(notify_dropped, "Notify hooks dropped before they started (superseded, or stopping)")

// Datagrams discarded before reaching the state machine, by reason: the
// codec's DecodeError rungs (same names, vrrp/codec.h), a broken IPv4 header,
// and the per-instance checks of RFC 3768 §7.1 / RFC 5798 §7.1. A discarded
// packet never touches a timer. X(name, help)
#define VIPPROXY_VRRP_DROPS(X)                                                              \
  X(too_short, "shorter than the VRRP header or than the IP header claims")                \
  X(bad_version, "VRRP version not 2 or 3")                                                \
  X(bad_type, "VRRP type not ADVERTISEMENT")                                               \
  X(bad_ttl, "IP TTL not 255 (sent from off-link)")                                        \
  X(bad_checksum, "VRRP checksum wrong in every accepted form")                            \
  X(bad_length, "address count does not match the length")                                 \
  X(bad_interval, "advertisement interval 0")                                              \
  X(auth_type_mismatch, "VRRPv2 authentication type differs from ours")                    \
  X(auth_failure, "VRRPv2 PASS password differs from ours")                                \
  X(bad_ip_header, "IP header unusable, or not the instance's address family")               \
  X(version_mismatch, "our VRID, but another VRRP version")                                \
  X(adver_int_mismatch, "VRRPv2 advert_int differs from ours (RFC 3768 7.1)")                \
  X(address_mismatch, "our VRID, another list of virtual addresses, not from the address owner (RFC 3768 7.1, RFC 5798 7.1): another VRRP cluster on the VRID?") \
  X(not_unicast_peer, "unicast instance: source is not one of unicast_peers")                \
  X(own_address, "source is our own advert address: the network reflects our adverts (a bond, a virtual switch), or another router uses our address")

struct Counters {
#define VIPPROXY_VRRP_DECLARE(name, help) uint64_t name = 0;
  VIPPROXY_VRRP_COUNTERS(VIPPROXY_VRRP_DECLARE)
#undef VIPPROXY_VRRP_DECLARE
};

struct Drops {
#define VIPPROXY_VRRP_DECLARE(name, help) uint64_t name = 0;
  VIPPROXY_VRRP_DROPS(VIPPROXY_VRRP_DECLARE)
#undef VIPPROXY_VRRP_DECLARE
};

}  // namespace vrrp
