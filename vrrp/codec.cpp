#include "vrrp/codec.h"

#include <algorithm>

#include "vrrp/checksum.h"

namespace vrrp {
namespace {

constexpr std::size_t kChecksumOffset = 6;

// The pseudo-header of RFC 5798 §5.2.8: for IPv4 the RFC 768/793 form
// (src, dst, zero, protocol, length), for IPv6 RFC 8200 §8.1 (src, dst,
// 32-bit length, 3 zero bytes, next header).
uint32_t add_pseudo_header(uint32_t sum, Family family, const IpAddress& src,
                           const IpAddress& dst, std::size_t len) {
  sum = checksum::add(sum, src.raw());
  sum = checksum::add(sum, dst.raw());
  if (family == Family::ipv4) {
    const uint8_t tail[4] = {0, kIpProtoVrrp, uint8_t(len >> 8), uint8_t(len)};
    return checksum::add(sum, tail);
  }
  const uint8_t tail[8] = {uint8_t(len >> 24), uint8_t(len >> 16), uint8_t(len >> 8),
                           uint8_t(len), 0, 0, 0, kIpProtoVrrp};
  return checksum::add(sum, tail);
}

std::array<uint8_t, kV2AuthLen> pad_password(std::string_view pw) {
  // keepalived copies at most 8 bytes of the configured password into a
  // zeroed field, so a short password is NUL-padded and a long one truncated.
  std::array<uint8_t, kV2AuthLen> out{};
  std::copy_n(pw.begin(), std::min(pw.size(), out.size()), out.begin());
  return out;
}

}  // namespace

uint16_t compute_checksum(std::span<const uint8_t> message, uint8_t version, Family family,
                          const IpAddress& src, const IpAddress& dst, ChecksumForm form) {
  uint32_t sum = 0;
  // Which form applies: v2 never has a pseudo-header (RFC 3768 §5.3.8);
  // v3 over IPv6 always has one; only v3 over IPv4 has a choice.
  bool pseudo = version == 3 && (family == Family::ipv6 || form == ChecksumForm::pseudo_header);
  if (pseudo) sum = add_pseudo_header(sum, family, src, dst, message.size());
  if (message.size() >= kChecksumOffset + 2) {
    sum = checksum::add(sum, message.first(kChecksumOffset));
    sum = checksum::add(sum, message.subspan(kChecksumOffset + 2));
  } else {
    sum = checksum::add(sum, message);
  }
  return checksum::finish(sum);
}

std::vector<uint8_t> encode(const Advert& a, const EncodeOpts& opts) {
  const std::size_t addr_len = opts.family == Family::ipv4 ? 4 : 16;
  std::vector<uint8_t> out;
  out.reserve(kHeaderLen + a.addresses.size() * addr_len + kV2AuthLen);
  out.push_back(uint8_t(a.version << 4 | (a.type & 0x0f)));
  out.push_back(a.vrid);
  out.push_back(a.priority);
  out.push_back(uint8_t(a.addresses.size()));
  if (a.version == 2) {
    out.push_back(a.auth_type);
    out.push_back(uint8_t(a.adver_int));
  } else {
    // RFC 5798 §5.2.5-5.2.7: 4 reserved bits, then 12 bits of centiseconds.
    out.push_back(uint8_t((a.reserved & 0x0f) << 4 | ((a.adver_int >> 8) & 0x0f)));
    out.push_back(uint8_t(a.adver_int));
  }
  out.push_back(0);  // checksum, filled below
  out.push_back(0);
  for (const auto& ip : a.addresses) {
    auto raw = ip.raw();
    out.insert(out.end(), raw.begin(), raw.end());
  }
  // RFC 3768 §5.3.10: the 8 authentication bytes are always present in v2.
  if (a.version == 2) out.insert(out.end(), a.auth_data.begin(), a.auth_data.end());
  uint16_t c = compute_checksum(out, a.version, opts.family, opts.src, opts.dst, opts.v3_ipv4_form);
  out[kChecksumOffset] = uint8_t(c >> 8);
  out[kChecksumOffset + 1] = uint8_t(c);
  return out;
}

DecodeResult decode(std::span<const uint8_t> bytes, const RxMeta& meta, const AuthExpect& auth) {
  // Rung 1, length. The IP header is authoritative: a shorter buffer is a
  // truncated datagram, a longer one carries link-layer padding.
  if (meta.ip_payload_len != 0) {
    if (bytes.size() < meta.ip_payload_len) return DecodeError::too_short;
    bytes = bytes.first(meta.ip_payload_len);
  }
  if (bytes.size() < kHeaderLen) return DecodeError::too_short;

  // Rung 2, version: RFC 5798 §7.1 "MUST verify that the VRRP version is 3";
  // we also accept 2 on IPv4 for keepalived's default (RFC 3768 §7.1).
  const uint8_t version = bytes[0] >> 4;
  if (version != 2 && version != 3) return DecodeError::bad_version;
  if (version == 2 && meta.family != Family::ipv4) return DecodeError::bad_version;

  // Rung 3, type: RFC 5798 §5.2.2 "A packet with unknown type MUST be discarded".
  if ((bytes[0] & 0x0f) != kAdvertisement) return DecodeError::bad_type;

  // Rung 4, TTL: RFC 3768 §7.1 / RFC 5798 §7.1 "MUST verify that the IP TTL
  // [IPv6 Hop Limit] is 255" -- proof the sender is on our link.
  if (meta.ttl != kRequiredTtl) return DecodeError::bad_ttl;

  // Rung 5, checksum. For v3 over IPv4 both forms are accepted (docs/design.md:
  // keepalived sends the pseudo-header form, RFC 9568 peers the other) and we
  // report which one matched so the status page can show what a peer uses.
  const uint16_t wire = uint16_t(bytes[kChecksumOffset] << 8 | bytes[kChecksumOffset + 1]);
  ChecksumForm form = ChecksumForm::message_only;
  if (version == 2) {
    if (compute_checksum(bytes, 2, meta.family, meta.src, meta.dst, form) != wire)
      return DecodeError::bad_checksum;
  } else if (compute_checksum(bytes, 3, meta.family, meta.src, meta.dst,
                              ChecksumForm::pseudo_header) == wire) {
    form = ChecksumForm::pseudo_header;
  } else if (meta.family == Family::ipv4 &&
             compute_checksum(bytes, 3, meta.family, meta.src, meta.dst,
                              ChecksumForm::message_only) == wire) {
    form = ChecksumForm::message_only;
  } else {
    return DecodeError::bad_checksum;
  }

  // Rung 6, address count vs length. RFC 5798 §7.1 only requires the length
  // to cover the header; we require the exact length the count implies, so
  // the addresses and the v2 auth data are where the count says (a mismatch
  // means the sender and we disagree on the format, or a forged count).
  const std::size_t addr_len = meta.family == Family::ipv4 ? 4 : 16;
  const std::size_t count = bytes[3];
  const std::size_t expected = kHeaderLen + count * addr_len + (version == 2 ? kV2AuthLen : 0);
  if (bytes.size() != expected) return DecodeError::bad_length;

  Advert a;
  a.version = version;
  a.type = bytes[0] & 0x0f;
  a.vrid = bytes[1];
  a.priority = bytes[2];
  a.count = bytes[3];
  if (version == 2) {
    a.auth_type = bytes[4];
    a.adver_int = bytes[5];
  } else {
    a.reserved = bytes[4] >> 4;
    a.adver_int = uint16_t((bytes[4] & 0x0f) << 8 | bytes[5]);
  }
  a.checksum = wire;
  a.checksum_form = form;

  // Rung 7, interval: a zero interval would make Master_Down_Interval equal
  // to the skew alone and the sender's adverts meaningless; no implementation
  // can be configured to send it (keepalived and FRR reject 0 too).
  if (a.adver_int == 0) return DecodeError::bad_interval;

  a.addresses.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    auto p = bytes.subspan(kHeaderLen + i * addr_len, addr_len);
    a.addresses.push_back(meta.family == Family::ipv4
                              ? IpAddress::v4(std::span<const uint8_t, 4>(p.data(), 4))
                              : IpAddress::v6(std::span<const uint8_t, 16>(p.data(), 16)));
  }

