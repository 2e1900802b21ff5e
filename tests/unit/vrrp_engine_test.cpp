// Over 500 lines: one test binary per component; every case uses the fixture of vrrp_engine_fixture.h.
// The VRRP engine against a fake Kernel (tests/unit/vrrp_engine_fixture.h):
// what the engine asks of the kernel (adverts, VIPs, GARP) for each input
// (timers, datagrams, links, tracks), on a manual clock that each case steps.
// Also the pure track rules. The cases that start real processes (track
// scripts, notify hooks) are in tests/integration/vrrp_engine_processes_test.cpp.
#define BOOST_TEST_MODULE vrrp_engine
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <boost/test/unit_test.hpp>

#include "vrrp_engine_fixture.h"

BOOST_AUTO_TEST_SUITE(engine)

BOOST_FIXTURE_TEST_CASE(backup_becomes_master_adds_vips_sends_garp, Fixture) {
  make({instance()});
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(k->dels == 1);  // stale VIPs of an earlier run removed at start
  BOOST_TEST(k->addresses.empty());
  run(150ms);  // Master_Down_Interval = 30 ms + skew
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->addresses.count(kVip) == 1);
  BOOST_REQUIRE(k->frames.size() == 3u);  // garp.master_repeat (frames[0] below)
  const auto garp = build_garp(k->links["eth0"].mac, kVip);
  BOOST_TEST(k->frames[0] == std::vector<uint8_t>(garp.begin(), garp.end()));
  BOOST_REQUIRE(k->adverts.size() >= 5u);  // one per 10 ms
  BOOST_TEST(k->adverts[0].advert.priority == 100);
  BOOST_TEST(k->adverts[0].advert.adver_int == 1);
  BOOST_TEST(k->adverts[0].dst == kVrrpGroupV4);
  BOOST_TEST(k->adverts[0].src == kSelf);
  BOOST_TEST(e().counters().became_master == 1u);
}

BOOST_FIXTURE_TEST_CASE(garp_second_burst_after_master_delay_then_refresh, Fixture) {
  auto inst = instance();
  inst.garp.master_delay = cfg::Duration(100);
  inst.garp.master_refresh = cfg::Duration(200);
  make({inst});
  run(80ms);  // master after ~36 ms: first burst only
  BOOST_REQUIRE(e().state() == fsm::State::master);
  BOOST_TEST(k->frames.size() == 3u);
  run(100ms);  // + master_delay: the second burst of master_repeat
  BOOST_TEST(k->frames.size() == 6u);
  run(200ms);  // + master_refresh: one more per VIP
  BOOST_TEST(k->frames.size() == 7u);
  // Leaving MASTER stops every GARP timer.
  deliver(datagram(200));
  BOOST_TEST(e().state() == fsm::State::backup);
  auto n = k->frames.size();
  for (int i = 0; i < 45; ++i) {  // the new master keeps advertising
    deliver(datagram(200));
    run(10ms);
  }
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(k->frames.size() == n);
}

BOOST_FIXTURE_TEST_CASE(v2_pass_adverts_carry_the_password, Fixture) {
  make({instance(2)});
  run(0ms);
  // Can't wait 3.6 s here: a priority-0 advert from the master gives Skew_Time.
  deliver(datagram(fsm::kStopPriority, kPeer, 255, 2, 1));
  run(600ms);  // (256-100)/256 s = 0.61 s
  run(100ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  BOOST_TEST(k->adverts.back().advert.version == 2);
  BOOST_TEST(k->adverts.back().advert.auth_type == 1);  // FakeChannel decoded it with the password
}

BOOST_FIXTURE_TEST_CASE(malformed_packets_never_touch_timers, Fixture) {
  make({instance()});
  // A flood of bad-TTL / bad-checksum copies of a priority-254 advert: if any
  // reset the Master_Down_Timer (or were obeyed) we would stay BACKUP.
  for (int i = 0; i < 20; ++i) {
    deliver(datagram(254, kPeer, 254));
    auto bad = datagram(254);
    bad.back() ^= 0xff;  // an address byte: checksum no longer matches
    deliver(bad);
    auto trunc = datagram(254);
    trunc.resize(20 + 6);
    trunc[3] = 26;  // IP total length says 6 bytes of VRRP
    deliver(trunc);
    run(5ms);
  }
  run(100ms);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(e().drops().bad_ttl == 20u);
  BOOST_TEST(e().drops().bad_checksum == 20u);
  BOOST_TEST(e().drops().too_short == 20u);
  BOOST_TEST(e().counters().adverts_received == 0u);
}

BOOST_FIXTURE_TEST_CASE(higher_priority_master_keeps_us_backup_and_other_vrids_are_ignored, Fixture) {
  make({instance()});
  for (int i = 0; i < 30; ++i) {
    deliver(datagram(200));
    auto other = datagram(200);
    other[20 + 1] = 52;  // VRID 52: someone else's router
    // checksum is over the VRRP message: fix it up so only the VRID differs
    std::fill(other.begin() + 26, other.begin() + 28, 0);
    uint16_t c = compute_checksum(std::span(other).subspan(20), 3, Family::ipv4, kPeer, kVrrpGroupV4,
                                  ChecksumForm::pseudo_header);
    other[26] = uint8_t(c >> 8);
    other[27] = uint8_t(c);
    deliver(other);
    run(10ms);
  }
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(e().counters().other_vrid == 30u);
  BOOST_TEST(e().counters().adverts_received == 30u);
  BOOST_TEST(e().vars().master_address.value() == kPeer);
  BOOST_TEST(k->addresses.empty());
}

BOOST_FIXTURE_TEST_CASE(shutdown_as_master_sends_priority_zero_and_removes_vips, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  bool done = false;
  svc->shutdown([&] { done = true; });
  BOOST_TEST(k->adverts.back().advert.priority == 0);
  BOOST_TEST(k->addresses.empty());
  auto sent = k->adverts.size();
  run(100ms);
  BOOST_TEST(done);
  BOOST_TEST(k->adverts.size() == sent);  // no timer left running
  BOOST_TEST(io.stopped());               // nothing pending: the daemon can exit
}

BOOST_FIXTURE_TEST_CASE(reload_priority_in_place_keeps_master_and_vips, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  const Engine* before = &e();
  const int adds = k->adds, dels = k->dels;
  auto next = instance(3, 120);
  next.advert_int = cfg::Duration(20);
  svc->reload({next});
  BOOST_TEST(&e() == before);  // the same engine: no restart
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->dels == dels);  // the VIP never left
  BOOST_TEST(k->adds == adds);
  auto sent = k->adverts.size();
  run(100ms);
  BOOST_REQUIRE(k->adverts.size() > sent);
  BOOST_TEST(k->adverts.back().advert.priority == 120);
  BOOST_TEST(k->adverts.back().advert.adver_int == 2);  // centiseconds
  // ~5 adverts in 100 ms at 20 ms (10 at the old interval)
  BOOST_TEST(k->adverts.size() - sent <= 7u);
}

BOOST_FIXTURE_TEST_CASE(reload_lower_priority_lets_a_better_peer_preempt, Fixture) {
  make({instance(3, 150)});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  // A peer at 120 stays backup while we advertise 150...
  deliver(datagram(120));
  BOOST_TEST(e().state() == fsm::State::master);
  // ...the election decides after a reload to 100: the peer's 120 wins.
  svc->reload({instance(3, 100)});
  deliver(datagram(120));
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(k->addresses.empty());
}

BOOST_FIXTURE_TEST_CASE(reload_restarts_added_and_removes_instances, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  // A new VRID restarts VI_1: priority 0 first, so the peer takes over now.
  auto moved = instance();
  moved.virtual_router_id = 52;
  svc->reload({moved});
  BOOST_REQUIRE(svc->engines().size() == 1u);
  BOOST_TEST(k->adverts.back().advert.priority == 0);
  BOOST_TEST(k->addresses.empty());
  BOOST_TEST(e().config().virtual_router_id == 52u);
  BOOST_TEST(e().state() == fsm::State::backup);
  // An instance on an interface that does not exist: refused whole.
  auto bad = instance();
  bad.name = "VI_2";
  bad.interface = "nope0";
  BOOST_CHECK_THROW(svc->reload({moved, bad}), std::runtime_error);
  BOOST_TEST(svc->engines().size() == 1u);
  // Removed: stopped (no VIP left behind, no timer running).
  svc->reload({});
  BOOST_TEST(svc->engines().empty());
  run(50ms);
  BOOST_TEST(k->addresses.empty());
}

// A track interface first named by a reload that names no interface (a
// typo) would put a master in FAULT and give its VIP away: the reload is
// refused whole. One tracked since start that disappears is FAULT, as before.
BOOST_FIXTURE_TEST_CASE(reload_tracking_an_interface_that_does_not_exist_is_refused, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  const Engine* before = &e();
  auto typo = instance();
  typo.track.interfaces.push_back({"eht1", 0});
  BOOST_CHECK_THROW(svc->reload({typo}), std::runtime_error);
  BOOST_TEST(&e() == before);
  BOOST_TEST(e().config().track.interfaces.empty());
  run(150ms);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->addresses.count(kVip) == 1u);
  // An interface that exists is taken; once tracked, its going away is a
  // link event (FAULT), and a reload keeping it is not refused.
  LinkInfo eth1 = k->links["eth0"];
  eth1.ifindex = 3;
  eth1.name = "eth1";
  k->links["eth1"] = eth1;
  auto tracked = instance();
  tracked.track.interfaces.push_back({"eth1", 0});
  svc->reload({tracked});
  BOOST_TEST(e().config().track.interfaces.size() == 1u);
  k->links.erase("eth1");
  auto again = tracked;
  again.priority = 110;
  BOOST_CHECK_NO_THROW(svc->reload({again}));
  BOOST_TEST(e().config().priority == 110);
}

