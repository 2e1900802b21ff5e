#include "vrrp/garp.h"

#include <algorithm>

#include "vrrp/checksum.h"

namespace vrrp {

std::array<uint8_t, kGarpFrameLen> build_garp(const MacAddress& mac, const IpAddress& vip) {
  std::array<uint8_t, kGarpFrameLen> f{};
  auto it = f.begin();
  auto put = [&it](std::initializer_list<uint8_t> b) { it = std::copy(b.begin(), b.end(), it); };
  auto put_mac = [&it](const MacAddress& m) { it = std::copy(m.begin(), m.end(), it); };
  auto put_ip = [&it, &vip] { it = std::copy_n(vip.bytes.begin(), 4, it); };
  const MacAddress broadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  put_mac(broadcast);           // Ethernet destination
  put_mac(mac);                 // Ethernet source: the node's own MAC
  put({0x08, 0x06});            // ethertype ARP
  put({0x00, 0x01, 0x08, 0x00, 6, 4});  // htype Ethernet, ptype IPv4, hlen, plen (RFC 826)
  put({0x00, 0x01});            // op: request (RFC 5227 §3 prefers request for announcements)
  put_mac(mac);                 // sender hardware address
  put_ip();                     // sender protocol address = VIP
  put_mac(broadcast);           // target hardware address: keepalived's ff:ff:ff:ff:ff:ff
  put_ip();                     // target protocol address = VIP
  return f;
}

std::vector<uint8_t> build_unsolicited_na(const MacAddress& mac, const IpAddress& target,
                                          const IpAddress& src, const IpAddress& dst,
                                          bool router_flag) {
  std::vector<uint8_t> m = {136, 0, 0, 0,  // type NA, code 0, checksum
                            uint8_t((router_flag ? 0x80 : 0) | 0x20), 0, 0, 0};  // R, S=0, O=1
  m.insert(m.end(), target.bytes.begin(), target.bytes.end());
  m.push_back(2);  // option: Target Link-Layer Address (RFC 4861 §4.6.1)
  m.push_back(1);  // length in units of 8 octets
  m.insert(m.end(), mac.begin(), mac.end());
  // RFC 4443 §2.3 / RFC 8200 §8.1 pseudo-header: src, dst, length, next header 58.
  uint32_t sum = checksum::add(0, src.raw());
  sum = checksum::add(sum, dst.raw());
  const uint8_t tail[8] = {0, 0, 0, uint8_t(m.size()), 0, 0, 0, 58};
  sum = checksum::add(sum, tail);
  const uint16_t c = checksum::finish(checksum::add(sum, m));
  m[2] = uint8_t(c >> 8);
  m[3] = uint8_t(c);
  return m;
}

}  // namespace vrrp