  // Rung 8, authentication (v2 only; RFC 5798 §9 removed it from v3).
  if (version == 2) {
    std::copy_n(bytes.end() - kV2AuthLen, kV2AuthLen, a.auth_data.begin());
    if (a.auth_type != static_cast<uint8_t>(auth.type)) return DecodeError::auth_type_mismatch;
    if (auth.type == AuthType::pass) {
      // Compare all 8 bytes without an early exit: the password is a
      // (weak) secret, no need to leak how much of it matched.
      auto want = pad_password(auth.password);
      uint8_t diff = 0;
      for (std::size_t i = 0; i < kV2AuthLen; ++i) diff |= uint8_t(want[i] ^ a.auth_data[i]);
      if (diff != 0) return DecodeError::auth_failure;
    }
  }
  return a;
}

std::string_view to_string(DecodeError e) {
  switch (e) {
    case DecodeError::too_short: return "too_short";
    case DecodeError::bad_version: return "bad_version";
    case DecodeError::bad_type: return "bad_type";
    case DecodeError::bad_ttl: return "bad_ttl";
    case DecodeError::bad_checksum: return "bad_checksum";
    case DecodeError::bad_length: return "bad_length";
    case DecodeError::bad_interval: return "bad_interval";
    case DecodeError::auth_type_mismatch: return "auth_type_mismatch";
    case DecodeError::auth_failure: return "auth_failure";
  }
  return "unknown";
}

