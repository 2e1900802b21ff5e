// Pure VRRP advertisement codec: VRRPv2 (RFC 3768, IPv4, with keepalived's
// PASS authentication) and VRRPv3 (RFC 5798 / RFC 9568, IPv4 and IPv6).
// No sockets, no logging, no clock: bytes in, values out. The I/O layer reads
// a datagram, parses the IP header (vrrp/frame.h) into an RxMeta and calls
// decode(); only an accepted Advert ever reaches the state machine, so a
// malformed packet can never restart a timer.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "vrrp/address.h"

namespace vrrp {

inline constexpr uint8_t kIpProtoVrrp = 112;       // RFC 5798 §5.1.1.3 / §5.1.2.3
inline constexpr uint8_t kAdvertisement = 1;       // the only VRRP type (RFC 5798 §5.2.2)
inline constexpr uint8_t kRequiredTtl = 255;       // RFC 3768 §5.2.3, RFC 5798 §5.1.1.3
inline constexpr std::size_t kHeaderLen = 8;       // fixed part, both versions
inline constexpr std::size_t kV2AuthLen = 8;       // RFC 3768 §5.3.10 (always present)
inline constexpr uint8_t kAddressOwnerPriority = 255;  // RFC 3768 §5.3.4, RFC 5798 §5.2.4

// RFC 3768 §5.3.6. Type 1 (simple text password) was removed by RFC 3768 but
// keepalived still sends and checks it ("auth_type PASS"), so we speak it for
// wire compatibility (the fixtures in tests/fixtures/vrrp use it).
enum class AuthType : uint8_t { none = 0, pass = 1, ah = 2 };

// How a VRRPv3 IPv4 checksum was (or is to be) computed. RFC 5798 §5.2.8 sums
// an IPv4 pseudo-header + the message, and keepalived 2.2.7 does that (see the
// README of tests/fixtures/vrrp: 0x71f1 verifies only with it). RFC 9568 and
// FRR's `no checksum-with-ipv4-pseudoheader` use the message alone. VRRPv2
// always uses the message alone (RFC 3768 §5.3.8); VRRPv3 over IPv6 always
// uses the IPv6 pseudo-header (RFC 5798 §5.2.8, RFC 8200 §8.1).
enum class ChecksumForm : uint8_t { pseudo_header, message_only };

struct Advert {
  uint8_t version = 3;
  uint8_t type = kAdvertisement;
  uint8_t vrid = 0;
  uint8_t priority = 100;
  // Count IPvX Addrs as seen on the wire. encode() ignores it and writes
  // addresses.size(), so an Advert cannot be encoded inconsistent.
  uint8_t count = 0;
  uint8_t auth_type = 0;   // v2 only
  // v2: Adver Int, seconds (8 bits). v3: Max Adver Int, centiseconds (12 bits).
  uint16_t adver_int = 100;
  // v3: the 4 reserved bits in front of Max Adver Int. RFC 5798 §5.2.5 says
  // send 0, ignore on receive; kept so a decoded packet re-encodes identical.
  uint8_t reserved = 0;
  uint16_t checksum = 0;   // as received; encode() computes its own
  std::vector<IpAddress> addresses;
  std::array<uint8_t, kV2AuthLen> auth_data{};  // v2 only
  // Set by decode(): which checksum form verified. Used by encode() only when
  // EncodeOpts::form is left to follow it (see there).
  ChecksumForm checksum_form = ChecksumForm::pseudo_header;
};

struct EncodeOpts {
  Family family = Family::ipv4;
  IpAddress src;  // IP source and destination: they are in the v3 pseudo-header
  IpAddress dst;
  ChecksumForm v3_ipv4_form = ChecksumForm::pseudo_header;  // keepalived's default
};

// The VRRP message only (no IP header), checksum computed.
std::vector<uint8_t> encode(const Advert& a, const EncodeOpts& opts);

// Metadata the raw socket gives with the message (from the IP header, or
// IPV6_RECVHOPLIMIT ancillary data for IPv6).
struct RxMeta {
  Family family = Family::ipv4;
  IpAddress src;
  IpAddress dst;
  uint8_t ttl = 0;  // IPv4 TTL or IPv6 Hop Limit
  // Length of the IP payload according to the IP header (IPv4 total length
  // minus header length; IPv6 payload length). The message is exactly this
  // long; bytes beyond it are Ethernet padding (frames under 60 bytes are
  // padded on real NICs, not on veth). 0: use the whole span.
  std::size_t ip_payload_len = 0;
};

// What the receiver is configured to expect (RFC 3768 §7.1: "MUST verify that
// the Auth Type matches the locally configured authentication method").
struct AuthExpect {
  AuthType type = AuthType::none;
  std::string password;  // PASS: compared NUL-padded/truncated to 8 bytes, as keepalived
};

// One named error per validation rung, in the order decode() checks them
// (RFC 3768 §7.1, RFC 5798 §7.1). VRID matching, the v2 "Adver Interval must
// equal ours" rule and all priority policy are the caller's business (as in
// FRR's vrrp_pkt_parse_datagram): decode() knows no instance.
enum class DecodeError : uint8_t {
  too_short,          // shorter than the fixed header or than the IP header claims
  bad_version,        // not 2 or 3 (or v2 over IPv6: RFC 3768 is IPv4 only)
  bad_type,           // not ADVERTISEMENT (RFC 5798 §5.2.2: MUST discard)
  bad_ttl,            // TTL / Hop Limit != 255 (RFC 3768 §7.1, RFC 5798 §7.1)
  bad_checksum,       // RFC 3768 §7.1, RFC 5798 §7.1
  bad_length,         // Count IPvX Addrs does not match the message length
  bad_interval,       // advertisement interval 0
  auth_type_mismatch, // v2: Auth Type differs from ours (RFC 3768 §7.1)
  auth_failure,       // v2 PASS: password differs
};

std::string_view to_string(DecodeError e);

// A small expected<Advert, DecodeError> (std::expected is C++23).
class DecodeResult {
 public:
  DecodeResult(Advert a) : v_(std::move(a)) {}
  DecodeResult(DecodeError e) : v_(e) {}
  bool ok() const { return std::holds_alternative<Advert>(v_); }
  explicit operator bool() const { return ok(); }
  const Advert& value() const { return std::get<Advert>(v_); }
  const Advert& operator*() const { return value(); }
  const Advert* operator->() const { return &value(); }
  DecodeError error() const { return std::get<DecodeError>(v_); }

