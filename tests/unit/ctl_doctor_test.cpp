// `vipproxy doctor` verdict logic: facts in, OK/WARN/FAIL lines out. The
// probes that gather the facts are exercised by tests/integration/test_ops_notify.py.
#define BOOST_TEST_MODULE ctl_doctor
#include <boost/test/unit_test.hpp>
#include <map>
#include <sstream>

#include "cfg/load.h"
#include "ctl/doctor.h"
#include "daemon/privileges.h"

using ctl::Level;
namespace priv = daemon_::privileges;

namespace {

const char* kYaml = R"(node: catalog01
admin:
  listen: 127.0.0.1:8405
proxies:
  - name: postgres
    listen: 0.0.0.0:5433
    check: {type: http, port: 8008, method: OPTIONS, path: /primary}
    backends:
      - {name: catalog01, address: 192.168.1.151:5432}
      - {name: catalog02, address: 192.168.1.152:5432}
vrrp:
  - name: VI_1
    interface: enp0s3
    virtual_router_id: 51
    priority: 100
    advert_int: 1s
    authentication: {type: pass, password: BacChaME}
    virtual_ipaddresses: [192.168.1.160/24]
)";

cfg::Config config(const std::string& yaml = kYaml) { return cfg::load_string(yaml, "test.yaml"); }

constexpr uint64_t bit(int b) { return uint64_t{1} << b; }