BOOST_FIXTURE_TEST_CASE(link_down_is_fault_and_link_up_restarts_as_backup, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  LinkInfo down = k->links["eth0"];
  down.up = false;
  k->links["eth0"].up = false;
  k->events.link_changed(down);
  BOOST_TEST(e().state() == fsm::State::fault);
  BOOST_TEST(k->addresses.empty());
  k->links["eth0"].up = true;
  k->events.link_changed(k->links["eth0"]);
  BOOST_TEST(e().state() == fsm::State::backup);
  run(150ms);
  BOOST_TEST(e().state() == fsm::State::master);
}

BOOST_FIXTURE_TEST_CASE(vip_removed_while_master_is_added_back, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  k->addresses.clear();
  k->events.address_removed(2, kVip);
  BOOST_TEST(k->addresses.count(kVip) == 1);
  BOOST_TEST(e().counters().vip_readded == 1u);
}

namespace {
// Captures what the engine logs (the default logger's sinks, restored after).
struct LogCapture {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096);
  std::vector<spdlog::sink_ptr> saved = spdlog::default_logger()->sinks();
  LogCapture() { spdlog::default_logger()->sinks() = {sink}; }
  ~LogCapture() { spdlog::default_logger()->sinks() = saved; }
  std::vector<std::string> lines(const std::string& containing) const {
    std::vector<std::string> out;
    for (auto& l : sink->last_formatted())
      if (l.find(containing) != std::string::npos) out.push_back(l);
    return out;
  }
};
}  // namespace

// Another program fighting over the VIP (NetworkManager, a script, a local
// keepalived) removes it as fast as we add it back: one line at the first,
// then at most one per 10 s with the count; every fight counted.
BOOST_FIXTURE_TEST_CASE(vip_fight_while_master_is_logged_rate_limited, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  LogCapture log;
  for (int i = 0; i < 200; ++i) {
    k->addresses.clear();
    k->events.address_removed(2, kVip);
    BOOST_REQUIRE(k->addresses.count(kVip) == 1);
  }
  BOOST_TEST(e().counters().vip_readded == 200u);
  BOOST_TEST(log.lines("while MASTER; adding it back").size() == 1u);
  run(10s);
  k->addresses.clear();
  k->events.address_removed(2, kVip);
  auto lines = log.lines("while MASTER; adding it back");
  BOOST_REQUIRE(lines.size() == 2u);
  BOOST_TEST(lines[1].find("+199") != std::string::npos, lines[1]);
  BOOST_TEST(e().counters().vip_readded == 201u);
}

// Each address re-added after the transition is announced (GARP), but a
// fight must not turn into a storm of bursts: one at once, the rest of the
// fight announced by one more burst a second later.
BOOST_FIXTURE_TEST_CASE(vip_fight_while_master_sends_spaced_garp_bursts, Fixture) {
  make({instance()});
  run(1500ms);  // the transition's bursts are over
  BOOST_REQUIRE(e().state() == fsm::State::master);
  auto frames = k->frames.size();
  k->addresses.clear();
  k->events.address_removed(2, kVip);
  const auto burst = k->frames.size() - frames;
  BOOST_REQUIRE(burst > 0u);  // the re-added address is announced at once
  frames = k->frames.size();
  for (int i = 0; i < 200; ++i) {
    k->addresses.clear();
    k->events.address_removed(2, kVip);
  }
  BOOST_TEST(e().counters().vip_readded == 201u);
  BOOST_TEST(k->frames.size() - frames == 0u);  // old: 200 bursts
  BOOST_TEST(run_until(*this, [&] { return k->frames.size() - frames >= burst; }, 3000ms));
  BOOST_TEST(k->frames.size() - frames == burst);  // one burst for the rest of the fight
  run(3s);
  BOOST_TEST(k->frames.size() - frames == burst);  // and nothing more once it is over
}

BOOST_FIXTURE_TEST_CASE(vip_fight_while_backup_is_logged_rate_limited_and_counted, Fixture) {
  make({instance()});
  BOOST_REQUIRE(e().state() == fsm::State::backup);  // until Master_Down_Interval
  LogCapture log;
  for (int i = 0; i < 200; ++i) {
    k->addresses.insert(kVip);
    k->events.address_added(2, kVip);
    BOOST_REQUIRE(k->addresses.count(kVip) == 0);
  }
  BOOST_REQUIRE(e().state() == fsm::State::backup);
  BOOST_TEST(e().counters().vip_removed_not_master == 200u);
  BOOST_TEST(log.lines("removing it (only the master holds it)").size() == 1u);
}

BOOST_FIXTURE_TEST_CASE(tracked_proxy_weights, Fixture) {
  auto zero = instance();
  zero.track.proxies.push_back({"postgres", 0});
  proxies["postgres"] = false;
  make({zero});
  BOOST_TEST(e().state() == fsm::State::fault);  // weight 0 failing at start
  proxies["postgres"] = true;
  svc->proxy_health_changed();
  BOOST_TEST(e().state() == fsm::State::backup);
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  proxies["postgres"] = false;
  svc->proxy_health_changed();
  BOOST_TEST(e().state() == fsm::State::fault);
  BOOST_TEST(k->adverts.back().advert.priority == 0);  // peer takes over after its skew
  BOOST_TEST(k->addresses.empty());
}

BOOST_FIXTURE_TEST_CASE(negative_weight_lowers_priority_in_the_adverts, Fixture) {
  auto neg = instance();
  neg.track.proxies.push_back({"postgres", -60});
  proxies["postgres"] = true;
  make({neg});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  BOOST_TEST(k->adverts.back().advert.priority == 100);
  proxies["postgres"] = false;
  svc->proxy_health_changed();
  BOOST_TEST(e().vars().priority == 40);
  BOOST_TEST(k->adverts.back().advert.priority == 40);  // told at once, not at the next tick
}

BOOST_FIXTURE_TEST_CASE(tracked_interface_weight, Fixture) {
  auto inst = instance();
  inst.track.interfaces.push_back({"eth1", -60});
  make({inst});
  BOOST_TEST(e().vars().priority == 40);  // eth1 does not exist yet: down
  LinkInfo eth1;
  eth1.ifindex = 3;
  eth1.name = "eth1";
  eth1.up = true;
  k->links["eth1"] = eth1;
  k->events.link_changed(eth1);
  BOOST_TEST(e().vars().priority == 100);
  eth1.up = false;
  k->events.link_changed(eth1);
  BOOST_TEST(e().vars().priority == 40);
  BOOST_TEST(e().state() == fsm::State::backup);  // a weighted interface never faults
}

BOOST_FIXTURE_TEST_CASE(status_and_metrics_share_the_counters, Fixture) {
  make({instance()});
  deliver(datagram(200, kPeer, 254));
  auto st = svc->status();
  BOOST_REQUIRE(st.size() == 1u);
  const auto& o = st[0].as_object();
  BOOST_TEST(o.at("state").as_string() == "BACKUP");
  BOOST_TEST(o.at("drops").as_object().at("bad_ttl").as_uint64() == 1u);
  auto m = svc->metrics();
  BOOST_TEST(m.find("vipproxy_vrrp_drops_total{instance=\"VI_1\",reason=\"bad_ttl\"} 1") != std::string::npos);
  BOOST_TEST(m.find("vipproxy_vrrp_state{instance=\"VI_1\",state=\"BACKUP\"} 1") != std::string::npos);
  // HELP/TYPE once per metric name.
  std::size_t n = 0;
  for (auto p = m.find("# TYPE vipproxy_vrrp_drops_total"); p != std::string::npos;
       p = m.find("# TYPE vipproxy_vrrp_drops_total", p + 1))
    ++n;
  BOOST_TEST(n == 1u);
}


BOOST_FIXTURE_TEST_CASE(lost_netlink_events_resync_links_and_vips, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  k->addresses.clear();  // removed while we were not listening
  k->events.resync();
  BOOST_TEST(k->addresses.count(kVip) == 1);
  k->links["eth0"].up = false;  // went down while we were not listening
  k->events.resync();
  BOOST_TEST(e().state() == fsm::State::fault);
}

BOOST_FIXTURE_TEST_CASE(unicast_accepts_adverts_only_from_configured_peers, Fixture) {
  auto inst = instance();
  inst.unicast = true;
  inst.unicast_peers = {kPeer.to_string()};
  make({inst});
  constexpr IpAddress kStranger = IpAddress::v4(10, 88, 1, 99);
  // A stranger claiming priority 254 for our VRID: if it were obeyed the
  // Master_Down_Timer would keep restarting and we would stay BACKUP.
  for (int i = 0; i < 20; ++i) {
    deliver(datagram(254, kStranger));
    run(5ms);
  }
  run(100ms);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(e().drops().not_unicast_peer == 20u);
  BOOST_TEST(e().counters().adverts_received == 0u);
  BOOST_REQUIRE(!k->adverts.empty());
  BOOST_TEST(k->adverts.back().dst == kPeer);  // unicast, not 224.0.0.18
  // The configured peer is heard: a higher priority makes us BACKUP.
  deliver(datagram(200, kPeer));
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(e().counters().adverts_received == 1u);
  BOOST_TEST(e().drops().not_unicast_peer == 20u);
}

