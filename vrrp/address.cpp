#include "vrrp/address.h"

#include <arpa/inet.h>

#include <algorithm>

namespace vrrp {

IpAddress IpAddress::v4(std::span<const uint8_t, 4> raw) {
  IpAddress r;
  std::copy(raw.begin(), raw.end(), r.bytes.begin());
  return r;
}

IpAddress IpAddress::v6(std::span<const uint8_t, 16> raw) {
  IpAddress r;
  r.family = Family::ipv6;
  std::copy(raw.begin(), raw.end(), r.bytes.begin());
  return r;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string; addresses are short.
  if (text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  std::copy(text.begin(), text.end(), buf);
  IpAddress r;
  if (inet_pton(AF_INET, buf, r.bytes.data()) == 1) return r;
  r.family = Family::ipv6;
  if (inet_pton(AF_INET6, buf, r.bytes.data()) == 1) return r;
  return std::nullopt;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == Family::ipv4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

}  // namespace vrrp