bool any(const std::vector<ctl::Verdict>& vs, Level l) {
  for (const auto& v : vs)
    if (v.level == l) return true;
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(capeff_parsing) {
  std::string s = "Name:\tvipproxy\nCapInh:\t0000000000000000\nCapPrm:\t0000000000003000\n"
                  "CapEff:\t0000000000003400\nCapBnd:\t000001ffffffffff\n";
  BOOST_TEST(ctl::parse_capeff(s).value() == 0x3400u);
  BOOST_TEST(!ctl::parse_capeff("Name: x\n").has_value());
}

BOOST_AUTO_TEST_CASE(capabilities) {
  auto c = config();
  auto full = ctl::capability_verdicts(c, bit(priv::kCapNetAdmin) | bit(priv::kCapNetRaw), false);
  BOOST_TEST(!any(full, Level::fail));
  auto none = ctl::capability_verdicts(c, 0, false);
  BOOST_TEST(ctl::exit_code(none) == 1);
  BOOST_TEST(none[0].reason.find("CAP_NET_RAW") != std::string::npos);
  // Port 543 needs CAP_NET_BIND_SERVICE; 5433 does not.
  std::string low = kYaml;
  low.replace(low.find("0.0.0.0:5433"), 12, "0.0.0.0:543");
  auto v = ctl::capability_verdicts(config(low), bit(priv::kCapNetAdmin) | bit(priv::kCapNetRaw), false);
  BOOST_TEST(ctl::exit_code(v) == 1);
  BOOST_TEST(v.back().reason.find("CAP_NET_BIND_SERVICE") != std::string::npos);
  v = ctl::capability_verdicts(config(low), 0x3400, true);
  BOOST_TEST(ctl::exit_code(v) == 0);
}

// Doctor asks privileges::needed() (the daemon's own decision), so it cannot
// miss what the daemon keeps: a track script with `user:` runs through
// setpriv and is killed by process group on timeout.
BOOST_AUTO_TEST_CASE(capabilities_for_track_scripts_with_a_user) {
  std::string yaml = kYaml;
  yaml += "    track:\n      scripts:\n        - {name: chk, command: /bin/true, user: nobody}\n";
  const uint64_t vrrp_caps = bit(priv::kCapNetAdmin) | bit(priv::kCapNetRaw);
  auto v = ctl::capability_verdicts(config(yaml), vrrp_caps, true);
  BOOST_TEST(ctl::exit_code(v) == 1);
  for (const char* cap : {"CAP_KILL", "CAP_SETGID", "CAP_SETUID"}) {
    BOOST_TEST_INFO(cap);
    BOOST_TEST(v.back().reason.find(cap) != std::string::npos, v.back().reason);
  }
  BOOST_TEST(v.back().reason.find("track script chk, user nobody") != std::string::npos);
  const uint64_t all = vrrp_caps | bit(priv::kCapKill) | bit(priv::kCapSetgid) | bit(priv::kCapSetuid);
  v = ctl::capability_verdicts(config(yaml), all, true);
  BOOST_TEST(ctl::exit_code(v) == 0);
  BOOST_TEST(v.size() == 1u);
  // Nothing needed, nothing missing: one OK line that says so.
  v = ctl::capability_verdicts(config("proxies:\n  - {name: p, listen: '*:5433', backends: [{name: a, address: 10.0.0.1:1}]}\n"), 0,
                               false);
  BOOST_TEST(ctl::exit_code(v) == 0);
  BOOST_TEST(v.at(0).reason.find("none needed") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(data_path_kernel_is_flagged) {
  BOOST_TEST(ctl::data_path_verdicts(config()).empty());  // auto: nothing to say
  std::string yaml = kYaml;
  const std::string at = "    listen: 0.0.0.0:5433\n";
  for (const char* path : {"copy", "splice", "auto"}) {
    std::string y = yaml;
    y.insert(y.find(at) + at.size(), std::string("    data_path: ") + path + "\n");
    BOOST_TEST(ctl::data_path_verdicts(config(y)).empty(), path);
  }
  yaml.insert(yaml.find(at) + at.size(), "    data_path: kernel\n");
  auto v = ctl::data_path_verdicts(config(yaml));
  BOOST_REQUIRE(v.size() == 1u);
  BOOST_TEST((v[0].level == Level::warn));
  BOOST_TEST(v[0].check == "data path postgres");
  BOOST_TEST(v[0].reason.find("duplicated bytes") != std::string::npos, v[0].reason);
  BOOST_TEST(ctl::exit_code(v) == 0);  // a warning, not a failure
}

// The kernel path's program is loaded at start with CAP_BPF and
// CAP_PERFMON, which the daemon drops right after (so not in needed()):
// doctor said nothing of them, and a daemon that lacked them fell back to
// splice.
BOOST_AUTO_TEST_CASE(data_path_kernel_wants_bpf_and_perfmon) {
  std::string yaml = kYaml;
  const std::string at = "    listen: 0.0.0.0:5433\n";
  yaml.insert(yaml.find(at) + at.size(), "    data_path: kernel\n");
  const uint64_t vrrp_caps = bit(priv::kCapNetAdmin) | bit(priv::kCapNetRaw);
  auto v = ctl::capability_verdicts(config(yaml), vrrp_caps, false);
  BOOST_REQUIRE(!v.empty());
  BOOST_TEST((v.back().level == Level::warn));
  BOOST_TEST(v.back().reason.find("lacks CAP_BPF, CAP_PERFMON (loading the kernel data path at start, for "
                                  "data_path kernel of postgres)") != std::string::npos,
             v.back().reason);
  BOOST_TEST(ctl::exit_code(v) == 0);  // the daemon runs, on splice
  v = ctl::capability_verdicts(config(yaml), vrrp_caps | bit(priv::kCapBpf), false);
  BOOST_TEST(v.back().reason.find("lacks CAP_PERFMON (") != std::string::npos, v.back().reason);
  for (uint64_t enough : {vrrp_caps | bit(priv::kCapBpf) | bit(priv::kCapPerfmon), vrrp_caps | bit(priv::kCapSysAdmin)})
    BOOST_TEST(!any(ctl::capability_verdicts(config(yaml), enough, true), Level::warn));
  // Not for a proxy on another path.
  BOOST_TEST(!any(ctl::capability_verdicts(config(kYaml), vrrp_caps, true), Level::warn));
}

BOOST_AUTO_TEST_CASE(interfaces) {
  BOOST_TEST((ctl::interface_verdict("enp0s3", {}).level == Level::fail));
  BOOST_TEST((ctl::interface_verdict("enp0s3", {true, false, "down"}).level == Level::fail));
  BOOST_TEST((ctl::interface_verdict("enp0s3", {true, true, "down"}).level == Level::warn));
  BOOST_TEST((ctl::interface_verdict("enp0s3", {true, true, "up"}).level == Level::ok));
  BOOST_TEST((ctl::interface_verdict("lo", {true, true, "unknown"}).level == Level::ok));
}

BOOST_AUTO_TEST_CASE(nonlocal_bind_only_matters_on_a_vip) {
  ctl::SysctlFacts f;
  f.ip_nonlocal_bind = 0;
  f.arp_ignore_all = 0;
  f.arp_announce_all = 0;
  auto v = ctl::sysctl_verdicts(config(), "enp0s3", f);
  BOOST_TEST(!any(v, Level::fail));  // 0.0.0.0 listener: not needed
  std::string onvip = kYaml;
  onvip.replace(onvip.find("0.0.0.0:5433"), 12, "192.168.1.160:5433");
  BOOST_TEST(ctl::listeners_on_vips(config(onvip)).size() == 1u);
  v = ctl::sysctl_verdicts(config(onvip), "enp0s3", f);
  BOOST_TEST(ctl::exit_code(v) == 1);
  BOOST_TEST(v[0].reason.find("set it to 1") != std::string::npos);
  f.ip_nonlocal_bind = 1;
  BOOST_TEST(ctl::exit_code(ctl::sysctl_verdicts(config(onvip), "enp0s3", f)) == 0);
}

BOOST_AUTO_TEST_CASE(arp_sysctls_use_the_larger_value) {
  ctl::SysctlFacts f;
  f.ip_nonlocal_bind = 0;
  f.arp_ignore_all = 0;
  f.arp_ignore_if = 2;
  f.arp_announce_all = 2;
  f.arp_announce_if = 0;
  auto v = ctl::sysctl_verdicts(config(), "enp0s3", f);
  BOOST_REQUIRE(v.size() == 3u);
  BOOST_TEST((v[1].level == Level::warn));
  BOOST_TEST(v[1].reason.find("= 2") != std::string::npos);
  BOOST_TEST((v[2].level == Level::ok));
  BOOST_TEST(v[2].reason == "= 2");
  f.arp_ignore_if = 8;
  BOOST_TEST((ctl::sysctl_verdicts(config(), "enp0s3", f)[1].level == Level::fail));
}

BOOST_AUTO_TEST_CASE(adverts) {
  auto c = config();
  const auto& inst = c.vrrp[0];
  ctl::AdvertFacts f;
  f.error = "raw socket not allowed";
  BOOST_TEST((ctl::advert_verdict(inst, f).level == Level::warn));
  f.listened = true;
  f.seconds = 3.2;
  auto v = ctl::advert_verdict(inst, f);
  BOOST_TEST((v.level == Level::warn));
  BOOST_TEST(v.reason.find("no peer heard") != std::string::npos);
  f.heard = {{"192.168.1.152", 2, 51, 90}, {"192.168.1.152", 2, 51, 90}, {"192.168.1.9", 2, 7, 100}};
  v = ctl::advert_verdict(inst, f);
  BOOST_TEST((v.level == Level::ok));
  BOOST_TEST(v.reason.find("192.168.1.152 (v2, priority 90)") != std::string::npos);
  BOOST_TEST(v.reason.find("192.168.1.9") == std::string::npos);
  f.heard = {{"192.168.1.152", 3, 51, 90}};
  BOOST_TEST((ctl::advert_verdict(inst, f).level == Level::fail));  // version mismatch
}

BOOST_AUTO_TEST_CASE(adverts_from_another_cluster_on_our_vrid) {
  auto c = config();
  const auto& inst = c.vrrp[0];  // VRID 51, [192.168.1.160]
  ctl::AdvertFacts f;
  f.listened = true;
  f.seconds = 3.2;
  using L = std::vector<std::string>;
  // Only a foreign keepalived pair is heard: no peer, and it is named.
  f.heard = {{"192.168.1.5", 2, 51, 200, L{"192.168.1.170"}}};
  auto v = ctl::advert_verdict(inst, f);
  BOOST_TEST((v.level == Level::warn));
  BOOST_TEST(v.reason.find("no peer heard") != std::string::npos, v.reason);
  BOOST_TEST(v.reason.find("another VRRP cluster uses VRID 51: 192.168.1.5 (priority 200, addresses [192.168.1.170])") !=
                 std::string::npos,
             v.reason);
  // Our peer (same list, any order) and the foreign pair: WARN, peer named.
  f.heard = {{"192.168.1.152", 2, 51, 90, L{"192.168.1.160"}}, {"192.168.1.5", 3, 51, 200, L{"192.168.1.170"}}};
  v = ctl::advert_verdict(inst, f);
  BOOST_TEST((v.level == Level::warn));  // not FAIL: the v3 sender is not our peer
  BOOST_TEST(v.reason.find("heard 192.168.1.152 (v2, priority 90)") != std::string::npos, v.reason);
  BOOST_TEST(v.reason.find("192.168.1.5 (priority 200") != std::string::npos, v.reason);
  // The address owner may list other addresses (RFC 5798 §7.1): a peer.
  f.heard = {{"192.168.1.152", 2, 51, 255, L{"192.168.1.170"}}};
  BOOST_TEST((ctl::advert_verdict(inst, f).level == Level::ok));
}

BOOST_AUTO_TEST_CASE(foreign_routers_from_the_daemon_counters) {
  auto c = config();
  const auto& inst = c.vrrp[0];
  ctl::DaemonFacts f;
  f.where = "http://127.0.0.1:8405/status";
  f.error = "connect: Connection refused";
  auto v = ctl::foreign_routers_verdict(inst, f);
  BOOST_TEST((v.level == Level::ok));
  BOOST_TEST(v.reason.find("not checked") != std::string::npos);
  // It answered, but not with the counters: say what it answered.
  f.http_status = 401;
  f.error = "HTTP 401";
  v = ctl::foreign_routers_verdict(inst, f);
  BOOST_TEST((v.level == Level::ok));
  BOOST_TEST(v.reason.find("answered HTTP 401 (the token") != std::string::npos, v.reason);
  BOOST_TEST(v.reason.find("does not answer") == std::string::npos, v.reason);
  f.http_status = 0;
  f.reached = true;
  // The /status of a daemon that heard nothing foreign.
  f.status_json = R"({"vrrp":[{"name":"VI_1","drops":{"address_mismatch":0,"adver_int_mismatch":0,
      "version_mismatch":0},"owner_address_mismatch":0,"foreign_routers":[]}]})";
  v = ctl::foreign_routers_verdict(inst, f);
  BOOST_TEST((v.level == Level::ok));
  BOOST_TEST(v.reason.find("none heard") != std::string::npos);
  // Adverts from our own address: reflected, or a duplicate address.
  f.status_json = R"({"vrrp":[{"name":"VI_1","drops":{"address_mismatch":0,"adver_int_mismatch":0,
      "version_mismatch":0,"own_address":42},"owner_address_mismatch":0,"foreign_routers":[]}]})";
  v = ctl::foreign_routers_verdict(inst, f);
  BOOST_TEST((v.level == Level::warn));
  BOOST_TEST(v.reason.find("42 adverts from our own address (drops.own_address)") != std::string::npos, v.reason);
  // A foreign keepalived pair on VRID 51 and a v2 peer with another interval.
  f.status_json = R"({"vrrp":[{"name":"VI_1","drops":{"address_mismatch":1234,"adver_int_mismatch":7,
      "version_mismatch":0},"owner_address_mismatch":0,"foreign_routers":[
      {"source":"192.168.1.5","reason":"address_mismatch","version":2,"priority":200,"advert_int_ms":1000,
       "addresses":["192.168.1.170"],"adverts":1234,"last_seen_seconds_ago":0.4},
      {"source":"192.168.1.152","reason":"adver_int_mismatch","version":2,"priority":90,"advert_int_ms":3000,
       "addresses":["192.168.1.160"],"adverts":7,"last_seen_seconds_ago":2.0}]}]})";
  auto counters = ctl::instance_counters(f.status_json, "VI_1");
  BOOST_TEST(counters.found);
  BOOST_TEST(counters.address_mismatch == 1234u);
  BOOST_REQUIRE(counters.routers.size() == 2u);
  BOOST_TEST(counters.routers[0].addresses.at(0) == "192.168.1.170");
  v = ctl::foreign_routers_verdict(inst, f);
  BOOST_TEST((v.level == Level::warn));
  BOOST_TEST(v.reason.find("192.168.1.5 (VRRPv2, priority 200, 1234 adverts, last 0 s ago): lists [192.168.1.170], "
                           "ours [192.168.1.160]: another VRRP cluster on VRID 51?") != std::string::npos,
             v.reason);
  BOOST_TEST(v.reason.find("advert_int 3000 ms, ours 1000 ms") != std::string::npos, v.reason);
  // Another daemon config, or garbage: said, not crashed on.
  BOOST_TEST((ctl::foreign_routers_verdict(c.vrrp[0], {true, f.where, "", R"({"vrrp":[]})"}).level == Level::warn));
  BOOST_TEST(!ctl::instance_counters("not json", "VI_1").found);
  BOOST_TEST(!ctl::instance_counters(R"({"vrrp":[{"name":"VI_1","drops":7,"foreign_routers":[1,"x"]}]})", "VI_2").found);
  auto odd = ctl::instance_counters(R"({"vrrp":[{"name":"VI_1","drops":7,"foreign_routers":[1,"x"]}]})", "VI_1");
  BOOST_TEST(odd.found);
  BOOST_TEST(odd.routers.empty());
}