BOOST_FIXTURE_TEST_CASE(ipv6_instance_adverts_from_link_local_to_ff02_12_and_sends_na, Fixture) {
  auto fk = std::make_unique<FakeKernel>();
  fk->links["eth0"].link_local_v6 = {kSelf6};
  k = fk.get();
  svc = std::make_unique<Service>(io, std::vector<cfg::VrrpInstance>{instance6()}, "node",
                                  [](const std::string&) { return false; }, std::move(fk));
  svc->start();
  svc->release_scripts();
  BOOST_TEST(e().state() == fsm::State::backup);
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  BOOST_TEST(k->addresses.count(v6("fd88:1::160")) == 1);
  BOOST_REQUIRE(!k->adverts.empty());
  // FakeChannel decoded it with the IPv6 pseudo-header over (src, dst).
  BOOST_TEST(k->adverts[0].src == kSelf6);
  BOOST_TEST(k->adverts[0].dst == kVrrpGroupV6);
  BOOST_TEST(k->adverts[0].advert.addresses.at(0) == v6("fd88:1::160"));
  // Unsolicited NAs instead of GARP: Ethernet to 33:33:00:00:00:01, IPv6,
  // Hop Limit 255, ICMPv6 type 136 for the VIP.
  BOOST_REQUIRE(k->frames.size() == 3u);
  const auto& f = k->frames[0];
  BOOST_REQUIRE(f.size() == 14u + 40u + kUnsolicitedNaLen);
  BOOST_TEST((f[0] == 0x33 && f[1] == 0x33 && f[5] == 0x01));
  BOOST_TEST((f[12] == 0x86 && f[13] == 0xdd));
  BOOST_TEST(f[14 + 6] == 58);
  BOOST_TEST(f[14 + 7] == 255);
  BOOST_TEST(f[14 + 40] == 136);
  auto na = build_unsolicited_na(k->links["eth0"].mac, v6("fd88:1::160"), kSelf6, kAllNodesV6);
  BOOST_TEST(std::vector<uint8_t>(f.begin() + 54, f.end()) == na);
  // A higher-priority IPv6 master makes us BACKUP; a bad Hop Limit does not.
  deliver(datagram6(200, kPeer6, 254));
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(e().drops().bad_ttl == 1u);
  deliver(datagram6(200));
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST((e().vars().master_address == std::optional<IpAddress>(kPeer6)));
  BOOST_TEST(k->addresses.empty());
  // An IPv4 datagram on an IPv6 instance is not ours.
  deliver(datagram(254));
  BOOST_TEST(e().drops().bad_ip_header == 1u);
}

BOOST_FIXTURE_TEST_CASE(ipv6_needs_v3_and_one_family_per_instance, Fixture) {
  auto fk = std::make_unique<FakeKernel>();
  fk->links["eth0"].link_local_v6 = {kSelf6};
  auto v2 = instance6();
  v2.version = 2;
  v2.advert_int = cfg::Duration(1000);
  v2.auth_type = cfg::AuthType::none;
  Service s2(io, {v2}, "node", nullptr, std::move(fk));
  BOOST_CHECK_THROW(s2.start(), std::exception);
  auto mixed = instance6();
  cfg::VirtualAddress va4;
  va4.address = "10.88.1.161";
  mixed.virtual_ipaddresses.push_back(va4);
  auto fk2 = std::make_unique<FakeKernel>();
  fk2->links["eth0"].link_local_v6 = {kSelf6};
  Service s3(io, {mixed}, "node", nullptr, std::move(fk2));
  BOOST_CHECK_THROW(s3.start(), std::exception);
}

BOOST_FIXTURE_TEST_CASE(multicast_instance_accepts_any_source, Fixture) {
  make({instance()});
  deliver(datagram(200, IpAddress::v4(10, 88, 1, 99)));
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(e().counters().adverts_received == 1u);
  BOOST_TEST(e().drops().not_unicast_peer == 0u);
}

// Issue 10 item 1: a second VRRP cluster on the LAN with our VRID (another
// keepalived pair on VRID 51, other VIP, higher priority).
BOOST_FIXTURE_TEST_CASE(foreign_cluster_on_our_vrid_is_dropped_counted_and_shown, Fixture) {
  constexpr IpAddress kForeign = IpAddress::v4(10, 88, 1, 5);
  constexpr IpAddress kForeignVip = IpAddress::v4(10, 88, 1, 170);
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  // Before the fix a single one of these made us BACKUP and removed the VIP.
  for (int i = 0; i < 20; ++i) {
    deliver(datagram(200, kForeign, 255, 3, 1, {kForeignVip}));
    run(10ms);
  }
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->addresses.count(kVip) == 1);
  BOOST_TEST(e().drops().address_mismatch == 20u);
  BOOST_TEST(e().counters().adverts_received == 0u);
  BOOST_TEST(e().counters().transitions == 2u);  // INIT -> BACKUP -> MASTER only
  // Its priority-0 advert (it stops) does not shorten anybody's timer either.
  deliver(datagram(0, kForeign, 255, 3, 1, {kForeignVip}));
  BOOST_TEST(e().drops().address_mismatch == 21u);
  auto st = svc->status()[0].as_object();
  BOOST_TEST(st.at("drops").as_object().at("address_mismatch").as_uint64() == 21u);
  const auto& fr = st.at("foreign_routers").as_array();
  BOOST_REQUIRE(fr.size() == 1u);
  BOOST_TEST(fr[0].as_object().at("source").as_string() == "10.88.1.5");
  BOOST_TEST(fr[0].as_object().at("reason").as_string() == "address_mismatch");
  BOOST_TEST(fr[0].as_object().at("adverts").as_uint64() == 21u);
  BOOST_TEST(fr[0].as_object().at("addresses").as_array().at(0).as_string() == "10.88.1.170");
  auto m = svc->metrics();
  BOOST_TEST(m.find("vipproxy_vrrp_drops_total{instance=\"VI_1\",reason=\"address_mismatch\"} 21") != std::string::npos);
  // Our real peer (same list) is still heard.
  deliver(datagram(254, kPeer));
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(k->addresses.empty());
}

BOOST_FIXTURE_TEST_CASE(address_owner_with_another_list_is_accepted_and_reported, Fixture) {
  constexpr IpAddress kOwner = IpAddress::v4(10, 88, 1, 6);
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  // RFC 5798 §7.1: "If the packet was not generated by the address owner
  // (Priority does not equal 255 (decimal)), the receiver MUST drop the
  // packet, otherwise continue processing": the owner wins the election.
  deliver(datagram(255, kOwner, 255, 3, 1, {IpAddress::v4(10, 88, 1, 171)}));
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(e().counters().owner_address_mismatch == 1u);
  BOOST_TEST(e().drops().address_mismatch == 0u);
  const auto fr = svc->status()[0].as_object().at("foreign_routers").as_array();
  BOOST_REQUIRE(fr.size() == 1u);
  BOOST_TEST(fr[0].as_object().at("reason").as_string() == "owner_address_mismatch");
}

BOOST_FIXTURE_TEST_CASE(v2_advert_int_mismatch_is_dropped_counted_and_shown, Fixture) {
  make({instance(2)});
  run(0ms);
  // A v2 router on our VRID with our list, advert_int 3 s: RFC 3768 §7.1.
  for (int i = 0; i < 5; ++i) deliver(datagram(fsm::kStopPriority, kPeer, 255, 2, 3));
  BOOST_TEST(e().drops().adver_int_mismatch == 5u);
  BOOST_TEST(e().counters().adverts_received == 0u);
  // Had the priority-0 adverts been heard we would be MASTER after the skew.
  run(700ms);
  BOOST_TEST(e().state() == fsm::State::backup);
  const auto fr = svc->status()[0].as_object().at("foreign_routers").as_array();
  BOOST_REQUIRE(fr.size() == 1u);
  BOOST_TEST(fr[0].as_object().at("reason").as_string() == "adver_int_mismatch");
  BOOST_TEST(fr[0].as_object().at("advert_int_ms").to_number<int64_t>() == 3000);
}

// Issue 10 item 2: the kernel refuses to add or remove the VIP. The fake
// kernel fails additions / removals with ENODEV, a few times (transient) or
// until told otherwise (permanent). At advert_int 10 ms the master gives up
// after 30 ms; retries start 10 ms apart and double.

const json::object& vip0(const Service& svc) {
  static json::array keep;
  keep = svc.status();
  return keep[0].as_object().at("vips").as_array().at(0).as_object();
}

