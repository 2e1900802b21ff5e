// Over 500 lines: one test binary per component, a case per captured packet and validation rung.
// VRRP codec against real bytes: the keepalived 2.2.7 captures in
// tests/fixtures/vrrp (see the README there for the expected values), plus
// one crafted packet per validation rung.
#define BOOST_TEST_MODULE vrrp_codec
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <ostream>
#include <string>

#include "pcap_reader.h"
#include "vrrp/checksum.h"
#include "vrrp/codec.h"
#include "vrrp/frame.h"
#include "vrrp/foreign.h"
#include "vrrp/fsm.h"
#include "vrrp/garp.h"

// Printers for Boost.Test failure messages.
namespace vrrp {
std::ostream& operator<<(std::ostream& o, const IpAddress& a) { return o << a.to_string(); }
std::ostream& operator<<(std::ostream& o, DecodeError e) { return o << to_string(e); }
std::ostream& operator<<(std::ostream& o, InstanceMismatch e) { return o << to_string(e); }
std::ostream& operator<<(std::ostream& o, ChecksumForm f) {
  return o << (f == ChecksumForm::pseudo_header ? "pseudo_header" : "message_only");
}
std::ostream& operator<<(std::ostream& o, Ipv4Error e) { return o << int(e); }
std::ostream& operator<<(std::ostream& o, const MacAddress& m) {
  for (auto b : m) o << std::hex << int(b) << ':';
  return o << std::dec;
}
}  // namespace vrrp

using namespace vrrp;
using namespace std::chrono_literals;

namespace {

const std::string kFixtures = std::string(VIPPROXY_SOURCE_DIR) + "/tests/fixtures/vrrp/";
constexpr MacAddress kMacA{0x02, 0x88, 0x01, 0x00, 0x01, 0x51};
constexpr MacAddress kMacB{0x02, 0x88, 0x01, 0x00, 0x01, 0x52};
constexpr MacAddress kVrrpMcastMac{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12};
constexpr IpAddress kNodeA = IpAddress::v4(10, 88, 1, 151);
constexpr IpAddress kNodeB = IpAddress::v4(10, 88, 1, 152);
constexpr IpAddress kVip = IpAddress::v4(10, 88, 1, 160);
const AuthExpect kPass{AuthType::pass, "BacChaME"};

using Bytes = std::vector<uint8_t>;

// One captured VRRP packet taken apart the way the raw-socket receive path
// will do it: Ethernet -> IPv4 header -> VRRP message + RxMeta.
struct Captured {
  pcap::Packet pkt;
  MacAddress src_mac, dst_mac;
  Ipv4Header ip;
  Bytes vrrp;
  RxMeta meta;
};

std::vector<Captured> load_vrrp(const std::string& name) {
  auto file = pcap::read(kFixtures + name);
  BOOST_REQUIRE_EQUAL(file.linktype, 1u);
  std::vector<Captured> out;
  for (auto& p : file.packets) {
    Captured c;
    c.pkt = p;
    std::copy_n(p.data.begin(), 6, c.dst_mac.begin());
    std::copy_n(p.data.begin() + 6, 6, c.src_mac.begin());
    auto payload = ethernet_ipv4_payload(c.pkt.data);
    BOOST_REQUIRE(payload);
    auto parsed = parse_ipv4(*payload);
    BOOST_REQUIRE(parsed.header);
    c.ip = *parsed.header;
    c.vrrp.assign(c.ip.payload.begin(), c.ip.payload.end());
    c.meta = c.ip.rx_meta();
    out.push_back(std::move(c));
  }
  return out;
}

Bytes reencode(const Advert& a, const RxMeta& m) {
  return encode(a, EncodeOpts{m.family, m.src, m.dst, a.checksum_form});
}

// Rewrites the checksum of a crafted packet so the packet gets past the
// checksum rung and reaches the rung under test.
void fix_checksum(Bytes& b, const RxMeta& m, ChecksumForm form = ChecksumForm::pseudo_header) {
  uint16_t c = compute_checksum(b, b[0] >> 4, m.family, m.src, m.dst, form);
  b[6] = uint8_t(c >> 8);
  b[7] = uint8_t(c);
}

// Boost.Test builds the message even when the check passes.
std::string_view why(const DecodeResult& r) { return r.ok() ? "ok" : to_string(r.error()); }

double seconds_between(const pcap::Packet& a, const pcap::Packet& b) {
  return std::chrono::duration<double>(b.ts - a.ts).count();
}

// A known-good v2 packet to mutate: packet #1 of vrrpv2-pass-adverts.pcap.
Captured v2_sample() { return load_vrrp("vrrpv2-pass-adverts.pcap").at(0); }

}  // namespace

BOOST_AUTO_TEST_SUITE(golden_vectors)