BOOST_AUTO_TEST_CASE(patroni_endpoints) {
  auto c = config();
  std::vector<ctl::CheckProbe> probes = {
      {"postgres", "catalog01", "OPTIONS http://192.168.1.151:8008/primary", true, 200, "", 1.5},
      {"postgres", "catalog02", "OPTIONS http://192.168.1.152:8008/primary", true, 503, "", 1.5}};
  auto v = ctl::patroni_verdicts(c, probes);
  BOOST_TEST(ctl::exit_code(v) == 0);
  BOOST_TEST(!any(v, Level::warn));
  BOOST_TEST(v[1].reason.find("answers 503") != std::string::npos);
  BOOST_TEST(v.back().reason.find("1 of 2") != std::string::npos);
  probes[1].reached = false;
  probes[1].error = "connect: Connection refused";
  v = ctl::patroni_verdicts(c, probes);
  BOOST_TEST(ctl::exit_code(v) == 1);
  probes[1] = probes[0];
  probes[1].backend = "catalog02";
  v = ctl::patroni_verdicts(c, probes);
  BOOST_TEST((v.back().level == Level::warn));  // two primaries
  probes[0].http_status = probes[1].http_status = 503;
  v = ctl::patroni_verdicts(c, probes);
  BOOST_TEST((v.back().level == Level::warn));  // nobody passes
}