 private:
  std::variant<Advert, DecodeError> v_;
};

DecodeResult decode(std::span<const uint8_t> vrrp_bytes, const RxMeta& meta,
                    const AuthExpect& auth = {});

// The checksum of `message` (its checksum field is treated as 0) in `form`.
uint16_t compute_checksum(std::span<const uint8_t> message, uint8_t version, Family family,
                          const IpAddress& src, const IpAddress& dst, ChecksumForm form);

// Per-instance acceptance after decode(), also pure: RFC 3768 §7.1 / RFC 5798
// §7.1 "MUST verify that the VRID is configured on the receiving interface"
// and, for v2 only, "MUST verify that the Adver Interval in the packet is the
// same as the locally configured". Returns the reason to discard, if any.
enum class InstanceMismatch : uint8_t { none, vrid, version, adver_int, addresses };
std::string_view to_string(InstanceMismatch m);
InstanceMismatch check_instance(const Advert& a, uint8_t vrid, uint8_t version,
                                uint16_t v2_adver_int_seconds);

// Whether two address lists hold the same addresses, in any order (a peer
// may list its virtual addresses in another order than ours).
bool same_addresses(std::span<const IpAddress> a, std::span<const IpAddress> b);

// What a receiving instance is configured with, for classify_advert().
struct InstanceExpect {
  uint8_t vrid = 0;
  uint8_t version = 3;
  uint16_t v2_adver_int_seconds = 1;
  std::span<const IpAddress> addresses;  // our virtual addresses
};

// The intake decision for a decoded advert, pure: which rule of RFC 3768
// §7.1 / RFC 5798 §7.1 discards it, if any, in the RFCs' order (VRID,
// version, address list, v2 interval). The address list is a MAY-verify in
// both RFCs, which we do, as keepalived does: "If the packet was not
// generated by the address owner (Priority does not equal 255 (decimal)),
// the receiver MUST drop the packet, otherwise continue processing". It is
// what keeps a second VRRP cluster on the same LAN and VRID (another
// keepalived pair on the ubiquitous VRID 51, with other addresses) from
// taking part in our election. An owner's advert with another list goes on
// to the state machine, flagged so the caller can log it.
struct Intake {
  InstanceMismatch drop = InstanceMismatch::none;  // none: to the state machine
  bool addresses_differ = false;                   // also set when accepted from an owner
};
Intake classify_advert(const Advert& a, const InstanceExpect& expect);

}  // namespace vrrp
