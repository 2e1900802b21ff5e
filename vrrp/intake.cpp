#include "vrrp/intake.h"

#include <algorithm>

#include "vrrp/frame.h"

namespace vrrp {

std::string_view to_string(Drop d) {
  switch (d) {
#define VIPPROXY_VRRP_DROP_NAME(name, help) \
  case Drop::name: return #name;
    VIPPROXY_VRRP_DROPS(VIPPROXY_VRRP_DROP_NAME)
#undef VIPPROXY_VRRP_DROP_NAME
  }
  return "?";
}

uint64_t& counter(Drops& drops, Drop d) {
  switch (d) {
#define VIPPROXY_VRRP_DROP_FIELD(name, help) \
  case Drop::name: return drops.name;
    VIPPROXY_VRRP_DROPS(VIPPROXY_VRRP_DROP_FIELD)
#undef VIPPROXY_VRRP_DROP_FIELD
  }
  return drops.bad_ip_header;  // not reached: every Drop names a field
}

namespace {

// DecodeError and Drop share the codec's rung names.
Drop drop_of(DecodeError e) {
  switch (e) {
    case DecodeError::too_short: return Drop::too_short;
    case DecodeError::bad_version: return Drop::bad_version;
    case DecodeError::bad_type: return Drop::bad_type;
    case DecodeError::bad_ttl: return Drop::bad_ttl;
    case DecodeError::bad_checksum: return Drop::bad_checksum;
    case DecodeError::bad_length: return Drop::bad_length;
    case DecodeError::bad_interval: return Drop::bad_interval;
    case DecodeError::auth_type_mismatch: return Drop::auth_type_mismatch;
    case DecodeError::auth_failure: return Drop::auth_failure;
  }
  return Drop::too_short;
}

}  // namespace

IntakeDecision classify(const Received& rx, const IntakeConfig& c) {
  using Kind = IntakeDecision::Kind;
  IntakeDecision d;

  // The IP layer: an IPv4 raw socket keeps the header (read here), the IPv6
  // channel says what recvmsg said. Another family than the instance's is
  // not for us.
  std::span<const uint8_t> message;
  RxMeta meta;
  if (rx.meta) {
    if (rx.meta->family != c.family) return d;
    meta = *rx.meta;
    message = rx.bytes;
  } else {
    if (c.family != Family::ipv4) return d;
    auto ip = parse_ipv4(rx.bytes);
    if (!ip.header) return d;
    meta = ip.header->rx_meta();
    message = ip.header->payload;
  }
  d.src = meta.src;

  auto decoded = decode(message, meta, c.auth);
  if (!decoded) {
    d.reason = drop_of(decoded.error());
    return d;
  }
  d.advert = *decoded;
  d.intake = classify_advert(*decoded, c.expect);
  switch (d.intake.drop) {
    case InstanceMismatch::none: break;
    case InstanceMismatch::vrid: d.kind = Kind::other_vrid; return d;
    case InstanceMismatch::version: d.kind = Kind::misconfigured; d.reason = Drop::version_mismatch; return d;
    case InstanceMismatch::adver_int: d.kind = Kind::misconfigured; d.reason = Drop::adver_int_mismatch; return d;
    case InstanceMismatch::addresses: d.kind = Kind::misconfigured; d.reason = Drop::address_mismatch; return d;
  }
  d.owner_lists_other_addresses = d.intake.addresses_differ;
  // Our sockets do not loop our own multicast back (IP_MULTICAST_LOOP 0),
  // so this is the network reflecting our adverts, or another router
  // sending from our address: never a peer to elect against (the tie-break
  // of RFC 5798 §6.4.3 cannot order equal addresses).
  if (c.self && meta.src == *c.self) {
    d.kind = Kind::own;
    d.reason = Drop::own_address;
    return d;
  }
  // A unicast instance speaks only with its configured peers (keepalived
  // does the same): a stray or spoofed advert from any other address is
  // dropped before it can touch the state machine.
  if (c.unicast && std::find(c.peers.begin(), c.peers.end(), meta.src) == c.peers.end()) {
    d.reason = Drop::not_unicast_peer;
    return d;
  }
  d.kind = Kind::accept;
  return d;
}

}  // namespace vrrp