BOOST_AUTO_TEST_CASE(etcd_members) {
  // The guide's patroni.yml: two etcd hosts.
  const char* patroni = R"(scope: bacula_cluster
namespace: /db/
name: catalog01
restapi:
  listen: 0.0.0.0:8008
etcd3:
  hosts:
  - 192.168.1.151:2379
  - 192.168.1.152:2379
)";
  auto hosts = ctl::etcd_hosts_from_patroni_yaml(patroni);
  BOOST_TEST(hosts.size() == 2u);
  BOOST_TEST(hosts[0] == "192.168.1.151:2379");
  BOOST_TEST(ctl::etcd_hosts_from_patroni_yaml("etcd:\n  hosts: http://a:2379, b:2379\n").size() == 2u);
  BOOST_TEST(ctl::etcd_hosts_from_patroni_yaml("etcd:\n  host: a:2379\n").at(0) == "a:2379");
  BOOST_TEST(ctl::etcd_hosts_from_patroni_yaml("- not a map").empty());

  BOOST_TEST(ctl::count_etcd_members(R"({"header":{},"members":[{"name":"db1"},{"name":"db2"}]})").value() == 2);
  BOOST_TEST(!ctl::count_etcd_members("nope").has_value());

  ctl::EtcdFacts f;
  f.hosts = hosts;
  f.members = 2;
  BOOST_TEST((ctl::etcd_verdict(f).level == Level::warn));
  f.members = 3;
  BOOST_TEST((ctl::etcd_verdict(f).level == Level::ok));
  f.members.reset();
  f.error = "connect: refused";
  f.source = "/etc/patroni/patroni.yml";
  auto v = ctl::etcd_verdict(f);
  BOOST_TEST((v.level == Level::warn));
  BOOST_TEST(v.reason.find("unknown") == 0u);
  BOOST_TEST((ctl::etcd_verdict({}).level == Level::warn));
  BOOST_TEST(ctl::etcd_verdict({}).reason.find("unknown") == 0u);
}

