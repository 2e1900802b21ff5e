// cfg::diff: what a SIGHUP reload changes, named the way the log shows it,
// and the decisions that depend on it (kept backends, VRRP restarts).
#define BOOST_TEST_MODULE cfg_diff
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <string>

#include "cfg/diff.h"
#include "cfg/load.h"

namespace {

const char* kBase = R"(
node: catalog01
admin: {listen: 127.0.0.1:8405}
proxies:
  - name: postgres
    listen: 0.0.0.0:5433
    check: {type: http, path: /primary, interval: 2s, port: 8008}
    backends:
      - {name: catalog01, address: 10.88.1.11:5432}
      - {name: catalog02, address: 10.88.1.12:5432}
vrrp:
  - name: VI_1
    interface: eth0
    virtual_router_id: 51
    priority: 100
    virtual_ipaddresses: [10.88.1.100/24]
)";

cfg::Config load(const std::string& text) { return cfg::load_string(text, "t.yaml"); }

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, "fixture lacks " << from);
  return s.replace(at, from.size(), to);
}

bool has(const std::vector<std::string>& v, const std::string& line) {
  return std::find(v.begin(), v.end(), line) != v.end();
}

}  // namespace

BOOST_AUTO_TEST_CASE(same_file_is_no_change) {
  BOOST_TEST(cfg::diff(load(kBase), load(kBase)).empty());
}

BOOST_AUTO_TEST_CASE(backend_added_removed_and_readdressed) {
  auto next = replace(kBase, "      - {name: catalog02, address: 10.88.1.12:5432}",
                      "      - {name: catalog02, address: 10.88.1.22:5432}\n"
                      "      - {name: catalog03, address: 10.88.1.13:5432}");
  auto d = cfg::diff(load(kBase), load(next));
  BOOST_TEST(has(d.changes, "proxy postgres: backend catalog03 added (10.88.1.13:5432)"));
  BOOST_TEST(has(d.changes,
                 "proxy postgres: backend catalog02 address 10.88.1.12:5432 -> 10.88.1.22:5432 (a new backend: "
                 "its sessions drain)"));
  auto removed = cfg::diff(load(next), load(kBase));
  BOOST_TEST(has(removed.changes, "proxy postgres: backend catalog03 removed (its sessions drain)"));
  BOOST_TEST(d.restart_only.empty());
}

BOOST_AUTO_TEST_CASE(check_and_settings_changes_are_named) {
  auto next = replace(kBase, "interval: 2s, port: 8008", "interval: 1s, port: 8009, rise: 3");
  auto d = cfg::diff(load(kBase), load(next));
  BOOST_TEST(has(d.changes, "proxy postgres: check.interval 2000ms -> 1000ms"));
  BOOST_TEST(has(d.changes, "proxy postgres: check.port 8008 -> 8009"));
  BOOST_TEST(has(d.changes, "proxy postgres: check.rise 2 -> 3"));
  BOOST_TEST(d.changes.size() == 3u);
}

BOOST_AUTO_TEST_CASE(expect_role_change_is_named) {
  auto next = replace(kBase, "interval: 2s, port: 8008", "interval: 2s, port: 8008, expect_role: any");
  auto d = cfg::diff(load(kBase), load(next));
  BOOST_TEST(has(d.changes, "proxy postgres: check.expect_role auto -> any"));
  BOOST_TEST(d.changes.size() == 1u);
}

BOOST_AUTO_TEST_CASE(proxies_added_removed_and_relistened) {
  auto next = replace(kBase, "listen: 0.0.0.0:5433", "listen: 0.0.0.0:5434");
  auto d = cfg::diff(load(kBase), load(next));
  BOOST_TEST(has(d.changes, "proxy postgres: listen 0.0.0.0:5433 -> 0.0.0.0:5434"));
  auto a = load(kBase), b = load(next);
  BOOST_TEST(!cfg::same_listener(a.proxies[0], b.proxies[0]));
  b.proxies[0].name = "pg2";
  auto d2 = cfg::diff(a, b);
  BOOST_TEST(has(d2.changes, "proxy pg2 added (listen 0.0.0.0:5434)"));
  BOOST_TEST(has(d2.changes, "proxy postgres removed (its sessions drain)"));
}

