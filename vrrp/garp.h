// Pure builders for the announcements a new master sends so that hosts and
// switches update their caches (RFC 5798 §6.4.1/§6.4.2: "broadcast a
// gratuitous ARP request ... for each IPv4 address", "send an unsolicited ND
// Neighbor Advertisement ... for each IPv6 address"). Sending, bursts and
// refresh timing (garp_master_delay/repeat/refresh) live in the I/O layer.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "vrrp/address.h"

namespace vrrp {

inline constexpr std::size_t kGarpFrameLen = 42;  // 14 Ethernet + 28 ARP, unpadded

// A gratuitous ARP exactly as keepalived 2.2.7 sends it (captured in
// tests/fixtures/vrrp/garp-master-transition.pcap): Ethernet broadcast, ARP
// request (op 1), sender = target = VIP, sender MAC = the node's own MAC
// (no VMAC unless use_vmac), target MAC ff:ff:ff:ff:ff:ff (keepalived's
// choice; RFC 5227 §3 would put zeros there, either form updates caches).
std::array<uint8_t, kGarpFrameLen> build_garp(const MacAddress& node_mac, const IpAddress& vip);

inline constexpr std::size_t kUnsolicitedNaLen = 32;  // ICMPv6 NA + target LL option

// The ICMPv6 payload of an unsolicited Neighbour Advertisement (RFC 4861
// §4.4, §7.2.6) for `target`, with its checksum over the IPv6 pseudo-header
// (src, dst: normally ff02::1, all-nodes). RFC 5798 §6.4.1 wants R set, S
// clear, O set; the IP layer must send it with Hop Limit 255 (RFC 4861 §7.1.2).
std::vector<uint8_t> build_unsolicited_na(const MacAddress& node_mac, const IpAddress& target,
                                          const IpAddress& src, const IpAddress& dst,
                                          bool router_flag = true);

}  // namespace vrrp
