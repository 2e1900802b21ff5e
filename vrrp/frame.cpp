#include "vrrp/frame.h"

#include "vrrp/checksum.h"
#include "vrrp/garp.h"

namespace vrrp {

Ipv4Parse parse_ipv4(std::span<const uint8_t> d) {
  Ipv4Parse r;
  if (d.size() < 20) return r;  // too_short
  if ((d[0] >> 4) != 4) { r.error = Ipv4Error::not_ipv4; return r; }
  const std::size_t ihl = std::size_t(d[0] & 0x0f) * 4;
  if (ihl < 20) { r.error = Ipv4Error::bad_header_len; return r; }
  const std::size_t total = std::size_t(d[2]) << 8 | d[3];
  if (total < ihl) { r.error = Ipv4Error::bad_total_len; return r; }
  if (d.size() < ihl || d.size() < total) { r.error = Ipv4Error::too_short; return r; }
  if (d[9] != kIpProtoVrrp) { r.error = Ipv4Error::not_vrrp; return r; }
  Ipv4Header h;
  h.header_len = ihl;
  h.total_len = total;
  h.tos = d[1];
  h.id = uint16_t(d[4] << 8 | d[5]);
  h.ttl = d[8];
  h.protocol = d[9];
  h.src = IpAddress::v4(std::span<const uint8_t, 4>(d.data() + 12, 4));
  h.dst = IpAddress::v4(std::span<const uint8_t, 4>(d.data() + 16, 4));
  h.payload = d.subspan(ihl, total - ihl);
  r.header = h;
  return r;
}

std::optional<std::span<const uint8_t>> ethernet_ipv4_payload(std::span<const uint8_t> frame) {
  if (frame.size() < 14) return std::nullopt;
  if (frame[12] != 0x08 || frame[13] != 0x00) return std::nullopt;
  return frame.subspan(14);
}

MacAddress ipv4_multicast_mac(const IpAddress& g) {
  return {0x01, 0x00, 0x5e, uint8_t(g.bytes[1] & 0x7f), g.bytes[2], g.bytes[3]};
}

MacAddress virtual_router_mac(Family family, uint8_t vrid) {
  return {0x00, 0x00, 0x5e, 0x00, uint8_t(family == Family::ipv4 ? 0x01 : 0x02), vrid};
}

std::vector<uint8_t> build_ipv4_header(const Ipv4Params& ip, std::size_t payload_len) {
  const std::size_t total = 20 + payload_len;
  std::vector<uint8_t> h = {0x45, ip.tos, uint8_t(total >> 8), uint8_t(total),
                            uint8_t(ip.id >> 8), uint8_t(ip.id), 0, 0,  // no DF, no fragments
                            ip.ttl, kIpProtoVrrp, 0, 0};
  h.insert(h.end(), ip.src.bytes.begin(), ip.src.bytes.begin() + 4);
  h.insert(h.end(), ip.dst.bytes.begin(), ip.dst.bytes.begin() + 4);
  const uint16_t c = checksum::of(h);
  h[10] = uint8_t(c >> 8);
  h[11] = uint8_t(c);
  return h;
}

std::vector<uint8_t> build_ipv4_frame(const MacAddress& src_mac, const Ipv4Params& ip,
                                      std::span<const uint8_t> payload,
                                      std::optional<MacAddress> dst_mac) {
  MacAddress dst = dst_mac ? *dst_mac
                 : (ip.dst.bytes[0] & 0xf0) == 0xe0 ? ipv4_multicast_mac(ip.dst)
                                                    : MacAddress{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  std::vector<uint8_t> f(dst.begin(), dst.end());
  f.insert(f.end(), src_mac.begin(), src_mac.end());
  f.push_back(0x08);
  f.push_back(0x00);
  auto h = build_ipv4_header(ip, payload.size());
  f.insert(f.end(), h.begin(), h.end());
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

std::optional<Ipv6Header> parse_ipv6(std::span<const uint8_t> d) {
  if (d.size() < 40 || (d[0] >> 4) != 6 || d[6] != kIpProtoVrrp) return std::nullopt;
  const std::size_t plen = std::size_t(d[4]) << 8 | d[5];
  if (d.size() < 40 + plen) return std::nullopt;
  Ipv6Header h;
  h.next_header = d[6];
  h.hop_limit = d[7];
  h.src = IpAddress::v6(std::span<const uint8_t, 16>(d.data() + 8, 16));
  h.dst = IpAddress::v6(std::span<const uint8_t, 16>(d.data() + 24, 16));
  h.payload = d.subspan(40, plen);
  return h;
}

std::vector<uint8_t> build_ipv6_header(const IpAddress& src, const IpAddress& dst, uint8_t next_header,
                                       uint8_t hop_limit, std::size_t payload_len) {
  std::vector<uint8_t> h = {0x6c, 0x00, 0, 0, uint8_t(payload_len >> 8), uint8_t(payload_len), next_header,
                            hop_limit};
  h.insert(h.end(), src.bytes.begin(), src.bytes.end());
  h.insert(h.end(), dst.bytes.begin(), dst.bytes.end());
  return h;
}

MacAddress ipv6_multicast_mac(const IpAddress& g) {
  return {0x33, 0x33, g.bytes[12], g.bytes[13], g.bytes[14], g.bytes[15]};
}

std::vector<uint8_t> build_na_frame(const MacAddress& node_mac, const IpAddress& src, const IpAddress& vip) {
  const auto icmp = build_unsolicited_na(node_mac, vip, src, kAllNodesV6);
  const auto dst = ipv6_multicast_mac(kAllNodesV6);
  std::vector<uint8_t> f(dst.begin(), dst.end());
  f.insert(f.end(), node_mac.begin(), node_mac.end());
  f.push_back(0x86);
  f.push_back(0xdd);
  auto h = build_ipv6_header(src, kAllNodesV6, 58, 255, icmp.size());
  h[0] = 0x60;  // ND: traffic class 0
  f.insert(f.end(), h.begin(), h.end());
  f.insert(f.end(), icmp.begin(), icmp.end());
  return f;
}

}  // namespace vrrp
