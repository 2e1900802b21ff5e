// vrrp/intake classify(): every way a received datagram ends, as a table:
// dropped (by which counter), another VRID, misconfigured (another router on
// our VRID), our own advert, or accepted; for both families (IPv4 with the
// header the kernel keeps, IPv6 with recvmsg's metadata).
#define BOOST_TEST_MODULE vrrp_intake
#include <boost/test/unit_test.hpp>
#include <functional>
#include <string>
#include <vector>

#include "vrrp/frame.h"
#include "vrrp/intake.h"

using namespace vrrp;
using Kind = IntakeDecision::Kind;

namespace {

IpAddress ip(const char* s) { return *IpAddress::parse(s); }
const IpAddress kSelf = ip("10.88.1.151"), kPeer = ip("10.88.1.152"), kStranger = ip("10.88.1.66");
const IpAddress kVip = ip("10.88.1.160");
const IpAddress kSelf6 = ip("fe80::51"), kPeer6 = ip("fe80::52"), kVip6 = ip("fd88:1::160");

struct Packet {
  uint8_t version = 3, vrid = 51, priority = 100, ttl = 255;
  uint16_t adver_int = 100;  // v3 centiseconds / v2 seconds
  std::vector<IpAddress> addresses{kVip};
  IpAddress src = kPeer;
  bool ipv6 = false;
  std::string password;  // v2 PASS
  std::function<void(std::vector<uint8_t>&)> mangle;  // applied to the VRRP message
};

struct Wire {
  std::vector<uint8_t> bytes;
  std::optional<RxMeta> meta;
};

Wire wire(const Packet& p) {
  Advert a;
  a.version = p.version;
  a.vrid = p.vrid;
  a.priority = p.priority;
  a.adver_int = p.adver_int;
  a.addresses = p.addresses;
  if (!p.password.empty()) {
    a.auth_type = 1;
    std::copy(p.password.begin(), p.password.end(), a.auth_data.begin());
  }
  EncodeOpts o;
  o.family = p.ipv6 ? Family::ipv6 : Family::ipv4;
  o.src = p.src;
  o.dst = p.ipv6 ? kVrrpGroupV6 : kVrrpGroupV4;
  auto msg = encode(a, o);
  if (p.mangle) p.mangle(msg);
  if (p.ipv6) return {msg, RxMeta{Family::ipv6, p.src, kVrrpGroupV6, p.ttl, msg.size()}};
  Ipv4Params h;
  h.src = p.src;
  h.ttl = p.ttl;
  auto d = build_ipv4_header(h, msg.size());
  d.insert(d.end(), msg.begin(), msg.end());
  return {d, std::nullopt};
}

struct Instance {
  Family family = Family::ipv4;
  uint8_t version = 3;
  std::vector<IpAddress> vips{kVip};
  std::optional<IpAddress> self = kSelf;
  bool unicast = false;
  std::vector<IpAddress> peers;
  AuthExpect auth;
};

IntakeDecision run(const Packet& p, const Instance& in) {
  IntakeConfig c;
  c.family = in.family;
  c.auth = in.auth;
  c.expect = {51, in.version, 1, in.vips};
  c.self = in.self;
  c.unicast = in.unicast;
  c.peers = in.peers;
  const Wire w = wire(p);
  return classify(Received{w.bytes, w.meta}, c);
}

Instance v6_instance() {
  Instance i;
  i.family = Family::ipv6;
  i.vips = {kVip6};
  i.self = kSelf6;
  return i;
}
Packet v6_packet() {
  Packet p;
  p.ipv6 = true;
  p.src = kPeer6;
  p.addresses = {kVip6};
  return p;
}

}  // namespace