BOOST_AUTO_TEST_CASE(dcs_of_a_patroni_config) {
  using health::Dcs;
  struct Case {
    const char* yaml;
    Dcs want;
  };
  const Case cases[] = {
      {"scope: c\netcd3:\n  hosts: [a:2379]\n", Dcs::etcd3},  // the guide's
      {"scope: c\netcd:\n  host: a:2379\n", Dcs::etcd},
      {"consul:\n  host: a:8500\n", Dcs::consul},
      {"kubernetes: {}\n", Dcs::kubernetes},
      {"raft:\n  data_dir: /x\n", Dcs::raft},
      {"zookeeper:\n  hosts: [a]\n", Dcs::zookeeper},
      {"scope: c\n", Dcs::unknown},                               // none
      {"etcd: {host: a}\netcd3: {host: a}\n", Dcs::unknown},     // several
      {"- not a map\n", Dcs::unknown},
      {"etcd3: [unclosed\n", Dcs::unknown},                      // not YAML
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.yaml) { BOOST_TEST((ctl::dcs_from_patroni_yaml(c.yaml) == c.want)); }
  }
}

// A TLS check's client key readable (or writable) by every user of the host:
// WARN, naming the file, the mode and the fix; owner/group only: OK; a key
// shared by two proxies judged once; no client certificate: no line.
BOOST_AUTO_TEST_CASE(tls_client_keys) {
  const std::string tls_yaml = R"(node: catalog01
proxies:
  - name: postgres
    listen: 0.0.0.0:5433
    check: {type: http, port: 8008, tls: {cert_file: /etc/vipproxy/client.pem}}
    backends: [{name: catalog01, address: 192.168.1.151:5432}]
  - name: replicas
    listen: 0.0.0.0:5434
    check: {type: http, port: 8008, path: /replica, tls: {cert_file: /etc/vipproxy/client.pem}}
    backends: [{name: catalog01, address: 192.168.1.151:5432}]
  - name: other
    listen: 0.0.0.0:5435
    check: {type: http, port: 8008, tls: {cert_file: /etc/vipproxy/b.crt, key_file: /etc/vipproxy/b.key}}
    backends: [{name: catalog01, address: 192.168.1.151:5432}]
  - name: plain
    listen: 0.0.0.0:5436
    check: {type: http, port: 8008, tls: true}
    backends: [{name: catalog01, address: 192.168.1.151:5432}]
)";
  auto c = config(tls_yaml);
  std::map<std::string, unsigned> modes = {{"/etc/vipproxy/client.pem", 0644}, {"/etc/vipproxy/b.key", 0640}};
  std::vector<std::string> asked;
  auto mode_of = [&](const std::string& path) -> std::optional<unsigned> {
    asked.push_back(path);
    auto it = modes.find(path);
    return it == modes.end() ? std::nullopt : std::optional<unsigned>(it->second);
  };
  auto v = ctl::tls_key_verdicts(c, mode_of);
  BOOST_TEST(asked == (std::vector<std::string>{"/etc/vipproxy/client.pem", "/etc/vipproxy/b.key"}));
  BOOST_TEST_REQUIRE(v.size() == 2u);
  BOOST_TEST((v[0].level == Level::warn));
  BOOST_TEST(v[0].check == "check key postgres");
  BOOST_TEST(v[0].reason.find("/etc/vipproxy/client.pem") != std::string::npos, v[0].reason);
  BOOST_TEST(v[0].reason.find("readable by every user") != std::string::npos, v[0].reason);
  BOOST_TEST(v[0].reason.find("mode 0644") != std::string::npos, v[0].reason);
  BOOST_TEST(v[0].reason.find("chmod o-rwx") != std::string::npos, v[0].reason);
  BOOST_TEST((v[1].level == Level::ok));
  BOOST_TEST(v[1].reason.find("/etc/vipproxy/b.key") != std::string::npos, v[1].reason);
  BOOST_TEST(v[1].reason.find("mode 0640") != std::string::npos, v[1].reason);

  modes["/etc/vipproxy/client.pem"] = 0602;
  v = ctl::tls_key_verdicts(c, mode_of);
  BOOST_TEST((v.at(0).level == Level::warn));
  BOOST_TEST(v[0].reason.find("writable by every user") != std::string::npos, v[0].reason);
  modes["/etc/vipproxy/client.pem"] = 0600;
  BOOST_TEST(!any(ctl::tls_key_verdicts(c, mode_of), Level::warn));
  // Unreadable: no line (the check's own line says why).
  modes.clear();
  BOOST_TEST(ctl::tls_key_verdicts(c, mode_of).empty());
  // No TLS client certificate anywhere: nothing asked, no line.
  asked.clear();
  BOOST_TEST(ctl::tls_key_verdicts(config(), mode_of).empty());
  BOOST_TEST(asked.empty());
}