BOOST_AUTO_TEST_CASE(vrrpv2_pass_adverts) {
  auto pkts = load_vrrp("vrrpv2-pass-adverts.pcap");
  BOOST_REQUIRE_EQUAL(pkts.size(), 4u);
  for (std::size_t i = 0; i < pkts.size(); ++i) {
    auto& c = pkts[i];
    BOOST_TEST_CONTEXT("packet #" << i + 1) {
      BOOST_TEST(c.pkt.data.size() == 54u);  // unpadded veth frame
      BOOST_TEST(c.src_mac == kMacA);        // node's own MAC, not the VMAC
      BOOST_TEST(c.dst_mac == kVrrpMcastMac);
      BOOST_TEST(c.ip.tos == 0xc0);
      BOOST_TEST(c.ip.ttl == 255);
      BOOST_TEST(c.ip.src == kNodeA);
      BOOST_TEST(c.ip.dst == kVrrpGroupV4);
      BOOST_TEST(c.ip.id == i + 1);  // "IP ID counts up from 1 per sender"
      auto r = decode(c.vrrp, c.meta, kPass);
      BOOST_REQUIRE_MESSAGE(r.ok(), "decode: " << why(r));
      BOOST_TEST(r->version == 2);
      BOOST_TEST(r->type == 1);
      BOOST_TEST(r->vrid == 51);
      BOOST_TEST(r->priority == 100);
      BOOST_TEST(r->count == 1);
      BOOST_TEST(r->auth_type == 1);
      BOOST_TEST(r->adver_int == 1);
      BOOST_TEST(r->checksum == 0x1287);
      BOOST_TEST(r->checksum_form == ChecksumForm::message_only);
      BOOST_REQUIRE_EQUAL(r->addresses.size(), 1u);
      BOOST_TEST(r->addresses[0] == kVip);
      BOOST_TEST(std::string(r->auth_data.begin(), r->auth_data.end()) == "BacChaME");
      BOOST_TEST(reencode(*r, c.meta) == c.vrrp, boost::test_tools::per_element());
      // The whole frame, as keepalived put it on the wire.
      auto frame = build_ipv4_frame(kMacA, Ipv4Params{kNodeA, kVrrpGroupV4, 0xc0, 255, c.ip.id},
                                    reencode(*r, c.meta));
      BOOST_TEST(frame == c.pkt.data, boost::test_tools::per_element());
    }
  }
  BOOST_TEST(seconds_between(pkts[0].pkt, pkts[1].pkt) == 1.0, boost::test_tools::tolerance(0.02));
}