BOOST_FIXTURE_TEST_CASE(transient_add_failure_is_retried_and_announced_once_installed, Fixture) {
  auto fk = std::make_unique<FakeKernel>();
  fk->fail_adds = 1;
  k = fk.get();
  svc = std::make_unique<Service>(io, std::vector<cfg::VrrpInstance>{instance()}, "node",
                                  [](const std::string&) { return false; }, std::move(fk));
  svc->start();
  BOOST_TEST(run_until(*this, [&] { return e().state() == fsm::State::master; }));
  // The first add failed: no GARP for an address we do not answer for.
  if (k->addresses.empty()) {
    BOOST_TEST(k->frames.empty());
    BOOST_TEST(vip0(*svc).at("actual").as_string() != "present");
    BOOST_TEST(vip0(*svc).at("desired").as_string() == "present");
  }
  BOOST_TEST(run_until(*this, [&] { return k->addresses.count(kVip) == 1; }, 500ms));
  run(50ms);
  BOOST_TEST(e().state() == fsm::State::master);  // recovered within the bound: no FAULT
  BOOST_TEST(e().counters().vip_errors == 1u);
  BOOST_TEST(k->frames.size() == 3u);  // the GARP burst, once it was installed
  BOOST_TEST(vip0(*svc).at("actual").as_string() == "present");
  BOOST_TEST(vip0(*svc).at("failed_attempts").to_number<int64_t>() == 0);
  BOOST_TEST(vip0(*svc).at("last_error").is_null());
}

BOOST_FIXTURE_TEST_CASE(permanent_add_failure_gives_the_mastership_away_then_faults_until_addable, Fixture) {
  auto fk = std::make_unique<FakeKernel>();
  fk->fail_adds = -1;
  k = fk.get();
  svc = std::make_unique<Service>(io, std::vector<cfg::VrrpInstance>{instance()}, "node",
                                  [](const std::string&) { return false; }, std::move(fk));
  svc->start();
  BOOST_TEST(run_until(*this, [&] { return e().state() == fsm::State::master; }));
  BOOST_TEST(run_until(*this, [&] { return e().state() == fsm::State::fault; }, 1000ms));
  // Priority 0 first, so the peer takes over after its skew time.
  BOOST_REQUIRE(!k->adverts.empty());
  BOOST_TEST(k->adverts.back().advert.priority == 0);
  BOOST_TEST(k->frames.empty());  // never announced an address it did not have
  BOOST_TEST(k->addresses.empty());
  std::string why;
  BOOST_TEST(e().fault_reason(&why));
  BOOST_TEST(why.find("cannot add VIP 10.88.1.160/24 to eth0") != std::string::npos, why);
  BOOST_TEST(svc->status()[0].as_object().at("fault_reason").as_string().find("cannot add VIP") != std::string::npos);
  // The transition's add, a retry after 10 ms and a last one at 30 ms (one
  // fewer when the machine is so busy that the retry comes late).
  BOOST_TEST(e().counters().vip_errors >= 2u);
  BOOST_TEST(e().counters().vip_errors <= 3u);
  // Stays FAULT (trial adds fail) while the kernel refuses; no advert.
  const auto adverts = k->adverts.size();
  run(200ms);
  BOOST_TEST(e().state() == fsm::State::fault);
  BOOST_TEST(k->adverts.size() == adverts);
  BOOST_TEST(k->addresses.empty());
  // The cause goes: a trial add works (and is taken back), FAULT clears,
  // the election runs again and we are MASTER with the address.
  k->fail_adds = 0;
  BOOST_TEST(run_until(*this, [&] { return e().state() != fsm::State::fault; }, 3000ms));
  BOOST_TEST(run_until(*this, [&] { return e().state() == fsm::State::master && k->addresses.count(kVip) == 1; }));
  BOOST_TEST(!e().fault_reason(nullptr));
  BOOST_TEST(k->frames.size() >= 3u);
}

BOOST_FIXTURE_TEST_CASE(vip_removed_behind_our_back_and_unaddable_gives_the_mastership_away, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  k->addresses.clear();
  k->fail_adds = -1;
  k->events.address_removed(2, kVip);
  BOOST_TEST(e().counters().vip_readded == 1u);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(run_until(*this, [&] { return e().state() == fsm::State::fault; }, 1000ms));
  BOOST_TEST(k->adverts.back().advert.priority == 0);
}

BOOST_FIXTURE_TEST_CASE(transient_delete_failure_is_retried_and_visible_until_done, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  k->fail_dels = 2;
  // A better master, advertising every second (we learn its interval, RFC
  // 5798 §6.4.2): BACKUP for 3 s at least, whatever the machine's load.
  deliver(datagram(200, kPeer, 255, 3, 100));
  BOOST_REQUIRE(e().state() == fsm::State::backup);
  BOOST_TEST(e().state() == fsm::State::backup);
  // Not reported removed before the kernel said so.
  BOOST_TEST(k->addresses.count(kVip) == 1);
  BOOST_TEST(vip0(*svc).at("desired").as_string() == "absent");
  BOOST_TEST(vip0(*svc).at("actual").as_string() != "absent");
  BOOST_TEST(vip0(*svc).at("failed_attempts").to_number<int64_t>() == 1);
  BOOST_TEST(vip0(*svc).at("last_error").as_string() == std::make_error_code(std::errc::no_such_device).message());
  auto m = svc->metrics();
  BOOST_TEST(m.find("vipproxy_vrrp_vip_desired{instance=\"VI_1\",address=\"10.88.1.160/24\"} 0") != std::string::npos);
  BOOST_TEST(m.find("vipproxy_vrrp_vip_installed{instance=\"VI_1\",address=\"10.88.1.160/24\"} 1") != std::string::npos);
  BOOST_TEST(run_until(*this, [&] { return k->addresses.empty(); }, 500ms));
  BOOST_TEST(vip0(*svc).at("actual").as_string() == "absent");
  BOOST_TEST(e().counters().vip_errors == 2u);
  BOOST_TEST(e().state() == fsm::State::backup);
}

BOOST_FIXTURE_TEST_CASE(permanent_delete_failure_keeps_retrying_with_back_off, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  k->fail_dels = -1;
  const int dels = k->dels;
  deliver(datagram(200, kPeer, 255, 3, 100));  // BACKUP for 3 s at least (as above)
  BOOST_TEST(e().state() == fsm::State::backup);
  run(400ms);
  BOOST_REQUIRE(e().state() == fsm::State::backup);
  // 10, 20, 40, 80, 160 ms apart: 6 attempts in 400 ms (fewer on a busy
  // machine), not one per 10 ms advert interval.
  const int attempts = k->dels - dels;
  BOOST_TEST(attempts >= 3);
  BOOST_TEST(attempts <= 7);
  BOOST_TEST(k->addresses.count(kVip) == 1);
  BOOST_TEST(vip0(*svc).at("failed_attempts").to_number<int64_t>() == attempts);
  auto m = svc->metrics();
  BOOST_TEST(m.find("vipproxy_vrrp_vip_desired{instance=\"VI_1\",address=\"10.88.1.160/24\"} 0") != std::string::npos);
  BOOST_TEST(m.find("vipproxy_vrrp_vip_failed_attempts{instance=\"VI_1\",address=\"10.88.1.160/24\"} " +
                    std::to_string(attempts)) != std::string::npos);
  k->fail_dels = 0;
  BOOST_TEST(run_until(*this, [&] { return k->addresses.empty(); }, 2000ms));
  BOOST_TEST(vip0(*svc).at("failed_attempts").to_number<int64_t>() == 0);
}

BOOST_FIXTURE_TEST_CASE(vip_appearing_on_a_backup_is_removed, Fixture) {
  make({instance()});
  deliver(datagram(200));
  BOOST_REQUIRE(e().state() == fsm::State::backup);
  k->addresses.insert(kVip);  // `ip addr add` by hand on the backup
  k->events.address_added(2, kVip);
  BOOST_TEST(k->addresses.empty());
  BOOST_TEST(e().state() == fsm::State::backup);
}

BOOST_FIXTURE_TEST_CASE(reload_restart_refused_by_the_kernel_keeps_the_running_instance, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  const Engine* before = &e();
  auto moved = instance();
  moved.virtual_router_id = 52;
  k->refuse_channel = true;
  try {
    svc->reload({moved});
    BOOST_FAIL("the reload should have been refused");
  } catch (const std::runtime_error& ex) {
    const std::string what = ex.what();
    BOOST_TEST(what.find("vrrp VI_1: cannot restart: ") == 0u, what);
    BOOST_TEST(what.find("IP_ADD_MEMBERSHIP") != std::string::npos, what);
    BOOST_TEST(what.find("running instance is kept") != std::string::npos, what);
  }
  BOOST_TEST(&e() == before);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(e().config().virtual_router_id == 51u);
  BOOST_TEST(k->addresses.count(kVip) == 1);
  const auto sent = k->adverts.size();
  run(50ms);
  BOOST_REQUIRE(k->adverts.size() > sent);
  BOOST_TEST(k->adverts.back().advert.vrid == 51);
  BOOST_TEST(k->adverts.back().advert.priority == 100);  // no priority 0: it never stopped
  // The kernel allows it again: the same reload applies.
  k->refuse_channel = false;
  svc->reload({moved});
  BOOST_TEST(e().config().virtual_router_id == 52u);
  run(150ms);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->adverts.back().advert.vrid == 52);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(track_rules)

BOOST_AUTO_TEST_CASE(weights_as_keepalived) {
  using track::Input;
  std::vector<Input> in{{0, true}, {10, true}, {-60, false}};
  auto r = track::apply(100, in);
  BOOST_TEST(!r.fault);
  BOOST_TEST(r.priority == 50u);
  in.push_back({0, false});
  BOOST_TEST(track::apply(100, in).fault);
  std::vector<Input> pos_failing{{10, false}}, neg_ok{{-60, true}};
  BOOST_TEST(track::apply(100, pos_failing).priority == 100u);
  BOOST_TEST(track::apply(100, neg_ok).priority == 100u);
  std::vector<Input> big{{200, true}}, low{{-200, false}};
  BOOST_TEST(track::apply(100, big).priority == 254u);  // never "owner"
  BOOST_TEST(track::apply(100, low).priority == 1u);    // never "stop"
  BOOST_TEST(track::apply(255, low).priority == 255u);  // the owner is not re-weighted
}

