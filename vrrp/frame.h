// Pure helpers around the VRRP message: the IPv4 header a raw socket hands
// us (Linux raw IPv4 sockets deliver the IP header with the datagram) and
// whole Ethernet frames, built for tests and parsed from captures.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "vrrp/address.h"
#include "vrrp/codec.h"

namespace vrrp {

enum class Ipv4Error : uint8_t {
  too_short,        // fewer than 20 bytes, or fewer than the header / total length claims
  not_ipv4,         // version nibble != 4
  bad_header_len,   // IHL < 5
  bad_total_len,    // total length < header length
  not_vrrp,         // protocol != 112
};

struct Ipv4Header {
  std::size_t header_len = 0;  // IHL * 4 (options are skipped, never interpreted)
  std::size_t total_len = 0;   // from the header, not from the buffer
  uint8_t tos = 0;
  uint8_t ttl = 0;
  uint8_t protocol = 0;
  uint16_t id = 0;
  IpAddress src, dst;
  // The IP payload, cut at total_len: frames shorter than 60 bytes arrive
  // padded with zeros on real NICs (docs/lab-notes.md: not on veth), so the buffer
  // length says nothing about where the VRRP message ends.
  std::span<const uint8_t> payload;

  RxMeta rx_meta() const {
    return RxMeta{Family::ipv4, src, dst, ttl, payload.size()};
  }
};

struct Ipv4Parse {
  std::optional<Ipv4Header> header;
  Ipv4Error error = Ipv4Error::too_short;  // meaningful when !header
};

// Parses an IPv4 datagram (buffer may be longer than total_len). The header
// checksum is not verified: the kernel already dropped bad ones.
Ipv4Parse parse_ipv4(std::span<const uint8_t> datagram);

// Ethernet II + IPv4 (ethertype 0x0800); nullopt when the frame is not IPv4.
std::optional<std::span<const uint8_t>> ethernet_ipv4_payload(std::span<const uint8_t> frame);

// RFC 1112 §6.4: IPv4 multicast -> 01:00:5e + low 23 bits of the group.
MacAddress ipv4_multicast_mac(const IpAddress& group);
// RFC 5798 §7.3: the virtual router MAC 00:00:5e:00:01:{VRID} (IPv4),
// 00:00:5e:00:02:{VRID} (IPv6). keepalived only uses it with use_vmac.
MacAddress virtual_router_mac(Family family, uint8_t vrid);

inline constexpr IpAddress kVrrpGroupV4 = IpAddress::v4(224, 0, 0, 18);  // RFC 5798 §5.1.1.2

struct Ipv4Params {
  IpAddress src;
  IpAddress dst = kVrrpGroupV4;
  uint8_t tos = 0xc0;   // keepalived: precedence "internetwork control"
  uint8_t ttl = kRequiredTtl;
  uint16_t id = 0;
};

// A 20-byte IPv4 header (no options, no DF, as keepalived) with its checksum.
std::vector<uint8_t> build_ipv4_header(const Ipv4Params& ip, std::size_t payload_len);

// A whole Ethernet frame: dst MAC (multicast MAC of ip.dst when it is a
// multicast group and dst_mac is not given), src MAC, IPv4 header, payload.
// Unpadded, like the veth captures.
std::vector<uint8_t> build_ipv4_frame(const MacAddress& src_mac, const Ipv4Params& ip,
                                      std::span<const uint8_t> payload,
                                      std::optional<MacAddress> dst_mac = std::nullopt);

// ---- IPv6 (RFC 5798 §5.1.2) ----
// Linux raw IPv6 sockets deliver the payload only: the channel hands the
// engine recvmsg's metadata instead (vrrp/kernel.h Received). A fixed
// 40-byte header (no extension headers) is parsed from captures and built
// for frames (unsolicited NA).
inline constexpr IpAddress kVrrpGroupV6 = [] {  // ff02::12, RFC 5798 §5.1.2.2
  IpAddress a;
  a.family = Family::ipv6;
  a.bytes[0] = 0xff; a.bytes[1] = 0x02; a.bytes[15] = 0x12;
  return a;
}();
inline constexpr IpAddress kAllNodesV6 = [] {  // ff02::1, RFC 4291 §2.7.1
  IpAddress a;
  a.family = Family::ipv6;
  a.bytes[0] = 0xff; a.bytes[1] = 0x02; a.bytes[15] = 0x01;
  return a;
}();

struct Ipv6Header {
  uint8_t hop_limit = 0;
  uint8_t next_header = 0;
  IpAddress src, dst;
  std::span<const uint8_t> payload;  // cut at the payload length
  RxMeta rx_meta() const { return RxMeta{Family::ipv6, src, dst, hop_limit, payload.size()}; }
};

// nullopt: shorter than 40 bytes or than the payload length, not version 6,
// or the next header is not 112 (extension headers are not expected here).
std::optional<Ipv6Header> parse_ipv6(std::span<const uint8_t> datagram);

// A 40-byte IPv6 header (traffic class 0xc0 like the IPv4 TOS, flow 0).
std::vector<uint8_t> build_ipv6_header(const IpAddress& src, const IpAddress& dst, uint8_t next_header,
                                       uint8_t hop_limit, std::size_t payload_len);

// RFC 2464 §7: IPv6 multicast -> 33:33 + low 32 bits of the group.
MacAddress ipv6_multicast_mac(const IpAddress& group);

// The whole Ethernet frame of an unsolicited Neighbour Advertisement for
// `vip` (vrrp/garp build_unsolicited_na) from `src` (our link-local) to
// ff02::1, Hop Limit 255 (RFC 4861 §7.1.2).
std::vector<uint8_t> build_na_frame(const MacAddress& node_mac, const IpAddress& src, const IpAddress& vip);

}  // namespace vrrp