BOOST_AUTO_TEST_CASE(patroni_versions_against_known_defects) {
  const std::string v302 = R"({"state": "running", "role": "master", "patroni": {"version": "3.0.2", "scope": "c"}})";
  const std::string v303 = R"({"state": "running", "role": "replica", "patroni": {"version": "3.0.3", "scope": "c"}})";
  ctl::PatroniVersionProbe p1{"postgres", "catalog01", "GET http://192.168.1.151:8008/patroni", true, 200, v302, ""};
  ctl::PatroniVersionProbe p2{"postgres", "catalog02", "GET http://192.168.1.152:8008/patroni", true, 200, v303, ""};
  ctl::DcsFacts etcd3{health::Dcs::etcd3, "/etc/patroni/patroni.yml", ""};

  // 3.0.2 on etcd3: WARN naming the defect and the fixed version; 3.0.3: OK.
  auto v = ctl::patroni_version_verdicts({p1, p2}, etcd3);
  BOOST_REQUIRE(v.size() == 2u);
  BOOST_TEST((v[0].level == Level::warn));
  BOOST_TEST(v[0].check == "patroni postgres/catalog01");
  BOOST_TEST(v[0].reason.find("Patroni 3.0.2 with etcd3 has patroni#2689") == 0u, v[0].reason);
  BOOST_TEST(v[0].reason.find("fixed in Patroni 3.0.3") != std::string::npos, v[0].reason);
  BOOST_TEST(v[0].reason.find("DCS etcd3 from /etc/patroni/patroni.yml") != std::string::npos, v[0].reason);
  BOOST_TEST((v[1].level == Level::ok));
  BOOST_TEST(v[1].reason.find("Patroni 3.0.3") == 0u, v[1].reason);
  BOOST_TEST(ctl::exit_code(v) == 0);  // a warning, not a failure

  // Another DCS: the etcd3 defect does not apply.
  v = ctl::patroni_version_verdicts({p1}, {health::Dcs::consul, "p.yml", ""});
  BOOST_TEST((v.at(0).level == Level::ok));

  // DCS unknown: the defect is named with its condition, and how to know.
  v = ctl::patroni_version_verdicts({p1}, {health::Dcs::unknown, "", "cannot read /etc/patroni/patroni.yml"});
  BOOST_TEST((v.at(0).level == Level::warn));
  BOOST_TEST(v[0].reason.find("if its DCS is etcd3") != std::string::npos, v[0].reason);
  BOOST_TEST(v[0].reason.find("--patroni-config") != std::string::npos, v[0].reason);

  // No version to judge: WARN "version unknown", never OK.
  auto bad = p1;
  bad.reached = false;
  bad.error = "connect: Connection refused";
  auto status = p1;
  status.http_status = 404;
  auto nobody = p1;
  nobody.body = "<html>";
  auto weird = p1;
  weird.body = R"({"patroni": {"version": "next"}})";
  for (const auto& p : {bad, status, nobody, weird}) {
    v = ctl::patroni_version_verdicts({p}, etcd3);
    BOOST_TEST_CONTEXT(v.at(0).reason) {
      BOOST_TEST((v[0].level == Level::warn));
      BOOST_TEST(v[0].reason.find("patroni#") == std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(verdict_lines) {
  BOOST_TEST(ctl::format_verdict({Level::fail, "config", "bad"}) == "FAIL config: bad");
  BOOST_TEST(ctl::format_verdict({Level::ok, "x", "y"}) == "OK   x: y");
  // What a backend or the daemon answered never drives the terminal (a
  // Patroni version string with ESC sequences); our own line breaks indent.
  BOOST_TEST(ctl::format_verdict({Level::warn, "patroni b1", "version 3.0.2\x1b[2J\x1b]0;x\x07"}) ==
             "WARN patroni b1: version 3.0.2\\x1b[2J\\x1b]0;x\\x07");
  BOOST_TEST(ctl::format_verdict({Level::fail, "config", "first\nsecond"}) == "FAIL config: first\n      second");
  BOOST_TEST(ctl::exit_code({{Level::warn, "a", "b"}}) == 0);
}

BOOST_AUTO_TEST_CASE(admin_endpoint) {
  ctl::AdminFacts f;
  f.address = "127.0.0.1:8405";
  // Nothing answers: normal before the first start, so a warning.
  f.error = "connect: Connection refused";
  auto v = ctl::admin_verdict(f);
  BOOST_TEST((v.level == Level::warn));
  BOOST_TEST(v.reason.find("http://127.0.0.1:8405/status does not answer (connect: Connection refused)") == 0u);
  // Something listens but its answer is not HTTP, or cut: not "vipproxy is
  // not running".
  f.connected = true;
  f.error = "read: bad version";
  v = ctl::admin_verdict(f);
  BOOST_TEST((v.level == Level::warn));
  BOOST_TEST(v.reason == "http://127.0.0.1:8405/status accepted the connection but gave no complete HTTP answer "
                         "(read: bad version): another service on that port?", v.reason);
  f.connected = false;
  // 401 without a token: say how to give one (never on the command line).
  f.reached = true;
  f.http_status = 401;
  v = ctl::admin_verdict(f);
  BOOST_TEST((v.level == Level::warn));
  BOOST_TEST(v.reason.find("wants a token") != std::string::npos);
  BOOST_TEST(v.reason.find("--token-file FILE or $VIPPROXY_TOKEN") != std::string::npos);
  // 401 with a token: name where the refused one came from.
  f.token_source = "$VIPPROXY_TOKEN";
  v = ctl::admin_verdict(f);
  BOOST_TEST(v.reason.find("refused the token from $VIPPROXY_TOKEN") != std::string::npos);
  f.http_status = 503;
  BOOST_TEST(ctl::admin_verdict(f).reason.find("answered HTTP 503") != std::string::npos);
  f.http_status = 200;
  f.not_json = true;
  BOOST_TEST((ctl::admin_verdict(f).level == Level::warn));
  f.not_json = false;
  f.version = "0.9";
  f.node = "catalog01";
  v = ctl::admin_verdict(f);
  BOOST_TEST((v.level == Level::ok));
  BOOST_TEST(v.reason == "http://127.0.0.1:8405/status answers (vipproxy 0.9, node catalog01); token from $VIPPROXY_TOKEN");
  ctl::AdminFacts off;
  off.enabled = false;
  BOOST_TEST((ctl::admin_verdict(off).level == Level::ok));
  BOOST_TEST(ctl::admin_verdict(off).reason == "disabled (admin.enabled: false)");
}

// A usage error is exit 2 before any probe: an --advert-seconds that is not
// a plain number of seconds (nan, inf, 1e30 made a deadline outside the
// clock's range; "5s" was read as 5).
BOOST_AUTO_TEST_CASE(advert_seconds_is_checked) {
  for (const char* bad : {"nan", "inf", "1e30", "-1", "5s", "", "x"}) {
    std::ostringstream out, err;
    const char* argv[] = {"doctor", "--config", "/nonexistent/vipproxy.yaml", "--advert-seconds", bad};
    BOOST_TEST(ctl::run_doctor_cli(5, argv, out, err) == 2, bad);
    BOOST_TEST(err.str().find("--advert-seconds wants a number of seconds") != std::string::npos, err.str());
    BOOST_TEST(out.str().empty(), out.str());
  }
}

// Every option also as --name=VALUE, like `vipproxy status` (doctor took
// only --config=). The config is absent: one FAIL, exit 1, no usage error.
BOOST_AUTO_TEST_CASE(options_with_equals) {
  std::ostringstream out, err;
  const char* argv[] = {"doctor", "--config=/nonexistent/vipproxy.yaml", "--token-file=/nonexistent/token",
                        "--admin=127.0.0.1:1", "--advert-seconds=5", "--etcd=127.0.0.1:1",
                        "--patroni-config=/nonexistent/patroni.yml"};
  BOOST_TEST(ctl::run_doctor_cli(7, argv, out, err) == 1, err.str());
  BOOST_TEST(err.str().empty(), err.str());
  BOOST_TEST(out.str().find("FAIL config: ") == 0, out.str());
}

// A VIP already on its device (vrrp/vips.h claim_at_start), said before the
// daemon refuses to start with it: the host's own address (RFC 5798's address
// owner, or a typo) is a FAIL naming where the file gives it; a marked
// leftover with no daemon holding it is a WARN; the running MASTER's VIP and
// a free address are OK; unreadable is a WARN.
BOOST_AUTO_TEST_CASE(vip_already_an_address_of_the_host) {
  using vrrp::vips::Entry;
  cfg::VirtualAddress va;
  va.address = "10.0.0.11";
  va.prefix_len = 24;
  va.where = "v.yaml:19:19: vrrp[0].virtual_ipaddresses[0].address";
  ctl::VipFacts f;
  f.device = "eth0";
  f.entries = std::vector<Entry>{};
  BOOST_TEST((ctl::vip_address_verdict(va, f).level == Level::ok));
  f.entries = std::vector<Entry>{{24, 0}};
  auto v = ctl::vip_address_verdict(va, f);
  BOOST_TEST((v.level == Level::fail));
  BOOST_TEST(v.check == "VIP 10.0.0.11");
  BOOST_TEST(v.reason.find("already an address of eth0 (10.0.0.11/24) that vipproxy did not add") != std::string::npos,
             v.reason);
  BOOST_TEST(v.reason.find("v.yaml:19:19") != std::string::npos, v.reason);
  f.entries = std::vector<Entry>{{24, vrrp::vips::kVipAddressProtocol}};
  v = ctl::vip_address_verdict(va, f);
  BOOST_TEST((v.level == Level::warn));
  BOOST_TEST(v.reason.find("left by a run that did not stop cleanly") != std::string::npos, v.reason);
  f.held_by_daemon = true;
  BOOST_TEST((ctl::vip_address_verdict(va, f).level == Level::ok));
  f.held_by_daemon = false;
  f.entries.reset();
  f.error = "vrrp: AF_PACKET socket for gratuitous ARP (needs CAP_NET_RAW): Operation not permitted";
  v = ctl::vip_address_verdict(va, f);
  BOOST_TEST((v.level == Level::warn));
  BOOST_TEST(v.reason.find("needs CAP_NET_RAW") != std::string::npos, v.reason);

  // The same address on another device (eth1's own, VRRP on eth0): FAIL,
  // naming the device and where the file gives it.
  f.error.clear();
  f.entries = std::vector<Entry>{};
  f.elsewhere = {{"eth1", 3, {24, 0}}};
  v = ctl::vip_address_verdict(va, f);
  BOOST_TEST((v.level == Level::fail));
  BOOST_TEST(v.reason.find("already an address of eth1 (10.0.0.11/24 on eth1), not of eth0") != std::string::npos,
             v.reason);
  BOOST_TEST(v.reason.find("v.yaml:19:19") != std::string::npos, v.reason);
  f.elsewhere.clear();

  const std::string status =
      R"({"vrrp":[{"name":"VI_1","vips":[{"address":"10.0.0.11/24","device":"eth0","desired":"present",)"
      R"("actual":"present"}]}]})";
  BOOST_TEST(ctl::daemon_holds_vip(status, "10.0.0.11", "eth0"));
  BOOST_TEST(!ctl::daemon_holds_vip(status, "10.0.0.11", "eth1"));
  BOOST_TEST(!ctl::daemon_holds_vip(status, "10.0.0.12", "eth0"));
  BOOST_TEST(!ctl::daemon_holds_vip("not json", "10.0.0.11", "eth0"));
}