BOOST_AUTO_TEST_CASE(rise_fall) {
  track::RiseFall rf(2, 3);
  BOOST_TEST(!rf.ok());
  BOOST_TEST(!rf.known());
  BOOST_TEST(rf.result(true));  // rise-1 credited at start: first success suffices
  BOOST_TEST(rf.ok());
  BOOST_TEST(!rf.result(false));
  BOOST_TEST(!rf.result(false));
  BOOST_TEST(!rf.result(true));  // a success breaks the failing streak
  BOOST_TEST(!rf.result(false));
  BOOST_TEST(!rf.result(false));
  BOOST_TEST(rf.result(false));
  BOOST_TEST(!rf.ok());
  BOOST_TEST(!rf.result(true));
  BOOST_TEST(rf.result(true));
  BOOST_TEST(rf.ok());
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------------------
// The review of the VRRP engine against RFC 5798 / RFC 3768 (branch vrrprev).
BOOST_AUTO_TEST_SUITE(review)

namespace {
// Re-computes the VRRP checksum of an IPv4 datagram after a test edited it,
// so only the edited field is wrong.
std::vector<uint8_t> fix_checksum(std::vector<uint8_t> d, unsigned version = 3) {
  d[26] = d[27] = 0;
  uint16_t c = compute_checksum(std::span<const uint8_t>(d).subspan(20), uint8_t(version), Family::ipv4, kPeer,
                                kVrrpGroupV4, ChecksumForm::pseudo_header);
  d[26] = uint8_t(c >> 8);
  d[27] = uint8_t(c);
  return d;
}
}  // namespace

// RFC 5798 §6.4.2: the backup learns Master_Adver_Interval from the
// master's adverts and takes over Master_Down_Interval = 3 x that + Skew
// after the last one: 150 ms + (256 - 100) x 50 / 256 ms = 180.47 ms.
BOOST_FIXTURE_TEST_CASE(v3_backup_takes_over_after_the_learned_master_down_interval, Fixture) {
  make({instance()});
  deliver(datagram(200, kPeer, 255, 3, 5));  // Max Adver Int 5 cs
  BOOST_TEST(e().vars().master_adver_interval == fsm::Duration(50ms));
  run(179ms);
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(k->addresses.empty());
  run(3ms);
  BOOST_TEST(e().state() == fsm::State::master);
}

// RFC 5798 §6.4.2: a priority-0 advert sets the Master_Down_Timer to
// Skew_Time = (256 - 100) x 50 / 256 ms = 30.47 ms.
BOOST_FIXTURE_TEST_CASE(priority_zero_advert_takeover_after_skew_time, Fixture) {
  make({instance()});
  deliver(datagram(200, kPeer, 255, 3, 5));
  run(20ms);
  deliver(datagram(0, kPeer, 255, 3, 5));
  run(29ms);
  BOOST_TEST(e().state() == fsm::State::backup);
  run(3ms);
  BOOST_TEST(e().state() == fsm::State::master);
}

// RFC 5798 §7.1 (count vs length) and RFC 3768 §7.1 (Auth Type, PASS):
// forged adverts claiming priority 254 are dropped and counted, never obeyed.
BOOST_FIXTURE_TEST_CASE(forged_address_count_is_dropped_and_counted, Fixture) {
  make({instance()});
  for (int i = 0; i < 10; ++i) {
    auto two = datagram(254);
    two[20 + 3] = 2;  // Count IPvX Addrs 2, one address in the message
    deliver(fix_checksum(two));
    auto none = datagram(254);
    none[20 + 3] = 0;
    deliver(fix_checksum(none));
    run(10ms);
  }
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(e().drops().bad_length == 20u);
  BOOST_TEST(e().counters().adverts_received == 0u);
}

BOOST_FIXTURE_TEST_CASE(forged_v2_auth_is_dropped_and_counted, Fixture) {
  make({instance(2)});
  for (int i = 0; i < 8; ++i) {
    auto wrong_pw = datagram(254, kPeer, 255, 2, 1);
    wrong_pw.back() ^= 0x01;
    deliver(fix_checksum(wrong_pw, 2));
    auto no_auth = datagram(254, kPeer, 255, 2, 1);
    no_auth[20 + 4] = 0;  // Auth Type 0 where we expect PASS
    deliver(fix_checksum(no_auth, 2));
    run(500ms);
  }
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(e().drops().auth_failure == 8u);
  BOOST_TEST(e().drops().auth_type_mismatch == 8u);
  BOOST_TEST(e().counters().adverts_received == 0u);
}

// A reload that turns preempt on in place: the higher-priority backup then
// discards the lower master's adverts and takes over (RFC 5798 §6.4.2).
BOOST_FIXTURE_TEST_CASE(reload_preempt_on_in_place_takes_over_from_lower_master, Fixture) {
  auto inst = instance(3, 150);
  inst.preempt = false;
  make({inst});
  for (int i = 0; i < 20; ++i) {
    deliver(datagram(120));
    run(10ms);
  }
  BOOST_REQUIRE(e().state() == fsm::State::backup);
  auto next = inst;
  next.preempt = true;
  svc->reload({next});
  for (int i = 0; i < 20; ++i) {
    deliver(datagram(120));
    run(10ms);
  }
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->addresses.count(kVip) == 1);
}

// The advert source (the interface's primary IPv4 address) removed and
// added back (`ip addr flush` + re-add, a DHCP renewal, NetworkManager):
// FAULT while it is missing, and BACKUP again once it is back
// (engine.cpp's prepare(): "FAULT until it has one").
BOOST_FIXTURE_TEST_CASE(primary_address_added_back_leaves_fault, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  k->links["eth0"].primary_v4.clear();
  k->events.address_removed(2, kSelf);
  BOOST_TEST(e().state() == fsm::State::fault);
  BOOST_TEST(k->addresses.empty());
  k->links["eth0"].primary_v4 = {kSelf};
  k->events.address_added(2, kSelf);
  BOOST_TEST(e().state() == fsm::State::backup);
  run(150ms);
  BOOST_TEST(e().state() == fsm::State::master);
}

// The instance's interface deleted and created again (a VLAN or bond rebuilt
// by the network configuration): it comes back with another ifindex, and
// a raw socket bound to the old one (SO_BINDTODEVICE, IP_ADD_MEMBERSHIP by
// ifindex) hears nothing more. The engine must listen on the new device, or
// it takes over from a live master: two masters holding the VIP.
BOOST_FIXTURE_TEST_CASE(interface_recreated_with_new_ifindex_keeps_hearing_the_master, Fixture) {
  make({instance()});
  // What reaches the engine: only adverts on the device its socket is bound to.
  auto wire = [&](uint8_t prio) {
    if (!k->channel_ifindex.empty() && k->links.count("eth0") &&
        k->channel_ifindex.back() == k->links["eth0"].ifindex)
      deliver(datagram(prio));
  };
  for (int i = 0; i < 10; ++i) {
    wire(200);
    run(10ms);
  }
  BOOST_REQUIRE(e().state() == fsm::State::backup);
  LinkInfo gone = k->links["eth0"];
  gone.up = false;
  k->links.erase("eth0");
  k->events.link_changed(gone);  // RTM_DELLINK
  BOOST_TEST(e().state() == fsm::State::fault);
  LinkInfo fresh = gone;
  fresh.ifindex = 7;
  fresh.up = true;
  k->links["eth0"] = fresh;
  k->events.link_changed(fresh);  // RTM_NEWLINK, a new ifindex
  for (int i = 0; i < 50; ++i) {
    wire(200);
    run(10ms);
  }
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(k->addresses.empty());
  BOOST_TEST(k->channel_ifindex.back() == 7);
}


// When the socket of the recreated interface cannot be opened, FAULT (a
// deaf instance would take over), and the next event that may help retries.
BOOST_FIXTURE_TEST_CASE(interface_recreated_and_socket_refused_is_fault_until_it_opens, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  LinkInfo gone = k->links["eth0"];
  gone.up = false;
  k->links.erase("eth0");
  k->events.link_changed(gone);
  LinkInfo fresh = gone;
  fresh.ifindex = 7;
  fresh.up = true;
  k->links["eth0"] = fresh;
  k->refuse_channel = true;
  k->events.link_changed(fresh);
  BOOST_TEST(e().state() == fsm::State::fault);
  std::string why;
  BOOST_TEST(e().fault_reason(&why));
  BOOST_TEST(why.find("IP_ADD_MEMBERSHIP") != std::string::npos, why);
  run(150ms);
  BOOST_TEST(e().state() == fsm::State::fault);
  BOOST_TEST(k->addresses.empty());
  k->refuse_channel = false;
  k->events.resync();
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(k->channel_ifindex.back() == 7);
  run(150ms);
  BOOST_TEST(e().state() == fsm::State::master);
}


