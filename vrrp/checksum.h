// The Internet checksum (RFC 1071), used by the VRRP message (RFC 3768 §5.3.8,
// RFC 5798 §5.2.8), the IPv4 header and ICMPv6. Sums are kept unfolded so a
// pseudo-header and a message can be added in separate calls.
#pragma once

#include <cstdint>
#include <span>

namespace vrrp::checksum {

// Adds bytes as big-endian 16-bit words. Every piece we sum except the last
// (pseudo-headers) has an even length; an odd last piece is padded with a
// zero byte, as RFC 1071 says.
inline uint32_t add(uint32_t sum, std::span<const uint8_t> bytes) {
  std::size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) sum += uint32_t(bytes[i]) << 8 | bytes[i + 1];
  if (i < bytes.size()) sum += uint32_t(bytes[i]) << 8;
  return sum;
}

inline uint16_t finish(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

inline uint16_t of(std::span<const uint8_t> bytes) { return finish(add(0, bytes)); }

}  // namespace vrrp::checksum