BOOST_AUTO_TEST_CASE(vrrpv2_failover_priority_zero) {
  auto pkts = load_vrrp("vrrpv2-failover-prio0.pcap");
  BOOST_REQUIRE_EQUAL(pkts.size(), 4u);
  const uint8_t prio[] = {100, 0, 50, 50};
  const uint16_t csum[] = {0x1287, 0x7687, 0x4487, 0x4487};
  const IpAddress src[] = {kNodeA, kNodeA, kNodeB, kNodeB};
  const MacAddress mac[] = {kMacA, kMacA, kMacB, kMacB};
  for (std::size_t i = 0; i < 4; ++i) {
    BOOST_TEST_CONTEXT("packet #" << i + 1) {
      auto& c = pkts[i];
      auto r = decode(c.vrrp, c.meta, kPass);
      BOOST_REQUIRE_MESSAGE(r.ok(), "decode: " << why(r));
      BOOST_TEST(r->vrid == 51);
      BOOST_TEST(r->priority == prio[i]);
      BOOST_TEST(r->checksum == csum[i]);
      BOOST_TEST(c.ip.src == src[i]);
      BOOST_TEST(c.src_mac == mac[i]);
      BOOST_TEST(r->adver_int == 1);
      BOOST_TEST(reencode(*r, c.meta) == c.vrrp, boost::test_tools::per_element());
    }
  }
  // B (priority 50) took over one skew time after the priority-0 advert:
  // RFC 3768 §6.1 Skew_Time = (256 - 50) / 256 s = 0.805 s; the capture
  // shows 0.809 s. Cross-checks our fsm's arithmetic against keepalived.
  fsm::Config b;
  b.version = 2;
  b.priority = 50;
  const double skew = std::chrono::duration<double>(fsm::skew_time(b, 50, 1s)).count();
  BOOST_TEST(skew == 206.0 / 256.0, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(seconds_between(pkts[1].pkt, pkts[2].pkt) == skew, boost::test_tools::tolerance(0.02));
}

void check_v3(const std::string& file, uint16_t interval_cs, uint16_t csum, double gap) {
  auto pkts = load_vrrp(file);
  BOOST_REQUIRE_EQUAL(pkts.size(), 4u);
  for (auto& c : pkts) {
    BOOST_TEST(c.pkt.data.size() == 46u);
    BOOST_TEST(c.vrrp.size() == 12u);  // no auth field in v3
    auto r = decode(c.vrrp, c.meta);   // v3 ignores any auth expectation
    BOOST_REQUIRE_MESSAGE(r.ok(), "decode: " << why(r));
    BOOST_TEST(r->version == 3);
    BOOST_TEST(r->type == 1);
    BOOST_TEST(r->vrid == 51);
    BOOST_TEST(r->priority == 100);
    BOOST_TEST(r->count == 1);
    BOOST_TEST(r->reserved == 0);
    BOOST_TEST(r->adver_int == interval_cs);
    BOOST_TEST(r->checksum == csum);
    // keepalived's form: the IPv4 pseudo-header is included (RFC 5798 §5.2.8).
    BOOST_TEST(r->checksum_form == ChecksumForm::pseudo_header);
    BOOST_TEST(r->addresses.at(0) == kVip);
    BOOST_TEST(reencode(*r, c.meta) == c.vrrp, boost::test_tools::per_element());
    auto frame = build_ipv4_frame(kMacA, Ipv4Params{kNodeA, kVrrpGroupV4, 0xc0, 255, c.ip.id},
                                  reencode(*r, c.meta));
    BOOST_TEST(frame == c.pkt.data, boost::test_tools::per_element());
  }
  BOOST_TEST(seconds_between(pkts[0].pkt, pkts[1].pkt) == gap, boost::test_tools::tolerance(0.05));
}

BOOST_AUTO_TEST_CASE(vrrpv3_adverts_1s) { check_v3("vrrpv3-adverts-1s.pcap", 100, 0x71f1, 1.0); }
BOOST_AUTO_TEST_CASE(vrrpv3_adverts_100ms) { check_v3("vrrpv3-adverts-100ms.pcap", 10, 0x724b, 0.1); }

BOOST_AUTO_TEST_CASE(garp_master_transition) {
  auto file = pcap::read(kFixtures + "garp-master-transition.pcap");
  BOOST_REQUIRE_EQUAL(file.linktype, 1u);
  BOOST_REQUIRE_EQUAL(file.packets.size(), 10u);
  auto garp = build_garp(kMacA, kVip);
  for (std::size_t i = 0; i < file.packets.size(); ++i) {
    BOOST_TEST_CONTEXT("frame #" << i + 1) {
      Bytes expected(garp.begin(), garp.end());
      BOOST_TEST(file.packets[i].data == expected, boost::test_tools::per_element());
    }
  }
  // keepalived defaults: 5 at once, 5 more garp_master_delay (5 s) later.
  BOOST_TEST(seconds_between(file.packets[0], file.packets[4]) < 0.01);
  BOOST_TEST(seconds_between(file.packets[0], file.packets[5]) == 5.0,
             boost::test_tools::tolerance(0.01));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(checksum_forms)

BOOST_AUTO_TEST_CASE(v3_ipv4_accepts_both_forms_and_reports_which) {
  auto c = load_vrrp("vrrpv3-adverts-1s.pcap").at(0);
  auto keepalived = decode(c.vrrp, c.meta);
  BOOST_REQUIRE(keepalived.ok());

  // The same advert as an RFC 9568 peer (or FRR with
  // `no checksum-with-ipv4-pseudoheader`) sends it: message-only checksum.
  Advert a = *keepalived;
  Bytes rfc9568 = encode(a, EncodeOpts{Family::ipv4, kNodeA, kVrrpGroupV4, ChecksumForm::message_only});
  BOOST_TEST(rfc9568 != c.vrrp);
  const uint16_t wire = uint16_t(rfc9568[6] << 8 | rfc9568[7]);
  BOOST_TEST(wire == 0x5e6f);  // computed independently (python) from the same bytes
  BOOST_TEST(checksum::of(rfc9568) == 0);  // verifies over the message alone

  auto r = decode(rfc9568, c.meta);
  BOOST_REQUIRE_MESSAGE(r.ok(), "decode: " << why(r));
  BOOST_TEST(r->checksum_form == ChecksumForm::message_only);
  BOOST_TEST(reencode(*r, c.meta) == rfc9568, boost::test_tools::per_element());

  // Neither form: rejected.
  rfc9568[7] ^= 0x01;
  auto bad = decode(rfc9568, c.meta);
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.error() == DecodeError::bad_checksum);
}

BOOST_AUTO_TEST_CASE(v3_pseudo_header_depends_on_addresses) {
  // The pseudo-header includes src and dst: the same message from another
  // source must not verify (what keepalived issue #642 got wrong for unicast).
  auto c = load_vrrp("vrrpv3-adverts-1s.pcap").at(0);
  RxMeta m = c.meta;
  m.src = kNodeB;
  auto r = decode(c.vrrp, m);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error() == DecodeError::bad_checksum);
}

BOOST_AUTO_TEST_CASE(v3_ipv6_round_trip_requires_pseudo_header) {
  Advert a;
  a.version = 3;
  a.vrid = 7;
  a.priority = 200;
  a.adver_int = 4095;  // 12-bit maximum
  a.addresses = {*IpAddress::parse("fe80::1"), *IpAddress::parse("2001:db8::160")};
  const IpAddress src = *IpAddress::parse("fe80::151");
  const IpAddress dst = *IpAddress::parse("ff02::12");  // RFC 5798 §5.1.2.2
  Bytes b = encode(a, EncodeOpts{Family::ipv6, src, dst, ChecksumForm::message_only});
  BOOST_TEST(b.size() == 8u + 2 * 16);
  RxMeta m{Family::ipv6, src, dst, 255, b.size()};
  auto r = decode(b, m);
  BOOST_REQUIRE_MESSAGE(r.ok(), "decode: " << why(r));
  BOOST_TEST(r->adver_int == 4095);
  BOOST_TEST(r->checksum_form == ChecksumForm::pseudo_header);  // IPv6 has no other form
  BOOST_TEST(r->addresses == a.addresses, boost::test_tools::per_element());
  BOOST_TEST(reencode(*r, m) == b, boost::test_tools::per_element());

  // A message-only checksum is never valid over IPv6.
  Bytes wrong = b;
  wrong[6] = wrong[7] = 0;
  uint16_t mo = checksum::of(wrong);
  wrong[6] = uint8_t(mo >> 8);
  wrong[7] = uint8_t(mo);
  auto bad = decode(wrong, m);
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.error() == DecodeError::bad_checksum);
}