// The daemon's error path: an exception out of Daemon::run() after the VRRP
// service started (a failed capability drop, or one escaping a handler of
// the control loop) is caught in main(), and the Daemon is destroyed with
// its vrrp::Service without Service::shutdown(). As MASTER the VIP must not
// stay on the interface of a process that is gone (the peer takes it over
// after Master_Down_Interval: two hosts answering ARP for it), and the peer
// should be told (priority 0, RFC 5798 §6.4.3 Shutdown).
BOOST_FIXTURE_TEST_CASE(service_destroyed_without_shutdown_leaves_no_vip, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  BOOST_REQUIRE(k->addresses.count(kVip) == 1);
  std::set<IpAddress> left;
  int last_priority = -1;
  k->on_destroy = [&](const FakeKernel& fk) {
    left = fk.addresses;
    if (!fk.adverts.empty()) last_priority = fk.adverts.back().advert.priority;
  };
  svc.reset();
  k = nullptr;
  BOOST_TEST(left.empty());
  BOOST_TEST(last_priority == 0);
}


// IPv6: the recreated interface has no link-local yet at the link-up (or a
// tentative one the socket cannot bind to): FAULT, and the socket is opened
// from the new link-local once it is added, not from the old one.
BOOST_FIXTURE_TEST_CASE(ipv6_interface_recreated_opens_from_its_new_link_local, Fixture) {
  auto fk = std::make_unique<FakeKernel>();
  fk->links["eth0"].link_local_v6 = {kSelf6};
  k = fk.get();
  svc = std::make_unique<Service>(io, std::vector<cfg::VrrpInstance>{instance6()}, "node",
                                  [](const std::string&) { return false; }, std::move(fk));
  svc->start();
  svc->release_scripts();
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  LinkInfo gone = k->links["eth0"];
  gone.up = false;
  k->links.erase("eth0");
  k->events.link_changed(gone);
  LinkInfo fresh = gone;
  fresh.ifindex = 7;
  fresh.up = true;
  fresh.mac = {0x02, 0, 0, 0, 0, 0x99};
  fresh.link_local_v6.clear();
  k->links["eth0"] = fresh;
  k->refuse_channel = true;  // bind(2) to a link-local that is not there
  k->events.link_changed(fresh);
  BOOST_TEST(e().state() == fsm::State::fault);
  const IpAddress ll = v6("fe80::99");
  k->links["eth0"].link_local_v6 = {ll};
  k->refuse_channel = false;
  k->events.address_added(7, ll);
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(k->channel_ifindex.back() == 7);
  const auto sent = k->adverts.size();
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  BOOST_REQUIRE(k->adverts.size() > sent);
  BOOST_TEST(k->adverts.back().src == ll);
}

BOOST_AUTO_TEST_SUITE_END()

// An instance that stops at a reload (removed, or restarted) stops before a
// new one starts: an address owner is MASTER at once, and the old instance's
// priority-0 advert and VIP removal must not come after the new one's.
BOOST_FIXTURE_TEST_CASE(reload_old_instances_stop_before_new_ones_start, Fixture) {
  make({instance(3, 255)});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  BOOST_REQUIRE(k->addresses.size() == 1u);
  // Renamed: VI_1 removed, VI_X added with its VRID and VIP.
  auto renamed = instance(3, 255);
  renamed.name = "VI_X";
  svc->reload({renamed});
  BOOST_REQUIRE(svc->engines().size() == 1u);
  BOOST_TEST(e().config().name == "VI_X");
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->addresses.size() == 1u, "the VIP stays with the new owner");
  BOOST_TEST(k->adverts.back().advert.priority == 255, "the peers hear the new owner last, not priority 0");
  // The VIP moves to a new instance listed first, while its old instance
  // restarts on another VRID.
  auto moved = instance(3, 100);
  moved.name = "VI_X";
  moved.virtual_router_id = 52;
  moved.virtual_ipaddresses[0].address = "10.88.1.161";
  auto owner = instance(3, 255);
  owner.name = "VI_Y";
  svc->reload({owner, moved});
  BOOST_REQUIRE(svc->engines().size() == 2u);
  BOOST_TEST(e().config().name == "VI_Y");
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->addresses.count(kVip) == 1u, "the VIP stays with the new owner");
  BOOST_TEST(k->adverts.back().advert.priority == 255);
}


// The second review of the VRRP engine (branch vrrprev2).
BOOST_AUTO_TEST_SUITE(review2)

// An advert from our own source address. Our sockets do not loop our own
// multicast back, so it is the network reflecting ours (a bond, a virtual
// switch) or another router using our address (a cloned VM: then neither
// hears the other and both are MASTER). Never obeyed, as before, and now
// counted (drops.own_address) where it used to vanish without a trace.
BOOST_FIXTURE_TEST_CASE(advert_from_our_own_address_is_dropped_and_counted, Fixture) {
  make({instance()});
  // Priority 254 from "us": obeyed, it would keep resetting the
  // Master_Down_Timer and hold us BACKUP.
  for (int i = 0; i < 20; ++i) {
    deliver(datagram(254, kSelf));
    run(5ms);
  }
  run(100ms);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(e().counters().adverts_received == 0u);
  const json::object st = e().status();
  const json::value* own = st.at("drops").as_object().if_contains("own_address");
  BOOST_REQUIRE_MESSAGE(own, "no drops.own_address in /status: " << json::serialize(st.at("drops")));
  BOOST_TEST(own->to_number<uint64_t>() == 20u);
  BOOST_TEST(svc->metrics().find("vipproxy_vrrp_drops_total{instance=\"VI_1\",reason=\"own_address\"} 20") !=
             std::string::npos);
  // As MASTER, our own advert reflected back changes nothing either.
  const auto sent = k->adverts.size();
  deliver(datagram(100, kSelf));
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->adverts.size() == sent);
  BOOST_TEST(e().status().at("drops").at("own_address").to_number<uint64_t>() == 21u);
}

// A reload that adds a track script to a running MASTER: the script has no
// result yet. Counted as failing (as at start), a weight-0 one put the
// master in FAULT at once (priority 0, VIP removed: the peer took it) and a
// negative one lowered the priority in the very next advert, before the
// script had run even once; reloading both nodes together to add a check
// left nobody holding the VIP. Until its first result it now counts for
// nothing, as keepalived's scripts in their initial state. (Scripts are held
// here, as before the daemon's capability drop: they never run.)
BOOST_FIXTURE_TEST_CASE(reload_adding_a_track_script_waits_for_its_first_result, Fixture) {
  make({instance()}, /*release=*/false);
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  const auto sent = k->adverts.size();
  const auto transitions = e().counters().transitions;
  auto next = instance();
  next.track.scripts.push_back(script("exit 0", 0));
  auto minus = script("exit 0", -60);
  minus.name = "minus";
  next.track.scripts.push_back(minus);
  svc->reload({next});
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(e().vars().priority == 100);
  run(200ms);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(e().counters().transitions == transitions);
  BOOST_TEST(k->addresses.count(kVip) == 1u);
  BOOST_REQUIRE(k->adverts.size() > sent);
  for (auto i = sent; i < k->adverts.size(); ++i) BOOST_TEST(k->adverts[i].advert.priority == 100);
  const json::object st = e().status();
  for (const auto& s : st.at("track_scripts").as_array()) BOOST_TEST(s.at("state").as_string() == "unknown");
}

// Checked, found right: the VIP is added once per transition to MASTER and
// removed once per transition out of it (and once at start: a killed run's
// leftover), nothing in between while the kernel agrees.
BOOST_FIXTURE_TEST_CASE(vip_added_and_removed_once_per_transition, Fixture) {
  make({instance()});
  BOOST_TEST((k->adds == 0 && k->dels == 1));  // the start-up cleanup
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  run(6000ms);  // periodic checks against the kernel: no operation
  BOOST_TEST((k->adds == 1 && k->dels == 1));
  deliver(datagram(200));
  BOOST_REQUIRE(e().state() == fsm::State::backup);
  run(6000ms);  // no more adverts: MASTER again after Master_Down_Interval
  BOOST_REQUIRE(e().state() == fsm::State::master);
  BOOST_TEST((k->adds == 2 && k->dels == 2));
  svc->shutdown(nullptr);
  BOOST_TEST((k->adds == 2 && k->dels == 3));
}

// A reload that edits unicast_peers (a node added or replaced) or the
// VRRPv3 checksum form: taken in place. It restarted the instance: as
// MASTER a priority-0 advert, the VIP to the peer, then back by preemption
// after Master_Down_Interval (two moves of the VIP for a list of addresses
// that only says whom to send to; keepalived keeps its state).
BOOST_FIXTURE_TEST_CASE(reload_unicast_peers_or_checksum_in_place_keeps_master, Fixture) {
  auto inst = instance();
  inst.unicast = true;
  inst.unicast_peers = {kPeer.to_string()};
  make({inst});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  const auto transitions = e().counters().transitions;
  constexpr IpAddress kThird = IpAddress::v4(10, 88, 1, 153);
  auto next = inst;
  next.unicast_peers = {kPeer.to_string(), kThird.to_string()};
  next.checksum = cfg::ChecksumForm::rfc9568;
  const auto sent = k->adverts.size();
  svc->reload({next});
  run(50ms);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(e().counters().transitions == transitions);
  BOOST_TEST(k->addresses.count(kVip) == 1u);
  std::set<IpAddress> to;
  for (auto i = sent; i < k->adverts.size(); ++i) {
    BOOST_TEST(k->adverts[i].advert.priority == 100);
    to.insert(k->adverts[i].dst);
  }
  BOOST_TEST((to == std::set<IpAddress>{kPeer, kThird}));
  BOOST_TEST((k->adverts.back().advert.checksum_form == ChecksumForm::message_only));
  // The new peer is heard (a higher priority: BACKUP), not dropped.
  deliver(datagram(200, kThird));
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(e().drops().not_unicast_peer == 0u);
}