BOOST_AUTO_TEST_CASE(decision_table) {
  struct Row {
    const char* what;
    Packet p;
    Instance in;
    Kind kind;
    std::optional<Drop> reason;
    bool owner_lists_other_addresses = false;
  };
  Instance v2;
  v2.version = 2;
  v2.auth = {AuthType::pass, "BacChaME"};
  Packet v2p;
  v2p.version = 2;
  v2p.adver_int = 1;
  v2p.password = "BacChaME";
  Instance uni;
  uni.unicast = true;
  uni.peers = {kPeer};
  auto with = [](Packet p, auto f) {
    f(p);
    return p;
  };
  const std::vector<Row> rows = {
      {"a peer's advert", Packet{}, Instance{}, Kind::accept, std::nullopt},
      {"v2 with the right password", v2p, v2, Kind::accept, std::nullopt},
      {"IPv6 with recvmsg's metadata", v6_packet(), v6_instance(), Kind::accept, std::nullopt},
      // The IP layer.
      {"IPv6 on an IPv4 instance", v6_packet(), Instance{}, Kind::drop, Drop::bad_ip_header},
      {"IPv4 on an IPv6 instance", Packet{}, v6_instance(), Kind::drop, Drop::bad_ip_header},
      // decode() rungs, one each.
      {"TTL 254 (off-link)", with(Packet{}, [](Packet& p) { p.ttl = 254; }), Instance{}, Kind::drop, Drop::bad_ttl},
      {"Hop Limit 254", with(v6_packet(), [](Packet& p) { p.ttl = 254; }), v6_instance(), Kind::drop,
       Drop::bad_ttl},
      {"Hop Limit unknown (0)", with(v6_packet(), [](Packet& p) { p.ttl = 0; }), v6_instance(), Kind::drop,
       Drop::bad_ttl},
      {"checksum", with(Packet{}, [](Packet& p) { p.mangle = [](auto& m) { m[6] ^= 0xff; }; }), Instance{},
       Kind::drop, Drop::bad_checksum},
      {"version 4", with(Packet{}, [](Packet& p) { p.mangle = [](auto& m) { m[0] = 0x41; }; }), Instance{},
       Kind::drop, Drop::bad_version},
      {"truncated", with(Packet{}, [](Packet& p) { p.mangle = [](auto& m) { m.resize(4); }; }), Instance{},
       Kind::drop, Drop::too_short},
      {"v2, wrong password", with(v2p, [](Packet& p) { p.password = "other"; }), v2, Kind::drop,
       Drop::auth_failure},
      {"v2, no authentication", with(v2p, [](Packet& p) { p.password.clear(); }), v2, Kind::drop,
       Drop::auth_type_mismatch},
      // classify_advert(): another router.
      {"another VRID", with(Packet{}, [](Packet& p) { p.vrid = 52; }), Instance{}, Kind::other_vrid,
       std::nullopt},
      {"our VRID in v2", with(v2p, [](Packet& p) { p.password.clear(); }), Instance{}, Kind::misconfigured,
       Drop::version_mismatch},
      {"v2, another interval", with(v2p, [](Packet& p) { p.adver_int = 3; }), v2, Kind::misconfigured,
       Drop::adver_int_mismatch},
      {"another cluster's addresses", with(Packet{}, [](Packet& p) { p.addresses = {ip("10.88.1.170")}; }),
       Instance{}, Kind::misconfigured, Drop::address_mismatch},
      {"the owner, other addresses", with(Packet{}, [](Packet& p) {
         p.addresses = {ip("10.88.1.170")};
         p.priority = 255;
       }),
       Instance{}, Kind::accept, std::nullopt, true},
      // Ours.
      {"our own advert looped back", with(Packet{}, [](Packet& p) { p.src = kSelf; }), Instance{}, Kind::own,
       Drop::own_address},
      {"unicast: a peer", Packet{}, uni, Kind::accept, std::nullopt},
      {"unicast: a stranger", with(Packet{}, [](Packet& p) { p.src = kStranger; }), uni, Kind::drop,
       Drop::not_unicast_peer},
      {"unicast: the owner, a stranger, other addresses", with(Packet{}, [](Packet& p) {
         p.src = kStranger;
         p.priority = 255;
         p.addresses = {ip("10.88.1.170")};
       }),
       uni, Kind::drop, Drop::not_unicast_peer, true},
  };
  for (const auto& r : rows) {
    BOOST_TEST_CONTEXT(r.what) {
      const IntakeDecision d = run(r.p, r.in);
      BOOST_TEST((d.kind == r.kind));
      if (r.reason) BOOST_TEST(to_string(d.reason) == to_string(*r.reason));
      BOOST_TEST(d.owner_lists_other_addresses == r.owner_lists_other_addresses);
      if (r.kind != Kind::drop || d.reason != Drop::bad_ip_header) {
        BOOST_TEST_REQUIRE(d.src.has_value());
        BOOST_TEST((*d.src == r.p.src));
      } else {
        BOOST_TEST(!d.src.has_value());
      }
      BOOST_TEST(d.advert.has_value() == (r.kind != Kind::drop || r.reason == Drop::not_unicast_peer));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_broken_ipv4_header_is_a_drop_without_a_source) {
  std::vector<uint8_t> junk(30, 0x45);
  IntakeConfig c;
  const auto d = classify(Received{junk, std::nullopt}, c);
  BOOST_TEST((d.kind == Kind::drop));
  BOOST_TEST(to_string(d.reason) == "bad_ip_header");
  BOOST_TEST(!d.src.has_value());
}

BOOST_AUTO_TEST_CASE(every_drop_has_its_counter) {
  Drops drops;
  uint64_t total = 0;
#define X(name, help)                                  \
  ++counter(drops, Drop::name);                        \
  BOOST_TEST(drops.name == 1u);                        \
  BOOST_TEST(to_string(Drop::name) == std::string(#name)); \
  ++total;
  VIPPROXY_VRRP_DROPS(X)
#undef X
  BOOST_TEST(total == 15u);
}
