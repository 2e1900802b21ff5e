// Plain IP address value shared by the VRRP codec and state machine. Kept in
// its own header so codec.h and fsm.h do not include each other.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace vrrp {

enum class Family : uint8_t { ipv4, ipv6 };

// An IPv4 or IPv6 address in network byte order. IPv4 uses bytes[0..3], the
// rest stays zero, so the defaulted comparison orders two addresses of one
// family numerically: RFC 5798 §6.4.3 breaks a priority tie by "the primary
// IPvX Address of the sender is greater than the local primary IPvX Address",
// compared as unsigned integers in network order.
struct IpAddress {
  Family family = Family::ipv4;
  std::array<uint8_t, 16> bytes{};

  static constexpr IpAddress v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    IpAddress r;
    r.bytes[0] = a; r.bytes[1] = b; r.bytes[2] = c; r.bytes[3] = d;
    return r;
  }
  static IpAddress v4(std::span<const uint8_t, 4> raw);
  static IpAddress v6(std::span<const uint8_t, 16> raw);
  // Accepts an IPv4 dotted quad or an IPv6 literal; nullopt otherwise.
  static std::optional<IpAddress> parse(std::string_view text);

  std::size_t size() const { return family == Family::ipv4 ? 4 : 16; }
  std::span<const uint8_t> raw() const { return {bytes.data(), size()}; }
  std::string to_string() const;

  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

using MacAddress = std::array<uint8_t, 6>;

}  // namespace vrrp