BOOST_AUTO_TEST_CASE(v3_reserved_bits_survive_round_trip) {
  auto c = load_vrrp("vrrpv3-adverts-1s.pcap").at(0);
  Bytes b = c.vrrp;
  b[4] |= 0xa0;  // RFC 5798 §5.2.5: reserved, ignored on receive
  fix_checksum(b, c.meta);
  auto r = decode(b, c.meta);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->reserved == 0xa);
  BOOST_TEST(r->adver_int == 100);
  BOOST_TEST(reencode(*r, c.meta) == b, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(validation_rungs)

BOOST_AUTO_TEST_CASE(sample_is_valid) {
  auto c = v2_sample();
  BOOST_TEST(decode(c.vrrp, c.meta, kPass).ok());
}

BOOST_AUTO_TEST_CASE(too_short) {
  auto c = v2_sample();
  Bytes b(c.vrrp.begin(), c.vrrp.begin() + 7);
  RxMeta m = c.meta;
  m.ip_payload_len = 0;
  BOOST_TEST(decode(b, m, kPass).error() == DecodeError::too_short);
  // The IP header claims 20 bytes but only 19 arrived.
  Bytes t(c.vrrp.begin(), c.vrrp.end() - 1);
  BOOST_TEST(decode(t, c.meta, kPass).error() == DecodeError::too_short);
  BOOST_TEST(decode({}, m, kPass).error() == DecodeError::too_short);
}

BOOST_AUTO_TEST_CASE(bad_version) {
  auto c = v2_sample();
  Bytes b = c.vrrp;
  b[0] = 0x41;  // version 4; the checksum is now wrong too, but version comes first
  BOOST_TEST(decode(b, c.meta, kPass).error() == DecodeError::bad_version);
  b[0] = 0x11;  // version 1 (RFC 2338 had v2 as its first version number)
  BOOST_TEST(decode(b, c.meta, kPass).error() == DecodeError::bad_version);
  // VRRPv2 exists only for IPv4 (RFC 3768).
  RxMeta m6{Family::ipv6, *IpAddress::parse("fe80::1"), *IpAddress::parse("ff02::12"), 255, 0};
  BOOST_TEST(decode(c.vrrp, m6, kPass).error() == DecodeError::bad_version);
}

BOOST_AUTO_TEST_CASE(bad_type) {
  auto c = v2_sample();
  Bytes b = c.vrrp;
  b[0] = 0x22;  // version 2, type 2
  BOOST_TEST(decode(b, c.meta, kPass).error() == DecodeError::bad_type);
}

BOOST_AUTO_TEST_CASE(bad_ttl) {
  auto c = v2_sample();
  RxMeta m = c.meta;
  m.ttl = 254;  // one router hop away: not on our link (RFC 3768 §7.1)
  BOOST_TEST(decode(c.vrrp, m, kPass).error() == DecodeError::bad_ttl);
  // TTL is checked before the checksum.
  Bytes b = c.vrrp;
  b[7] ^= 0xff;
  BOOST_TEST(decode(b, m, kPass).error() == DecodeError::bad_ttl);
}

BOOST_AUTO_TEST_CASE(bad_checksum) {
  auto c = v2_sample();
  Bytes b = c.vrrp;
  b[7] ^= 0x01;  // flipped checksum byte
  BOOST_TEST(decode(b, c.meta, kPass).error() == DecodeError::bad_checksum);
  Bytes d = c.vrrp;
  d[2] = 101;    // payload changed under a valid-looking checksum
  BOOST_TEST(decode(d, c.meta, kPass).error() == DecodeError::bad_checksum);
}

BOOST_AUTO_TEST_CASE(address_count_vs_length) {
  auto c = v2_sample();
  Bytes b = c.vrrp;
  b[3] = 2;  // count 2 with one address
  fix_checksum(b, c.meta);
  BOOST_TEST(decode(b, c.meta, kPass).error() == DecodeError::bad_length);
  b[3] = 0;  // count 0 with one address
  fix_checksum(b, c.meta);
  BOOST_TEST(decode(b, c.meta, kPass).error() == DecodeError::bad_length);
  // v3: count 1 but no address at all.
  auto v3 = load_vrrp("vrrpv3-adverts-1s.pcap").at(0);
  Bytes s(v3.vrrp.begin(), v3.vrrp.begin() + 8);
  RxMeta m = v3.meta;
  m.ip_payload_len = s.size();
  fix_checksum(s, m);
  BOOST_TEST(decode(s, m).error() == DecodeError::bad_length);
}

BOOST_AUTO_TEST_CASE(bad_interval) {
  auto c = v2_sample();
  Bytes b = c.vrrp;
  b[5] = 0;  // Adver Int 0
  fix_checksum(b, c.meta);
  BOOST_TEST(decode(b, c.meta, kPass).error() == DecodeError::bad_interval);
  auto v3 = load_vrrp("vrrpv3-adverts-100ms.pcap").at(0);
  Bytes d = v3.vrrp;
  d[4] = 0;
  d[5] = 0;
  fix_checksum(d, v3.meta);
  BOOST_TEST(decode(d, v3.meta).error() == DecodeError::bad_interval);
}

BOOST_AUTO_TEST_CASE(auth_type_mismatch) {
  auto c = v2_sample();
  BOOST_TEST(decode(c.vrrp, c.meta, AuthExpect{}).error() == DecodeError::auth_type_mismatch);
  // And the other way: we expect PASS, the peer sends no authentication.
  Advert a = *decode(c.vrrp, c.meta, kPass);
  a.auth_type = 0;
  a.auth_data = {};
  Bytes none = reencode(a, c.meta);
  BOOST_TEST(decode(none, c.meta, kPass).error() == DecodeError::auth_type_mismatch);
  BOOST_TEST(decode(none, c.meta, AuthExpect{}).ok());
}

BOOST_AUTO_TEST_CASE(auth_failure) {
  auto c = v2_sample();
  BOOST_TEST(decode(c.vrrp, c.meta, AuthExpect{AuthType::pass, "BacChaMX"}).error() ==
             DecodeError::auth_failure);
  BOOST_TEST(decode(c.vrrp, c.meta, AuthExpect{AuthType::pass, "BacCha"}).error() ==
             DecodeError::auth_failure);
  // keepalived uses the first 8 bytes only: a longer password still matches.
  BOOST_TEST(decode(c.vrrp, c.meta, AuthExpect{AuthType::pass, "BacChaME-and-more"}).ok());
}

BOOST_AUTO_TEST_CASE(short_password_is_nul_padded) {
  auto c = v2_sample();
  Advert a = *decode(c.vrrp, c.meta, kPass);
  a.auth_data = {'s', 'e', 'c', 'r', 'e', 't', 0, 0};
  Bytes b = reencode(a, c.meta);
  BOOST_TEST(decode(b, c.meta, AuthExpect{AuthType::pass, "secret"}).ok());
  BOOST_TEST(decode(b, c.meta, AuthExpect{AuthType::pass, "secretX"}).error() ==
             DecodeError::auth_failure);
}

BOOST_AUTO_TEST_CASE(padded_frame_is_cut_at_ip_total_length) {
  // On a real NIC the 54-byte frame arrives padded to 60 bytes.
  auto c = v2_sample();
  Bytes frame = c.pkt.data;
  frame.resize(60, 0);
  auto ip = parse_ipv4(*ethernet_ipv4_payload(frame));
  BOOST_REQUIRE(ip.header);
  BOOST_TEST(ip.header->payload.size() == 20u);
  auto r = decode(ip.header->payload, ip.header->rx_meta(), kPass);
  BOOST_TEST(r.ok());
  // Handing decode the padded bytes with the IP length also works.
  Bytes padded = c.vrrp;
  padded.resize(26, 0);
  BOOST_TEST(decode(padded, c.meta, kPass).ok());
}

BOOST_AUTO_TEST_CASE(ipv4_header_errors) {
  auto c = v2_sample();
  Bytes ip(c.pkt.data.begin() + 14, c.pkt.data.end());
  BOOST_TEST(parse_ipv4(ip).header.has_value());
  BOOST_TEST(parse_ipv4(std::span<const uint8_t>(ip).first(19)).error == Ipv4Error::too_short);
  Bytes b = ip;
  b[0] = 0x65;
  BOOST_TEST(parse_ipv4(b).error == Ipv4Error::not_ipv4);
  b = ip;
  b[0] = 0x44;
  BOOST_TEST(parse_ipv4(b).error == Ipv4Error::bad_header_len);
  b = ip;
  b[9] = 6;
  BOOST_TEST(parse_ipv4(b).error == Ipv4Error::not_vrrp);
  b = ip;
  b[3] = 41;  // total length beyond the buffer: truncated
  BOOST_TEST(parse_ipv4(b).error == Ipv4Error::too_short);
  b = ip;
  b[3] = 19;
  BOOST_TEST(parse_ipv4(b).error == Ipv4Error::bad_total_len);
  b = ip;
  b[0] = 0x46;  // 4 bytes of options: header 24 > total 40 still fine, payload 16
  auto opt = parse_ipv4(b);
  BOOST_REQUIRE(opt.header);
  BOOST_TEST(opt.header->payload.size() == 16u);
}

BOOST_AUTO_TEST_CASE(instance_checks_are_separate_from_decode) {
  auto c = v2_sample();
  Advert a = *decode(c.vrrp, c.meta, kPass);
  BOOST_TEST(check_instance(a, 51, 2, 1) == InstanceMismatch::none);
  BOOST_TEST(check_instance(a, 52, 2, 1) == InstanceMismatch::vrid);
  BOOST_TEST(check_instance(a, 51, 3, 1) == InstanceMismatch::version);
  BOOST_TEST(check_instance(a, 51, 2, 2) == InstanceMismatch::adver_int);
  auto v3 = load_vrrp("vrrpv3-adverts-100ms.pcap").at(0);
  Advert b = *decode(v3.vrrp, v3.meta);
  BOOST_TEST(check_instance(b, 51, 3, 1) == InstanceMismatch::none);  // v3 learns the interval
}

BOOST_AUTO_TEST_SUITE_END()

// RFC 3768 §7.1 / RFC 5798 §7.1 per-instance intake (classify_advert), from
// keepalived's own adverts: each row edits one field of a captured packet on
// the wire (checksum fixed up), decodes it again and classifies it against a
// configured instance.
BOOST_AUTO_TEST_SUITE(intake)

struct Edit {
  int priority = -1;                   // new priority byte, -1: keep
  std::vector<IpAddress> addresses;    // new address list, empty: keep
  int adver_int = -1;                  // new v2 Adver Int byte, -1: keep
};

// The captured message with `e` applied, decoded again (so the row is real
// bytes through the real decoder, not a hand-built Advert).
Advert edited(const Captured& c, const Edit& e) {
  Bytes b = c.vrrp;
  const bool v2 = (b[0] >> 4) == 2;
  if (e.priority >= 0) b[2] = uint8_t(e.priority);
  if (e.adver_int >= 0) b[5] = uint8_t(e.adver_int);
  if (!e.addresses.empty()) {
    Bytes auth = v2 ? Bytes(b.end() - kV2AuthLen, b.end()) : Bytes{};
    b.resize(kHeaderLen);
    b[3] = uint8_t(e.addresses.size());
    for (const auto& a : e.addresses) b.insert(b.end(), a.raw().begin(), a.raw().end());
    b.insert(b.end(), auth.begin(), auth.end());
  }
  RxMeta m = c.meta;
  m.ip_payload_len = b.size();
  fix_checksum(b, m, c.meta.family == Family::ipv4 && !v2 ? ChecksumForm::pseudo_header : ChecksumForm::message_only);
  auto d = decode(b, m, v2 ? kPass : AuthExpect{});
  BOOST_REQUIRE_MESSAGE(d.ok(), why(d));
  return *d;
}

constexpr IpAddress kOtherVip = IpAddress::v4(10, 88, 1, 170);  // the foreign cluster's VIP
constexpr IpAddress kSecondVip = IpAddress::v4(10, 88, 1, 161);

BOOST_AUTO_TEST_CASE(classify_table_from_captures) {
  const auto v2 = v2_sample();                                       // VRID 51, prio 100, 1 s, [.160]
  const auto v3 = load_vrrp("vrrpv3-adverts-100ms.pcap").at(0);      // VRID 51, prio 100, 10 cs, [.160]
  const auto v2_prio0 = load_vrrp("vrrpv2-failover-prio0.pcap").at(1);  // A leaving: priority 0
  BOOST_REQUIRE(decode(v2_prio0.vrrp, v2_prio0.meta, kPass)->priority == 0);
  const std::vector<IpAddress> ours{kVip}, two{kVip, kSecondVip}, two_reversed{kSecondVip, kVip},
      foreign{kOtherVip};
  struct Row {
    const char* name;
    const Captured* cap;
    Edit edit;
    InstanceExpect expect;
    InstanceMismatch drop;
    bool differ;
  };
  const Row rows[] = {
      {"v2 same list", &v2, {}, {51, 2, 1, ours}, InstanceMismatch::none, false},
      {"v3 same list", &v3, {}, {51, 3, 1, ours}, InstanceMismatch::none, false},
      {"other VRID", &v2, {}, {52, 2, 1, ours}, InstanceMismatch::vrid, false},
      {"other version", &v3, {}, {51, 2, 1, ours}, InstanceMismatch::version, false},
      // A foreign keepalived pair on VRID 51 with its own VIP and a higher
      // priority: the case that used to make our master step down.
      {"v2 foreign list, priority 200", &v2, {200, {kOtherVip}}, {51, 2, 1, ours}, InstanceMismatch::addresses, true},
      {"v3 foreign list, priority 200", &v3, {200, {kOtherVip}}, {51, 3, 1, ours}, InstanceMismatch::addresses, true},
      {"v3 foreign list, priority 254", &v3, {254, {kOtherVip}}, {51, 3, 1, ours}, InstanceMismatch::addresses, true},
      // A foreign master leaving must not give us a Skew_Time takeover either.
      {"v2 foreign list, priority 0", &v2_prio0, {-1, {kOtherVip}}, {51, 2, 1, ours}, InstanceMismatch::addresses, true},
      {"v2 priority 0, same list", &v2_prio0, {}, {51, 2, 1, ours}, InstanceMismatch::none, false},
      // Subset and superset are other lists too (keepalived: count first).
      {"advert lists one more", &v3, {-1, two}, {51, 3, 1, ours}, InstanceMismatch::addresses, true},
      {"advert lists one fewer", &v3, {}, {51, 3, 1, two}, InstanceMismatch::addresses, true},
      {"same set, other order", &v3, {-1, two_reversed}, {51, 3, 1, two}, InstanceMismatch::none, false},
      // RFC §7.1: the address owner (255) continues with another list.
      {"owner, foreign list", &v3, {255, {kOtherVip}}, {51, 3, 1, ours}, InstanceMismatch::none, true},
      {"owner, v2 foreign list", &v2, {255, {kOtherVip}}, {51, 2, 1, ours}, InstanceMismatch::none, true},
      // ... but the v2 interval rule still applies to it.
      {"owner, v2 other interval", &v2, {255, {kOtherVip}, 2}, {51, 2, 1, ours}, InstanceMismatch::adver_int, true},
      {"v2 other interval", &v2, {-1, {}, 3}, {51, 2, 1, ours}, InstanceMismatch::adver_int, false},
      // RFC 3768 §7.1 order: the address list before the interval.
      {"v2 other list and interval", &v2, {200, {kOtherVip}, 3}, {51, 2, 1, ours}, InstanceMismatch::addresses, true},
      // v3 learns the master's interval (RFC 5798 §6.4.2): never a mismatch.
      {"v3 other interval", &v3, {}, {51, 3, 3, ours}, InstanceMismatch::none, false},
  };
  for (const auto& r : rows) {
    BOOST_TEST_CONTEXT(r.name) {
      const Advert a = edited(*r.cap, r.edit);
      const Intake in = classify_advert(a, r.expect);
      BOOST_TEST(in.drop == r.drop);
      BOOST_TEST(in.addresses_differ == r.differ);
      // The older entry point agrees where it has an opinion.
      if (r.drop != InstanceMismatch::addresses && !r.differ)
        BOOST_TEST(check_instance(a, r.expect.vrid, r.expect.version, r.expect.v2_adver_int_seconds) == r.drop);
    }
  }
}

BOOST_AUTO_TEST_CASE(same_addresses_is_order_insensitive_and_counts) {
  const std::vector<IpAddress> a{kVip, kSecondVip}, b{kSecondVip, kVip}, c{kVip, kVip}, d{kVip};
  BOOST_TEST(same_addresses(a, b));
  BOOST_TEST(!same_addresses(a, c));
  BOOST_TEST(!same_addresses(a, d));
  BOOST_TEST(same_addresses(std::vector<IpAddress>{}, std::vector<IpAddress>{}));
}

BOOST_AUTO_TEST_CASE(foreign_routers_log_once_then_once_a_minute_per_sender) {
  using namespace std::chrono;
  const auto cap = v2_sample();
  const Advert foreign = edited(cap, {200, {kOtherVip}});
  ForeignRouters t;
  const steady_clock::time_point t0{hours(1)};
  auto r = t.record(kNodeB, foreign, InstanceMismatch::addresses, false, t0);
  BOOST_TEST(r.tracked);
  BOOST_TEST(r.log);  // the first one at once
  BOOST_TEST(r.suppressed == 0u);
  for (int i = 1; i < 59; ++i) BOOST_TEST(!t.record(kNodeB, foreign, InstanceMismatch::addresses, false, t0 + seconds(i)).log);
  r = t.record(kNodeB, foreign, InstanceMismatch::addresses, false, t0 + seconds(60));
  BOOST_TEST(r.log);
  BOOST_TEST(r.suppressed == 58u);
  // Another sender is news at once; so is a change of what is wrong.
  BOOST_TEST(t.record(kNodeA, foreign, InstanceMismatch::addresses, false, t0 + seconds(61)).log);
  const Advert slower = edited(cap, {-1, {}, 2});
  BOOST_TEST(t.record(kNodeB, slower, InstanceMismatch::adver_int, false, t0 + seconds(62)).log);
  BOOST_REQUIRE(t.all().size() == 2u);
  BOOST_TEST(t.all()[0].count == 61u);
  BOOST_TEST(t.all()[0].priority == 100);
  BOOST_TEST(reason_name(t.all()[0].reason, t.all()[0].owner) == "adver_int_mismatch");
  BOOST_TEST(reason_name(InstanceMismatch::addresses, true) == "owner_address_mismatch");
  // Forged sources: the table stops at kMax, new senders are not tracked,
  // known ones still are; silent entries are forgotten after kForgetAfter.
  for (uint8_t i = 0; i < 100; ++i)
    t.record(IpAddress::v4(10, 99, 0, i), foreign, InstanceMismatch::addresses, false, t0 + seconds(63));
  BOOST_TEST(t.all().size() == ForeignRouters::kMax);
  BOOST_TEST(!t.record(IpAddress::v4(10, 99, 1, 1), foreign, InstanceMismatch::addresses, false, t0 + seconds(64)).tracked);
  BOOST_TEST(t.record(kNodeB, foreign, InstanceMismatch::addresses, false, t0 + seconds(64)).tracked);
  const auto later = t0 + seconds(64) + ForeignRouters::kForgetAfter + seconds(1);
  BOOST_TEST(t.record(IpAddress::v4(10, 99, 1, 1), foreign, InstanceMismatch::addresses, false, later).tracked);
  BOOST_TEST(t.all().size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(announcements)

BOOST_AUTO_TEST_CASE(garp_layout) {
  auto f = build_garp(kMacB, kVip);
  BOOST_TEST(f.size() == 42u);
  BOOST_TEST(f[12] == 0x08);
  BOOST_TEST(f[13] == 0x06);
  BOOST_TEST(f[21] == 1);  // request
  BOOST_TEST(std::equal(kMacB.begin(), kMacB.end(), f.begin() + 6));
  BOOST_TEST(std::equal(kMacB.begin(), kMacB.end(), f.begin() + 22));
}

BOOST_AUTO_TEST_CASE(unsolicited_na) {
  const IpAddress target = *IpAddress::parse("2001:db8::160");
  const IpAddress src = *IpAddress::parse("fe80::88:1ff:fe00:151");
  const IpAddress dst = *IpAddress::parse("ff02::1");
  Bytes na = build_unsolicited_na(kMacA, target, src, dst);
  BOOST_REQUIRE_EQUAL(na.size(), kUnsolicitedNaLen);
  BOOST_TEST(na[0] == 136);
  BOOST_TEST(na[4] == 0xa0);  // R and O set, S clear (RFC 5798 §6.4.1)
  BOOST_TEST(std::equal(target.bytes.begin(), target.bytes.end(), na.begin() + 8));
  BOOST_TEST(na[24] == 2);
  BOOST_TEST(na[25] == 1);
  BOOST_TEST(std::equal(kMacA.begin(), kMacA.end(), na.begin() + 26));
  // The checksum verifies over pseudo-header + message.
  uint32_t sum = checksum::add(0, src.raw());
  sum = checksum::add(sum, dst.raw());
  const uint8_t tail[8] = {0, 0, 0, 32, 0, 0, 0, 58};
  sum = checksum::add(sum, tail);
  BOOST_TEST(checksum::finish(checksum::add(sum, na)) == 0);
  BOOST_TEST(build_unsolicited_na(kMacA, target, src, dst, false)[4] == 0x20);
}

BOOST_AUTO_TEST_CASE(na_frame_and_ipv6_header) {
  const IpAddress target = *IpAddress::parse("2001:db8::160");
  const IpAddress src = *IpAddress::parse("fe80::88:1ff:fe00:151");
  Bytes f = build_na_frame(kMacA, src, target);
  BOOST_REQUIRE_EQUAL(f.size(), 14u + 40u + kUnsolicitedNaLen);
  const MacAddress all_nodes{0x33, 0x33, 0, 0, 0, 1};  // RFC 2464 §7
  BOOST_TEST(std::equal(all_nodes.begin(), all_nodes.end(), f.begin()));
  BOOST_TEST(std::equal(kMacA.begin(), kMacA.end(), f.begin() + 6));
  BOOST_TEST((f[12] == 0x86 && f[13] == 0xdd));
  BOOST_TEST(f[14] >> 4 == 6);
  BOOST_TEST((f[18] << 8 | f[19]) == int(kUnsolicitedNaLen));
  BOOST_TEST(f[20] == 58);   // ICMPv6
  BOOST_TEST(f[21] == 255);  // RFC 4861 §7.1.2
  BOOST_TEST(std::equal(src.bytes.begin(), src.bytes.end(), f.begin() + 22));
  BOOST_TEST(std::equal(kAllNodesV6.bytes.begin(), kAllNodesV6.bytes.end(), f.begin() + 38));
  Bytes na(f.begin() + 54, f.end());
  BOOST_TEST(na == build_unsolicited_na(kMacA, target, src, kAllNodesV6));
}

BOOST_AUTO_TEST_CASE(ipv6_rx_header_round_trip_and_rejects) {
  const IpAddress src = *IpAddress::parse("fe80::1");
  Bytes msg = {0x31, 51, 100, 1, 0, 100, 0, 0};
  Bytes d = build_ipv6_header(src, kVrrpGroupV6, kIpProtoVrrp, 255, msg.size());
  d.insert(d.end(), msg.begin(), msg.end());
  auto h = parse_ipv6(d);
  BOOST_REQUIRE(h.has_value());
  BOOST_TEST((h->src == src));
  BOOST_TEST((h->dst == kVrrpGroupV6));
  BOOST_TEST(h->hop_limit == 255);
  BOOST_TEST(h->payload.size() == msg.size());
  BOOST_TEST((h->rx_meta().family == Family::ipv6));
  Bytes padded = d;
  padded.resize(d.size() + 10);  // bytes past the payload length are ignored
  BOOST_TEST(parse_ipv6(padded)->payload.size() == msg.size());
  BOOST_TEST(!parse_ipv6(std::span(d).first(39)).has_value());          // short header
  BOOST_TEST(!parse_ipv6(std::span(d).first(d.size() - 1)).has_value()); // short payload
  Bytes other = d;
  other[6] = 58;  // not VRRP
  BOOST_TEST(!parse_ipv6(other).has_value());
  Bytes v4 = d;
  v4[0] = 0x45;
  BOOST_TEST(!parse_ipv6(v4).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