InstanceMismatch check_instance(const Advert& a, uint8_t vrid, uint8_t version,
                                uint16_t v2_adver_int_seconds) {
  if (a.vrid != vrid) return InstanceMismatch::vrid;
  if (a.version != version) return InstanceMismatch::version;
  // RFC 3768 §7.1: v2 routers must agree on the interval. v3 instead lets a
  // backup learn the master's interval (RFC 5798 §6.4.2), so no check there.
  if (version == 2 && a.adver_int != v2_adver_int_seconds) return InstanceMismatch::adver_int;
  return InstanceMismatch::none;
}

bool same_addresses(std::span<const IpAddress> a, std::span<const IpAddress> b) {
  if (a.size() != b.size()) return false;
  std::vector<IpAddress> x(a.begin(), a.end()), y(b.begin(), b.end());
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  return x == y;
}

Intake classify_advert(const Advert& a, const InstanceExpect& e) {
  Intake in;
  if (a.vrid != e.vrid) return {InstanceMismatch::vrid, false};
  if (a.version != e.version) return {InstanceMismatch::version, false};
  in.addresses_differ = !same_addresses(a.addresses, e.addresses);
  // RFC 3768 §7.1 / RFC 5798 §7.1: only the address owner (priority 255)
  // may advertise another list and still be heard.
  if (in.addresses_differ && a.priority != kAddressOwnerPriority) return {InstanceMismatch::addresses, true};
  if (e.version == 2 && a.adver_int != e.v2_adver_int_seconds) return {InstanceMismatch::adver_int, in.addresses_differ};
  return in;
}

std::string_view to_string(InstanceMismatch m) {
  switch (m) {
    case InstanceMismatch::none: return "none";
    case InstanceMismatch::vrid: return "vrid";
    case InstanceMismatch::version: return "version";
    case InstanceMismatch::adver_int: return "adver_int";
    case InstanceMismatch::addresses: return "addresses";
  }
  return "unknown";
}

}  // namespace vrrp