BOOST_AUTO_TEST_CASE(vrrp_in_place_or_restart) {
  auto a = load(kBase);
  auto b = load(replace(kBase, "priority: 100", "priority: 150\n    advert_int: 2\n    preempt: false"));
  BOOST_TEST(!cfg::vrrp_needs_restart(a.vrrp[0], b.vrrp[0]));
  auto d = cfg::diff(a, b);
  BOOST_TEST(has(d.changes, "vrrp VI_1: priority 100 -> 150"));
  BOOST_TEST(has(d.changes, "vrrp VI_1: advert_int 1000ms -> 2000ms"));
  BOOST_TEST(has(d.changes, "vrrp VI_1: preempt true -> false"));
  BOOST_TEST(!has(d.changes, "vrrp VI_1: the instance restarts"));
  // The state key is a starting hint: changing it alone restarts nothing.
  auto hint = load(replace(kBase, "priority: 100", "priority: 100\n    state: MASTER"));
  BOOST_TEST(!cfg::vrrp_needs_restart(a.vrrp[0], hint.vrrp[0]));
  // Whom unicast adverts go to, and the VRRPv3 checksum form: in place too
  // (vrrp_engine_test review2/reload_unicast_peers_or_checksum_in_place_keeps_master).
  auto uni = load(replace(kBase, "priority: 100", "priority: 100\n    version: 3\n    unicast_peers: [10.88.1.2]"));
  auto uni2 = load(replace(kBase, "priority: 100",
                           "priority: 100\n    version: 3\n    unicast_peers: [10.88.1.2, 10.88.1.3]\n    checksum: rfc9568"));
  BOOST_TEST(!cfg::vrrp_needs_restart(uni.vrrp[0], uni2.vrrp[0]));
  BOOST_TEST(!has(cfg::diff(uni, uni2).changes, "vrrp VI_1: the instance restarts"));
  // A VIP's prefix length or label, the order of the list: in place too
  // (vrrp_engine_test review2/reload_vip_prefix_label_or_order_in_place_keeps_master);
  // another device for a VIP, another address: a restart.
  auto two = load(replace(kBase, "[10.88.1.100/24]", "[10.88.1.100/24, 10.88.1.101/24]"));
  for (const auto& to : {std::string("[10.88.1.101/24, 10.88.1.100/24]"), std::string("[10.88.1.100/32, 10.88.1.101/24]"),
                         std::string("[{address: 10.88.1.100/24, label: 'eth0:vip'}, 10.88.1.101/24]")}) {
    auto c = load(replace(kBase, "[10.88.1.100/24]", to));
    BOOST_TEST_CONTEXT(to) {
      BOOST_TEST(!cfg::vrrp_needs_restart(two.vrrp[0], c.vrrp[0]));
      BOOST_TEST(!has(cfg::diff(two, c).changes, "vrrp VI_1: the instance restarts"));
    }
  }
  auto dev = load(replace(kBase, "[10.88.1.100/24]", "[{address: 10.88.1.100/24, device: eth1}, 10.88.1.101/24]"));
  BOOST_TEST(cfg::vrrp_needs_restart(two.vrrp[0], dev.vrrp[0]));
  // Multicast to unicast and back: another socket (the group joined or not).
  BOOST_TEST(cfg::vrrp_needs_restart(a.vrrp[0], uni.vrrp[0]));
  BOOST_TEST(cfg::vrrp_needs_restart(uni.vrrp[0], a.vrrp[0]));
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"virtual_router_id: 51", "virtual_router_id: 52"},
           {"interface: eth0", "interface: eth1"},
           {"[10.88.1.100/24]", "[10.88.1.101/24]"}}) {
    auto c = load(replace(kBase, from, to));
    BOOST_TEST_CONTEXT(to) {
      BOOST_TEST(cfg::vrrp_needs_restart(a.vrrp[0], c.vrrp[0]));
      BOOST_TEST(has(cfg::diff(a, c).changes, "vrrp VI_1: the instance restarts"));
    }
  }
}

BOOST_AUTO_TEST_CASE(passwords_never_appear_in_the_changes) {
  auto a = load(replace(kBase, "priority: 100", "priority: 100\n    version: 2\n    authentication: {type: pass, password: s3cret}"));
  auto b = load(replace(kBase, "priority: 100", "priority: 100\n    version: 2\n    authentication: {type: pass, password: n3wone}"));
  auto d = cfg::diff(a, b);
  BOOST_TEST(has(d.changes, "vrrp VI_1: authentication changed"));
  for (const auto& l : d.changes) {
    BOOST_TEST(l.find("s3cret") == std::string::npos);
    BOOST_TEST(l.find("n3wone") == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(restart_only_keys) {
  auto b = load(replace(replace(kBase, "node: catalog01", "node: other\nthreads: 3\nvrrp_rt_priority: 5"),
                        "127.0.0.1:8405", "127.0.0.1:8406"));
  auto d = cfg::diff(load(kBase), b);
  BOOST_TEST(has(d.restart_only, "threads"));
  BOOST_TEST(has(d.restart_only, "vrrp_rt_priority"));
  BOOST_TEST(has(d.restart_only, "node"));
  BOOST_TEST(has(d.restart_only, "admin.listen"));
  BOOST_TEST(d.changes.empty());
}

// A file that differs from the running configuration must never be
// "unchanged": the reload then applied nothing, said "SIGHUP: ... unchanged",
// and the key changed in the file was not what ran (nor what /status shows).
// `state` (the starting hint) was such a key: edited alone, it was ignored
// until a restart with no word in the log.
BOOST_AUTO_TEST_CASE(every_change_in_the_file_is_a_change) {
  auto a = load(kBase);
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"priority: 100", "priority: 100\n    state: MASTER"},
           {"priority: 100", "priority: 101"},
           {"priority: 100", "priority: 100\n    garp: {master_repeat: 2}"},
           {"priority: 100", "priority: 100\n    notify: {master: /bin/true}"},
           {"interval: 2s", "interval: 3s"},
           {"0.0.0.0:5433", "0.0.0.0:5434"},
           {"node: catalog01", "node: other"},
           {"node: catalog01", "node: catalog01\nlog_level: debug"},
           {"node: catalog01", "node: catalog01\nhard_stop_after: 9s"},
       }) {
    auto b = load(replace(kBase, from, to));
    BOOST_TEST_CONTEXT(to) {
      BOOST_REQUIRE(!(a == b));
      BOOST_TEST(!cfg::diff(a, b).empty());
    }
  }
  auto master = load(replace(kBase, "priority: 100", "priority: 100\n    state: MASTER"));
  BOOST_TEST(has(cfg::diff(a, master).changes,
                 "vrrp VI_1: state backup -> master (a starting hint: used when the instance next starts)"));
  BOOST_TEST(!has(cfg::diff(a, master).changes, "vrrp VI_1: the instance restarts"));
}