// A reload that changes a VIP's prefix length or label, or the order of the
// list, but not which addresses: taken in place (as MASTER the address is
// put back with its new attributes and announced). It restarted the
// instance: priority 0, the VIP to the peer, back by preemption, two moves
// of the VIP for an edit the peer does not even see in our adverts.
BOOST_FIXTURE_TEST_CASE(reload_vip_prefix_label_or_order_in_place_keeps_master, Fixture) {
  auto inst = instance();
  cfg::VirtualAddress second;
  second.address = "10.88.1.161";
  second.prefix_len = 24;
  inst.virtual_ipaddresses.push_back(second);
  make({inst});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  const auto transitions = e().counters().transitions;
  const auto sent = k->adverts.size();
  const auto garps = k->frames.size();
  auto next = inst;
  std::swap(next.virtual_ipaddresses[0], next.virtual_ipaddresses[1]);
  next.virtual_ipaddresses[1].prefix_len = 32;        // 10.88.1.160
  next.virtual_ipaddresses[1].label = "eth0:vip";
  svc->reload({next});
  run(50ms);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(e().counters().transitions == transitions);
  for (auto i = sent; i < k->adverts.size(); ++i) BOOST_TEST(k->adverts[i].advert.priority == 100);
  BOOST_TEST(k->addresses.size() == 2u);
  BOOST_REQUIRE(!k->added.empty());
  const Vip& last = k->added.back();
  BOOST_TEST(last.address == kVip);
  BOOST_TEST(last.prefix_len == 32u);
  BOOST_TEST(last.label == "eth0:vip");
  BOOST_TEST(k->frames.size() > garps, "the address put back is announced");
  const json::object st = e().status();
  BOOST_TEST(st.at("virtual_ipaddresses").at(1).as_string() == "10.88.1.160/32");
  // As BACKUP, the same kind of edit touches no address.
  deliver(datagram(200, kPeer, 255, 3, 1, {kVip, IpAddress::v4(10, 88, 1, 161)}));
  BOOST_REQUIRE(e().state() == fsm::State::backup);
  const auto ops = k->adds + k->dels;
  svc->reload({inst});
  run(5ms);
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_TEST(k->adds + k->dels == ops);
  BOOST_TEST(k->addresses.empty());
}

// A reload that adds a proxy and tracks it (track.proxies weight 0, the
// default): the new proxy's checks have not answered yet. Counted as
// unhealthy, the MASTER went FAULT at once (priority 0, VIP to the peer)
// and came back by preemption once the first check passed; both nodes
// reloaded together left the VIP on neither. Until a check has answered it
// now counts for nothing; then as usual. (The fixture's proxies map: a name
// missing from it has no check result yet.)
BOOST_FIXTURE_TEST_CASE(reload_tracking_a_new_proxy_waits_for_its_first_check, Fixture) {
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  const auto transitions = e().counters().transitions;
  auto next = instance();
  next.track.proxies.push_back({"replicas", 0});
  svc->reload({next});
  run(100ms);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(e().counters().transitions == transitions);
  BOOST_TEST(k->addresses.count(kVip) == 1u);
  BOOST_TEST(k->adverts.back().advert.priority == 100);
  // Its first check answers: unhealthy counts now.
  proxies["replicas"] = false;
  svc->proxy_health_changed();
  BOOST_TEST(e().state() == fsm::State::fault);
  proxies["replicas"] = true;
  svc->proxy_health_changed();
  BOOST_TEST(e().state() == fsm::State::backup);
}

BOOST_AUTO_TEST_SUITE_END()

// A MASTER whose adverts the kernel refuses (sendto EPERM: an OUTPUT
// firewall rule on protocol 112). Hearing nobody it keeps the VIP, counts
// and shows it; hearing another MASTER for Master_Down_Interval it gives
// the VIP up (FAULT, with the reason), probes with priority 0, and is back
// in the election once a send works. The old engine stayed MASTER with the
// VIP beside the peer (vrrp_fsm_test mute_master has the rules' timing).
BOOST_AUTO_TEST_SUITE(mute_master)

BOOST_FIXTURE_TEST_CASE(refused_adverts_and_a_peer_master_give_the_vip_away_until_a_send_works, Fixture) {
  make({instance()});
  run(200ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  BOOST_REQUIRE(k->addresses.count(kVip));

  k->refuse_sends = true;
  run(500ms);  // 50 advert intervals, nobody heard: the VIP stays
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->addresses.count(kVip) == 1u);
  BOOST_TEST(e().counters().advert_send_failures >= 40u);
  auto st = svc->status()[0].as_object();
  BOOST_TEST(st.at("advert_send_error").as_string() == std::generic_category().message(EPERM));
  BOOST_TEST(st.at("advert_send_failures").to_number<uint64_t>() >= 40u);

  // The peer (priority 50, lower) took over: it sends adverts every 10 ms.
  for (int i = 0; i < 30 && e().state() == fsm::State::master; ++i) {
    deliver(datagram(50));
    run(10ms);
  }
  BOOST_TEST(e().state() == fsm::State::fault);
  BOOST_TEST(k->addresses.count(kVip) == 0u);
  BOOST_TEST(e().counters().mute_master_faults == 1u);
  st = svc->status()[0].as_object();
  BOOST_TEST(std::string(st.at("fault_reason").as_string()).find("adverts cannot be sent") != std::string::npos);
  BOOST_TEST(std::string(st.at("fault_reason").as_string()).find(kPeer.to_string()) != std::string::npos);
  // The probes go on (refused), still FAULT.
  const int refused = k->refused_sends;
  for (int i = 0; i < 10; ++i) {
    deliver(datagram(50));
    run(10ms);
  }
  BOOST_TEST(k->refused_sends > refused);
  BOOST_TEST(e().state() == fsm::State::fault);
  // A weight-0 input re-evaluated meanwhile does not end it (reevaluate).
  e().reevaluate();
  BOOST_TEST(e().state() == fsm::State::fault);

  k->refuse_sends = false;
  const auto sent = k->adverts.size();
  run(15ms);
  BOOST_TEST(e().state() == fsm::State::backup);
  BOOST_REQUIRE(k->adverts.size() > sent);
  BOOST_TEST(k->adverts[sent].advert.priority == 0);  // the probe
  for (int i = 0; i < 20 && e().state() != fsm::State::master; ++i) {
    deliver(datagram(50));
    run(10ms);
  }
  BOOST_TEST(e().state() == fsm::State::master);  // preempts the lower peer
  BOOST_TEST(k->addresses.count(kVip) == 1u);
  st = svc->status()[0].as_object();
  BOOST_TEST(st.at("advert_send_error").is_null());
}

// /status advert_send_error is why the adverts fail while the engine sends
// them. A MASTER with refused adverts that leaves MASTER for another reason
// (a higher-priority peer heard, a weight-0 track input failing) sends no
// more adverts: the old engine kept showing the error (and vipproxy status
// its "Adverts not sent" line) in BACKUP or FAULT until a later MASTER's
// send worked, pointing the operator at a fault that no longer mattered.
BOOST_FIXTURE_TEST_CASE(a_backup_shows_no_advert_send_error, Fixture) {
  make({instance()});
  run(200ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  k->refuse_sends = true;
  run(100ms);
  BOOST_REQUIRE(!svc->status()[0].as_object().at("advert_send_error").is_null());
  deliver(datagram(200));  // a higher priority: BACKUP at once (RFC 5798 §6.4.3)
  run(1ms);
  BOOST_REQUIRE(e().state() == fsm::State::backup);
  const auto st = svc->status()[0].as_object();
  BOOST_TEST(st.at("advert_send_error").is_null());
  BOOST_TEST(st.at("advert_send_failures").to_number<uint64_t>() > 0u);  // the count stays
}

BOOST_FIXTURE_TEST_CASE(a_track_fault_shows_no_advert_send_error, Fixture) {
  auto i = instance();
  i.track.proxies.push_back({"catalog", 0});
  proxies["catalog"] = true;
  make({i});
  run(200ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  k->refuse_sends = true;
  run(100ms);
  BOOST_REQUIRE(!svc->status()[0].as_object().at("advert_send_error").is_null());
  proxies["catalog"] = false;
  svc->proxy_health_changed();  // FAULT: a priority-0 advert (refused too), then silence
  BOOST_REQUIRE(e().state() == fsm::State::fault);
  run(100ms);
  BOOST_TEST(svc->status()[0].as_object().at("advert_send_error").is_null());
  // Back to MASTER with the adverts still refused: shown again at once.
  proxies["catalog"] = true;
  svc->proxy_health_changed();
  run(200ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  BOOST_TEST(svc->status()[0].as_object().at("advert_send_error").as_string() ==
             std::generic_category().message(EPERM));
}

BOOST_AUTO_TEST_SUITE_END()

// A VIP that is an address the host already had (RFC 5798's "address
// owner" set-up with the host's own address, or the node's own address
// typed as the VIP). launch() removed every VIP at start (for what a killed
// run left, as keepalived does) and leaving MASTER removed them again: the
// node's own address went, and the node off the network. Now an address
// already there is removed only when it is ours (vips::claim_at_start);
// otherwise the instance does not start and nothing is touched.
BOOST_AUTO_TEST_SUITE(owner)

bool has_text(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

BOOST_FIXTURE_TEST_CASE(host_address_as_the_vip_refuses_to_start_and_is_kept, Fixture) {
  before_start = [](FakeKernel& fk) { fk.host_entries[kVip] = {{24, 0}}; };
  auto inst = instance();
  inst.virtual_ipaddresses[0].where = "/etc/vipproxy/vipproxy.yaml:31:9: vrrp[0].virtual_ipaddresses[0]";
  std::string what;
  try {
    make({inst});
  } catch (const std::exception& ex) {
    what = ex.what();
  }
  BOOST_TEST_MESSAGE(what);
  BOOST_TEST(has_text(what, "/etc/vipproxy/vipproxy.yaml:31:9: vrrp[0].virtual_ipaddresses[0]: 10.88.1.160 is "
                            "already an address of eth0 (10.88.1.160/24)"));
  BOOST_TEST(!has_text(what, "priority 255"));
  BOOST_TEST(k->dels == 0);
  BOOST_TEST(k->adds == 0);
  BOOST_TEST(k->adverts.empty());
  BOOST_TEST(k->host_entries.count(kVip) == 1u);
}

BOOST_FIXTURE_TEST_CASE(address_owner_priority_255_with_the_host_address_is_refused, Fixture) {
  before_start = [](FakeKernel& fk) { fk.host_entries[kVip] = {{24, 0}}; };
  std::string what;
  try {
    make({instance(3, 255)});
  } catch (const std::exception& ex) {
    what = ex.what();
  }
  BOOST_TEST(has_text(what, "vrrp VI_1: virtual_ipaddresses: 10.88.1.160 is already an address of eth0"));
  BOOST_TEST(has_text(what, "priority 255"));
  BOOST_TEST(has_text(what, "ip address del 10.88.1.160/24 dev eth0"));
  BOOST_TEST(k->dels == 0);
  BOOST_TEST(k->adverts.empty());  // an owner sends at once: not even that
}

BOOST_FIXTURE_TEST_CASE(priority_255_with_a_free_vip_is_master_at_once, Fixture) {
  make({instance(3, 255)});
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->addresses.count(kVip) == 1u);
  BOOST_REQUIRE(!k->added.empty());
}

BOOST_FIXTURE_TEST_CASE(a_leftover_of_ours_is_removed_at_start, Fixture) {
  // Left by a run killed with SIGKILL: it carries our mark.
  before_start = [](FakeKernel& fk) { fk.addresses.insert(kVip); };
  make({instance()});
  BOOST_TEST(k->dels >= 1);
  BOOST_TEST(k->addresses.count(kVip) == 0u);
  BOOST_TEST(e().state() == fsm::State::backup);
}

BOOST_FIXTURE_TEST_CASE(unmarked_leftover_or_no_dump_cannot_be_told_and_is_kept, Fixture) {
  // A kernel before 5.18 keeps no mark: what a killed run left looks like
  // the host's own address, and is kept (the documented limit).
  before_start = [](FakeKernel& fk) {
    fk.keeps_marks = false;
    fk.addresses.insert(kVip);
  };
  BOOST_CHECK_THROW(make({instance()}), std::runtime_error);
  BOOST_TEST(k->dels == 0);
  BOOST_TEST(k->addresses.count(kVip) == 1u);
  svc.reset();
  before_start = [](FakeKernel& fk) { fk.dump_fails = true; };
  std::string what;
  try {
    make({instance()});
  } catch (const std::exception& ex) {
    what = ex.what();
  }
  BOOST_TEST(has_text(what, "cannot ask the kernel which addresses eth0 has"));
  BOOST_TEST(k->dels == 0);
}

// A reload that starts an instance with the host's address as a VIP is
// refused whole; the running instance keeps its VIP and its state.
BOOST_FIXTURE_TEST_CASE(reload_adding_the_host_address_is_refused_and_keeps_the_running_config, Fixture) {
  const IpAddress host = IpAddress::v4(10, 88, 1, 151);
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  k->host_entries[host] = {{24, 0}};
  const int dels = k->dels;
  auto next = instance();
  cfg::VirtualAddress own;
  own.address = "10.88.1.151";
  own.prefix_len = 24;
  own.where = "v.yaml:12:9: vrrp[0].virtual_ipaddresses[1]";
  next.virtual_ipaddresses.push_back(own);
  std::string what;
  try {
    svc->reload({next});
  } catch (const std::exception& ex) {
    what = ex.what();
  }
  BOOST_TEST(has_text(what, "v.yaml:12:9: vrrp[0].virtual_ipaddresses[1]: 10.88.1.151 is already an address of eth0"));
  BOOST_TEST(has_text(what, "the running instance is kept"));
  BOOST_TEST(k->dels == dels);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->addresses.count(kVip) == 1u);
  BOOST_TEST(k->host_entries.count(host) == 1u);
  run(100ms);
  BOOST_TEST(e().state() == fsm::State::master);
}

// The VIP typed as the address of another device (eth1's, VRRP on eth0):
// refused at start and at a reload naming the key and the device, nothing
// added or deleted anywhere. Before, the MASTER added it on eth0 beside
// eth1's, and as BACKUP the node answered ARP for it through eth1's.
BOOST_FIXTURE_TEST_CASE(an_address_of_another_device_as_the_vip_is_refused, Fixture) {
  before_start = [](FakeKernel& fk) { fk.elsewhere_entries[kVip] = {{"eth1", 3, {24, 0}}}; };
  auto inst = instance();
  inst.virtual_ipaddresses[0].where = "/etc/vipproxy/vipproxy.yaml:31:9: vrrp[0].virtual_ipaddresses[0].address";
  std::string what;
  try {
    make({inst});
  } catch (const std::exception& ex) {
    what = ex.what();
  }
  BOOST_TEST_MESSAGE(what);
  BOOST_TEST(has_text(what, "/etc/vipproxy/vipproxy.yaml:31:9: vrrp[0].virtual_ipaddresses[0].address: 10.88.1.160 "
                            "is already an address of eth1 (10.88.1.160/24 on eth1), not of eth0"));
  BOOST_TEST(!has_text(what, "ip address del"));  // the host's own: nothing to remove
  BOOST_TEST(k->dels == 0);
  BOOST_TEST(k->adds == 0);
  BOOST_TEST(k->adverts.empty());
}

BOOST_FIXTURE_TEST_CASE(a_leftover_of_ours_on_another_device_is_refused_with_how_to_remove_it, Fixture) {
  before_start = [](FakeKernel& fk) {
    fk.elsewhere_entries[kVip] = {{"eth2", 4, {32, vips::kVipAddressProtocol}}};
  };
  std::string what;
  try {
    make({instance()});
  } catch (const std::exception& ex) {
    what = ex.what();
  }
  BOOST_TEST(has_text(what, "vrrp VI_1: virtual_ipaddresses: 10.88.1.160 is already an address of eth2"));
  BOOST_TEST(has_text(what, "ip address del 10.88.1.160/32 dev eth2"));
  BOOST_TEST(k->dels == 0);
}

BOOST_FIXTURE_TEST_CASE(no_dump_of_the_other_devices_cannot_be_told_and_is_refused, Fixture) {
  before_start = [](FakeKernel& fk) { fk.elsewhere_dump_fails = true; };
  std::string what;
  try {
    make({instance()});
  } catch (const std::exception& ex) {
    what = ex.what();
  }
  BOOST_TEST(has_text(what, "cannot ask the kernel which devices have 10.88.1.160"));
  BOOST_TEST(k->adds == 0);
}

BOOST_FIXTURE_TEST_CASE(reload_adding_another_devices_address_is_refused_and_keeps_the_running_config, Fixture) {
  const IpAddress eth1 = IpAddress::v4(10, 88, 2, 151);
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  k->elsewhere_entries[eth1] = {{"eth1", 3, {24, 0}}};
  const int dels = k->dels, adds = k->adds;
  auto next = instance();
  cfg::VirtualAddress own;
  own.address = "10.88.2.151";
  own.prefix_len = 24;
  own.where = "v.yaml:12:9: vrrp[0].virtual_ipaddresses[1]";
  next.virtual_ipaddresses.push_back(own);
  std::string what;
  try {
    svc->reload({next});
  } catch (const std::exception& ex) {
    what = ex.what();
  }
  BOOST_TEST(has_text(what, "v.yaml:12:9: vrrp[0].virtual_ipaddresses[1]: 10.88.2.151 is already an address of eth1"));
  BOOST_TEST(has_text(what, "the running instance is kept"));
  BOOST_TEST(k->dels == dels);
  BOOST_TEST(k->adds == adds);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->addresses.count(eth1) == 0u);
}

// A VIP moved to another instance by a reload (here: the instance renamed)
// is ours because a running instance holds it, even on a kernel that keeps
// no mark: the reload goes through.
BOOST_FIXTURE_TEST_CASE(reload_moving_a_held_vip_to_another_instance_goes_through, Fixture) {
  before_start = [](FakeKernel& fk) { fk.keeps_marks = false; };
  make({instance()});
  run(150ms);
  BOOST_REQUIRE(e().state() == fsm::State::master);
  auto renamed = instance();
  renamed.name = "VI_2";
  BOOST_CHECK_NO_THROW(svc->reload({renamed}));
  BOOST_TEST(e().config().name == "VI_2");
  run(150ms);
  BOOST_TEST(e().state() == fsm::State::master);
  BOOST_TEST(k->addresses.count(kVip) == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
