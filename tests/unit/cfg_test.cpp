// Over 500 lines: one test binary per component, most of it tables of valid and invalid inputs.
// cfg: YAML -> validated structs. The examples users copy must load as they
// are; every invalid input must come back as a cfg::Error naming the line,
// the key and what was expected (never a crash, never a silent default).
#define BOOST_TEST_MODULE cfg
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <optional>
#include <string>
#include <string_view>

#include "cfg/listen.h"
#include "cfg/load.h"

namespace bdata = boost::unit_test::data;
using namespace std::chrono_literals;
using cfg::Duration;

namespace {

const std::string kFixtures = std::string(VIPPROXY_SOURCE_DIR) + "/tests/fixtures/config/";

bool has(const std::string& s, std::string_view sub) { return s.find(sub) != std::string::npos; }

// Loads `yaml` and returns the error message ("" when it loaded).
std::string error_of(std::string_view yaml) {
  try {
    cfg::load_string(yaml, "t.yaml");
  } catch (const cfg::Error& e) {
    return e.what();
  }
  return "";
}

// The error must name the line ("t.yaml:LINE:"), the key path and what was
// expected. `key` is the end of the dotted path the error carries
// (cfg::Error::key), "weight" for "vrrp[0].track.proxies[0].weight"; "" means
// an error of the document itself: no key at all, and the message goes
// straight from the position to the reason.
void expect_error(std::string_view yaml, int line, std::string_view key, std::string_view expectation) {
  std::optional<cfg::Error> err;
  try {
    cfg::load_string(yaml, "t.yaml");
  } catch (const cfg::Error& e) {
    err = e;
  }
  BOOST_TEST_CONTEXT("yaml:\n" << yaml << "message: " << (err ? err->what() : "(none: it loaded)")) {
    BOOST_REQUIRE(err.has_value());
    const std::string msg = err->what();
    BOOST_TEST(err->file() == "t.yaml");
    BOOST_TEST(err->line() == line);
    BOOST_TEST(has(msg, "t.yaml:" + std::to_string(line) + ":"));
    if (key.empty()) {
      BOOST_TEST(err->key() == "");
      // "t.yaml:LINE:COL: reason" or "t.yaml:LINE: reason", nothing between.
      const std::string pos = "t.yaml:" + std::to_string(line) + ":" +
                              (err->column() ? std::to_string(err->column()) + ": " : std::string(" "));
      BOOST_TEST(msg.rfind(pos + err->reason(), 0) == 0u);
    } else {
      BOOST_TEST(err->key().ends_with(key), "key " << err->key());
      BOOST_TEST(has(msg, err->key() + ": "));
    }
    BOOST_TEST(has(err->reason(), expectation));
  }
}

// A valid proxy with `extra` lines spliced into it (6-space indent for proxy
// keys). Line numbers: "extra" starts at line 5.
std::string proxy_with(std::string_view extra) {
  return std::string(
             "proxies:\n"
             "  - name: pg\n"
             "    listen: 0.0.0.0:5433\n"
             "    backends: [{name: a, address: 10.0.0.1:5432}]\n") +
         std::string(extra);
}

// A valid check block: `extra` lines start at line 6.
std::string check_with(std::string_view extra) { return proxy_with("    check:\n") + std::string(extra); }

// A valid VRRP instance: `extra` starts at line 6.
std::string vrrp_with(std::string_view extra) {
  return std::string(
             "vrrp:\n"
             "  - name: VI_1\n"
             "    interface: eth0\n"
             "    virtual_router_id: 51\n"
             "    virtual_ipaddresses: [192.168.1.160/24]\n") +
         std::string(extra);
}

}  // namespace

// ------------------------------------------------------------------ examples

BOOST_AUTO_TEST_CASE(catalog01_loads_as_written) {
  cfg::Config c = cfg::load_file(kFixtures + "catalog01.yaml");
  BOOST_TEST(c.node == "catalog01");
  BOOST_TEST(c.source == kFixtures + "catalog01.yaml");
  BOOST_TEST(c.admin.enabled);
  BOOST_TEST(c.admin.listen.to_string() == "127.0.0.1:8405");
  BOOST_REQUIRE_EQUAL(c.proxies.size(), 1u);
  const cfg::Proxy& p = c.proxies[0];
  BOOST_TEST(p.name == "postgres");
  BOOST_TEST(p.listen.host == "0.0.0.0");
  BOOST_TEST(p.listen.port == 5433);
  BOOST_TEST((p.check.type == cfg::CheckType::http));
  BOOST_TEST(p.check.port.value_or(0) == 8008);
  BOOST_TEST(p.check.method == "OPTIONS");
  BOOST_TEST(p.check.path == "/primary");
  BOOST_TEST(p.check.expect_status == 200u);
  BOOST_TEST(p.check.interval.count() == 2000);
  BOOST_TEST(p.check.fast_interval.count() == 500);
  BOOST_TEST(p.check.timeout.count() == 1000);
  BOOST_TEST(p.check.rise == 2u);
  BOOST_TEST(p.check.fall == 3u);
  BOOST_TEST(p.connect_timeout.count() == 5000);
  BOOST_TEST((p.balance == cfg::Balance::first));
  BOOST_TEST(p.idle_timeout.count() == 0);
  BOOST_TEST(p.client_fin_timeout.count() == 3600000);  // a half-closed session lives 1h without I/O
  BOOST_TEST(p.server_fin_timeout.count() == 3600000);
  BOOST_TEST(p.shutdown_sessions_on_down);
  BOOST_TEST(!p.log_sessions);
  BOOST_REQUIRE_EQUAL(p.backends.size(), 2u);
  BOOST_TEST(p.backends[0].name == "catalog01");
  BOOST_TEST(p.backends[0].address.to_string() == "192.168.1.151:5432");
  BOOST_TEST(p.backends[1].name == "catalog02");
  BOOST_TEST(p.backends[1].address.host == "192.168.1.152");
  BOOST_TEST(p.backends[1].address.port == 5432);
  BOOST_TEST(!p.backends[1].check_port.has_value());

  BOOST_REQUIRE_EQUAL(c.vrrp.size(), 1u);
  const cfg::VrrpInstance& v = c.vrrp[0];
  BOOST_TEST(v.name == "VI_1");
  BOOST_TEST(v.interface == "enp0s3");
  BOOST_TEST((v.state == cfg::VrrpState::master));
  BOOST_TEST(v.virtual_router_id == 51u);
  BOOST_TEST(v.priority == 100u);
  BOOST_TEST(v.version == 2u);
  BOOST_TEST(v.advert_int.count() == 1000);
  BOOST_TEST((v.auth_type == cfg::AuthType::pass));
  BOOST_TEST(v.auth_password == "BacChaME");
  BOOST_REQUIRE_EQUAL(v.virtual_ipaddresses.size(), 1u);
  BOOST_TEST(v.virtual_ipaddresses[0].address == "192.168.1.160");
  BOOST_TEST(v.virtual_ipaddresses[0].prefix_len == 24u);
  BOOST_TEST(!v.virtual_ipaddresses[0].is_ipv6);
  BOOST_TEST(!v.unicast);
  BOOST_REQUIRE_EQUAL(v.track.proxies.size(), 1u);
  BOOST_TEST(v.track.proxies[0].name == "postgres");
  BOOST_TEST(v.track.proxies[0].weight == 0);
}

BOOST_AUTO_TEST_CASE(catalog02_loads_as_written) {
  cfg::Config c = cfg::load_file(kFixtures + "catalog02.yaml");
  BOOST_TEST(c.node == "catalog02");
  BOOST_REQUIRE_EQUAL(c.vrrp.size(), 1u);
  BOOST_TEST((c.vrrp[0].state == cfg::VrrpState::backup));
  BOOST_TEST(c.vrrp[0].priority == 50u);
  BOOST_TEST(c.vrrp[0].virtual_router_id == 51u);
  BOOST_TEST(c.vrrp[0].auth_password == "BacChaME");
  BOOST_TEST(c.vrrp[0].virtual_ipaddresses[0].prefix_len == 24u);
  BOOST_TEST(c.proxies.at(0).backends.size() == 2u);
  BOOST_TEST(c.vrrp[0].track.proxies.at(0).name == "postgres");
}

BOOST_AUTO_TEST_CASE(proxies_only_file_is_valid) {
  cfg::Config c = cfg::load_string(proxy_with(""), "t.yaml");
  BOOST_TEST(c.proxies.size() == 1u);
  BOOST_TEST(c.vrrp.empty());
  BOOST_TEST(!c.node.empty());  // defaults to the host name
  BOOST_TEST(c.threads == 0u);
  BOOST_TEST(c.vrrp_rt_priority == 0u);  // off: keepalived's default too
  BOOST_TEST(c.log_level == "info");
  // Defaults from config.h.
  const cfg::Proxy& p = c.proxies[0];
  BOOST_TEST(p.check.method == "OPTIONS");
  BOOST_TEST(p.check.interval.count() == 2000);
  BOOST_TEST(p.queue_timeout.count() == 10000);
  BOOST_TEST(p.maxconn == 10000u);
  BOOST_TEST(p.keepalive.enabled);
  BOOST_TEST(p.tcp_user_timeout.count() == 30000);
}

BOOST_AUTO_TEST_CASE(vrrp_only_file_is_valid) {
  cfg::Config c = cfg::load_string(vrrp_with(""), "t.yaml");
  BOOST_TEST(c.proxies.empty());
  BOOST_REQUIRE_EQUAL(c.vrrp.size(), 1u);
  BOOST_TEST((c.vrrp[0].state == cfg::VrrpState::backup));
  BOOST_TEST(c.vrrp[0].priority == 100u);
  BOOST_TEST(c.vrrp[0].preempt);
  BOOST_TEST((c.vrrp[0].auth_type == cfg::AuthType::none));
  BOOST_TEST((c.vrrp[0].checksum == cfg::ChecksumForm::keepalived));
  BOOST_TEST(c.vrrp[0].garp.master_repeat == 5u);
}

// Where each VIP is written, for the error the engine gives at start when
// the address is the host's own (vrrp/engine.cpp check_not_taken); not part
// of the value (a VIP on another line is the same VIP: no restart at reload).
BOOST_AUTO_TEST_CASE(vip_knows_where_the_file_gives_it) {
  cfg::Config c = cfg::load_string(vrrp_with("    priority: 255\n"), "t.yaml");
  BOOST_TEST(c.vrrp[0].virtual_ipaddresses[0].where == "t.yaml:5:27: vrrp[0].virtual_ipaddresses[0]");
  cfg::Config m = cfg::load_string(
      "vrrp:\n  - name: VI_1\n    interface: eth0\n    virtual_router_id: 51\n    virtual_ipaddresses:\n"
      "      - 192.168.1.160/24\n      - {address: 192.168.1.161, prefix: 24}\n",
      "t.yaml");
  BOOST_TEST(m.vrrp[0].virtual_ipaddresses[1].where == "t.yaml:7:19: vrrp[0].virtual_ipaddresses[1].address");
  auto moved = m.vrrp[0].virtual_ipaddresses[1];
  moved.where = "t.yaml:9:19: vrrp[0].virtual_ipaddresses[1].address";
  BOOST_TEST((moved == m.vrrp[0].virtual_ipaddresses[1]));
}

BOOST_AUTO_TEST_CASE(full_file_every_key) {
  const char* yaml = R"(
node: db1
threads: 4
vrrp_rt_priority: 10
log_level: WARNING
admin: {enabled: true, listen: "*:9000", token: s3cret}
proxies:
  - name: replicas
    listen: "[::]:5434"
    balance: leastconn
    check:
      type: http
      port: 8443
      method: GET
      path: /replica?lag=10MB
      expect_status: 200
      interval: 1s
      fast_interval: 250ms
      timeout: 750ms
      rise: 1
      fall: 2
      tls: {verify: false, ca_file: /etc/ssl/ca.pem, server_name: patroni.example.com}
    backends:
      - {name: a, address: "[fd00::1]:5432", check_port: 8009}
      - {name: b, address: db-b.example.com:5432}
    connect_timeout: 2s
    queue_timeout: 0s
    idle_timeout: 1h
    client_fin_timeout: 30s
    server_fin_timeout: none
    maxconn: 500
    shutdown_sessions_on_down: no
    keepalive: {enabled: true, idle: 60s, interval: 5s, count: 4}
    tcp_user_timeout: none
    log_sessions: yes
vrrp:
  - name: VI_6
    interface: eth1
    state: MASTER
    virtual_router_id: 52
    priority: 150
    version: 3
    advert_int: 0.1
    preempt: false
    preempt_delay: 30s
    virtual_ipaddresses:
      - {address: "fd00::100", prefix: 64, device: eth2}
      - fd00::0:101
    unicast_src_ip: fd00::10
    unicast_peers: [fd00::11, fd00::12]
    track:
      proxies: [{name: replicas, weight: -20}]
      interfaces: [eth1, {name: eth2, weight: 10}]
      scripts:
        - {name: chk, command: /usr/local/bin/chk, interval: 5s, timeout: 1s, rise: 2, fall: 3, weight: -254, user: nobody}
    notify: {master: /bin/m, backup: /bin/b, fault: /bin/f, stop: /bin/s, any: /bin/a, timeout: 5s, max_running: 4}
    garp: {master_delay: 0, master_repeat: 3, master_refresh: 1m, interval: 10ms}
  - name: VI_4
    interface: eth1
    virtual_router_id: 52
    version: 3
    checksum: rfc9568
    advert_int: 250ms
    authentication: {type: none}
    virtual_ipaddresses: [{address: 10.1.1.1, prefix_len: 16, label: "eth1:vip"}]
)";
  cfg::Config c = cfg::load_string(yaml, "t.yaml");
  BOOST_TEST(c.node == "db1");
  BOOST_TEST(c.threads == 4u);
  BOOST_TEST(c.vrrp_rt_priority == 10u);
  BOOST_TEST(c.log_level == "warn");
  BOOST_TEST(c.admin.listen.to_string() == "0.0.0.0:9000");
  BOOST_TEST(c.admin.token == "s3cret");
  const cfg::Proxy& p = c.proxies.at(0);
  BOOST_TEST(p.listen.host == "::");
  BOOST_TEST(p.listen.to_string() == "[::]:5434");
  BOOST_TEST((p.balance == cfg::Balance::leastconn));
  BOOST_TEST(p.check.method == "GET");
  BOOST_TEST(p.check.path == "/replica?lag=10MB");
  BOOST_TEST(p.check.fast_interval.count() == 250);
  BOOST_TEST(p.check.timeout.count() == 750);
  BOOST_TEST(p.check.tls.enabled);  // a tls block means enabled unless it says otherwise
  BOOST_TEST(!p.check.tls.verify);
  BOOST_TEST(p.check.tls.ca_file == "/etc/ssl/ca.pem");
  BOOST_TEST(p.check.tls.server_name == "patroni.example.com");
  BOOST_TEST(p.backends.at(0).address.host == "fd00::1");
  BOOST_TEST(p.backends.at(0).check_port.value_or(0) == 8009);
  BOOST_TEST(p.backends.at(1).address.host == "db-b.example.com");
  BOOST_TEST(p.queue_timeout.count() == 0);
  BOOST_TEST(p.idle_timeout.count() == 3600000);
  BOOST_TEST(p.client_fin_timeout.count() == 30000);
  BOOST_TEST(p.server_fin_timeout.count() == 0);
  BOOST_TEST(p.maxconn == 500u);
  BOOST_TEST(!p.shutdown_sessions_on_down);
  BOOST_TEST(p.keepalive.idle.count() == 60000);
  BOOST_TEST(p.keepalive.count == 4u);
  BOOST_TEST(p.tcp_user_timeout.count() == 0);
  BOOST_TEST(p.log_sessions);

  const cfg::VrrpInstance& v = c.vrrp.at(0);
  BOOST_TEST((v.state == cfg::VrrpState::master));
  BOOST_TEST(v.version == 3u);
  BOOST_TEST(v.advert_int.count() == 100);
  BOOST_TEST(!v.preempt);
  BOOST_TEST(v.preempt_delay.count() == 30000);
  BOOST_TEST(v.virtual_ipaddresses.at(0).is_ipv6);
  BOOST_TEST(v.virtual_ipaddresses.at(0).prefix_len == 64u);
  BOOST_TEST(v.virtual_ipaddresses.at(0).device == "eth2");
  BOOST_TEST(v.virtual_ipaddresses.at(1).address == "fd00::101");  // canonical form
  BOOST_TEST(v.virtual_ipaddresses.at(1).prefix_len == 128u);
  BOOST_TEST(v.unicast);
  BOOST_TEST(v.unicast_peers.size() == 2u);
  BOOST_TEST(v.unicast_src_ip == "fd00::10");
  BOOST_TEST(v.track.proxies.at(0).weight == -20);
  BOOST_TEST(v.track.interfaces.at(0).name == "eth1");
  BOOST_TEST(v.track.interfaces.at(1).weight == 10);
  BOOST_TEST(v.track.scripts.at(0).command == "/usr/local/bin/chk");
  BOOST_TEST(v.track.scripts.at(0).interval.count() == 5000);
  BOOST_TEST(v.track.scripts.at(0).weight == -254);
  BOOST_TEST(v.track.scripts.at(0).user == "nobody");
  BOOST_TEST(v.notify.master == "/bin/m");
  BOOST_TEST(v.notify.any == "/bin/a");
  BOOST_TEST(v.notify.timeout.count() == 5000);
  BOOST_TEST(v.notify.max_running == 4u);
  BOOST_TEST(c.vrrp.at(1).notify.timeout.count() == 20000);  // defaults: every hook has a bounded life
  BOOST_TEST(c.vrrp.at(1).notify.max_running == 1u);
  BOOST_TEST(v.garp.master_delay.count() == 0);
  BOOST_TEST(v.garp.master_repeat == 3u);
  BOOST_TEST(v.garp.master_refresh.count() == 60000);
  BOOST_TEST(v.garp.interval.count() == 10);

  // Same interface and VRID, other family: allowed (RFC 5798 section 7.3).
  const cfg::VrrpInstance& v4 = c.vrrp.at(1);
  BOOST_TEST((v4.checksum == cfg::ChecksumForm::rfc9568));
  BOOST_TEST(v4.advert_int.count() == 250);
  BOOST_TEST(v4.virtual_ipaddresses.at(0).prefix_len == 16u);
  BOOST_TEST(v4.virtual_ipaddresses.at(0).label == "eth1:vip");
}

// check.tls.cert_file/key_file: HAProxy's `crt` (the key in the same PEM, or
// beside it). Paths only: the files are read when the check starts.
BOOST_AUTO_TEST_CASE(check_tls_client_certificate) {
  cfg::Config c = cfg::load_string(check_with("      tls: {cert_file: /etc/vipproxy/client.pem}\n"), "t.yaml");
  BOOST_TEST(c.proxies[0].check.tls.enabled);
  BOOST_TEST(c.proxies[0].check.tls.cert_file == "/etc/vipproxy/client.pem");
  BOOST_TEST(c.proxies[0].check.tls.key_file == "");
  c = cfg::load_string(
      check_with("      tls: {cert_file: /nonexistent/client.pem, key_file: /nonexistent/client.key}\n"), "t.yaml");
  BOOST_TEST(c.proxies[0].check.tls.cert_file == "/nonexistent/client.pem");  // not opened while loading
  BOOST_TEST(c.proxies[0].check.tls.key_file == "/nonexistent/client.key");
  expect_error(check_with("      tls: {key_file: /etc/vipproxy/client.key}\n"), 6, "check.tls.key_file",
               "needs cert_file");
  expect_error(check_with("      tls: {cert_file: ''}\n"), 6, "check.tls.cert_file", "empty string");
  expect_error(check_with("      tls: {cert_file: /a.pem, key_file: [a]}\n"), 6, "check.tls.key_file", "a path");
}

BOOST_AUTO_TEST_CASE(small_conveniences) {
  // fast_interval defaults to 500ms but never exceeds interval.
  cfg::Config c = cfg::load_string(check_with("      interval: 200ms\n"), "t.yaml");
  BOOST_TEST(c.proxies[0].check.fast_interval.count() == 200);
  // "*" and an empty host mean every IPv4 address (HAProxy's "bind :5433").
  c = cfg::load_string("proxies: [{name: p, listen: ':5433', backends: [{name: a, address: 'h:1'}]}]", "t.yaml");
  BOOST_TEST(c.proxies[0].listen.host == "0.0.0.0");
  // A commented-out proxies list next to a vrrp section is fine.
  c = cfg::load_string("proxies:\n#  - name: x\n" + vrrp_with("").substr(0), "t.yaml");
  BOOST_TEST(c.proxies.empty());
  // idle_timeout: 0 and none both mean no idle timeout.
  for (const char* v : {"0", "0s", "none", "NONE"}) {
    c = cfg::load_string(proxy_with(std::string("    idle_timeout: ") + v + "\n"), "t.yaml");
    BOOST_TEST(c.proxies[0].idle_timeout.count() == 0);
  }
  // tls: true is the short form.
  c = cfg::load_string(check_with("      tls: true\n"), "t.yaml");
  BOOST_TEST(c.proxies[0].check.tls.enabled);
  c = cfg::load_string(check_with("      tls: {enabled: false}\n"), "t.yaml");
  BOOST_TEST(!c.proxies[0].check.tls.enabled);
  // advert_int: bare seconds for keepalived users.
  c = cfg::load_string(vrrp_with("    advert_int: 3\n"), "t.yaml");
  BOOST_TEST(c.vrrp[0].advert_int.count() == 3000);
  c = cfg::load_string(vrrp_with("    version: 3\n    advert_int: 40.95\n"), "t.yaml");
  BOOST_TEST(c.vrrp[0].advert_int.count() == 40950);
  // A UTF-8 BOM and CRLF line ends (a file saved on Windows) are fine.
  c = cfg::load_string(
      "\xEF\xBB\xBFproxies:\r\n  - {name: p, listen: '*:1', backends: [{name: a, address: 'h:1'}]}\r\n", "t.yaml");
  BOOST_TEST(c.proxies.size() == 1u);
  // A non-empty unicast_peers list turns unicast on.
  c = cfg::load_string(vrrp_with("    unicast_peers: [192.168.1.152]\n"), "t.yaml");
  BOOST_TEST(c.vrrp[0].unicast);
  BOOST_TEST(c.vrrp[0].unicast_peers.at(0) == "192.168.1.152");
}

// ------------------------------------------------------------------ durations

BOOST_DATA_TEST_CASE(durations_accepted,
                     bdata::make({"250ms", "2s", "1m", "1.5s", "100ms", "1h", "0s", "0ms", "1m30s", "0.25s", "1.5m",
                                  "2h0m1s", "1h1m1s1ms", "1s500ms"}) ^
                         bdata::make({250, 2000, 60000, 1500, 100, 3600000, 0, 0, 90000, 250, 90000, 7201000,
                                      3661001, 1500}),
                     text, ms) {
  Duration d{-1};
  BOOST_TEST(cfg::parse_duration(text, d));
  BOOST_TEST(d.count() == ms);
}

BOOST_DATA_TEST_CASE(durations_refused,
                     bdata::make({"",    "2",   "2000",  "0",       "1.5",   "s",     "ms",
                                  "-1s", "1 s", " 1s",   "1s ",     "1sec",  "1d",    "2S",
                                  "1.s", ".5s", "0.5ms", "1.0001s", "1e3ms", "1..5s", "99999999999999999h",
                                  "1s2", "abc", "1.5.s", "1s1s", "30s1m", "1m1m", "500ms1s", "1ms1ms"}),
                     text) {
  Duration d{1234};
  BOOST_TEST(!cfg::parse_duration(text, d));
  BOOST_TEST(d.count() == 1234);  // untouched on failure
}

BOOST_AUTO_TEST_CASE(bare_number_duration_is_refused_with_advice) {
  expect_error(check_with("      interval: 2000\n"), 6, "proxies[0].check.interval", "write '2000s' for seconds");
  expect_error(proxy_with("    connect_timeout: 5\n"), 5, "proxies[0].connect_timeout", "a duration with a unit");
  expect_error(vrrp_with("    preempt_delay: 300\n"), 6, "vrrp[0].preempt_delay", "ambiguous");
  expect_error(check_with("      timeout: soon\n"), 6, "proxies[0].check.timeout", "expected a duration like");
  expect_error(proxy_with("    client_fin_timeout: 30\n"), 5, "proxies[0].client_fin_timeout", "ambiguous");
  // HAProxy's largest timeout, 2^31-1 ms.
  expect_error(proxy_with("    server_fin_timeout: 600h\n"), 5, "proxies[0].server_fin_timeout",
               "at most 2147483647ms");
  expect_error(proxy_with("    server_fin_timeout: -1s\n"), 5, "proxies[0].server_fin_timeout",
               "expected a duration");
}

BOOST_AUTO_TEST_CASE(endpoint_to_string) {
  BOOST_TEST((cfg::Endpoint{"10.0.0.1", 5432}.to_string()) == "10.0.0.1:5432");
  BOOST_TEST((cfg::Endpoint{"fd00::1", 5432}.to_string()) == "[fd00::1]:5432");
  BOOST_TEST((cfg::Endpoint{"db.example.com", 1}.to_string()) == "db.example.com:1");
}

// ------------------------------------------------------------------ unreadable input

BOOST_AUTO_TEST_CASE(empty_and_comment_only) {
  for (const char* yaml : {"", "\n\n", "# just a comment\n# another\n", "---\n", "--- # c\n...\n", "  \r\n\t\n"}) {
    std::string msg = error_of(yaml);
    BOOST_TEST_INFO("yaml: " << yaml);
    BOOST_TEST(has(msg, "t.yaml: "));
    BOOST_TEST(has(msg, "empty"));
  }
}

BOOST_AUTO_TEST_CASE(non_mapping_documents) {
  expect_error("- a\n- b\n", 1, "", "expected a mapping of settings");
  expect_error("hello\n", 1, "", "got 'hello'");
  expect_error("node: a\n---\nnode: b\n", 3, "", "expected exactly one");
  expect_error("~\n", 1, "", "expected a mapping of settings with 'proxies' and/or 'vrrp'");
  // yaml-cpp 0.7's LoadAll() never returns on these (jbeder/yaml-cpp#1040).
  expect_error(",\n", 1, "", "got nothing");
  expect_error(",# c\n", 1, "", "got nothing");
  expect_error(proxy_with(",\n"), 5, "", "YAML syntax error");
  expect_error("{node: a},\n", 1, "", "unexpected text after the end of the document");
  expect_error("node: x\n", 1, "", "nothing to do");
  expect_error("proxies: []\nvrrp: []\n", 1, "", "nothing to do");
}

BOOST_AUTO_TEST_CASE(truncated_and_malformed_yaml) {
  expect_error("proxies:\n  - name: pg\n    listen: [1, 2\n", 4, "", "YAML syntax error");
  expect_error("proxies:\n  - name: pg\n   listen: x\n", 3, "", "YAML syntax error");
  expect_error("a: *missing\n", 1, "", "anchor");
  expect_error("proxies:\n\t- name: pg\n", 2, "", "YAML syntax error: a list entry ('- ') where none may be");
  expect_error("proxies:\n\t- name: pg\n", 2, "", "(a tab in the indentation");
  // HAProxy's "bind *:5433" written as it is: '*' starts a YAML alias.
  expect_error("proxies:\n  - name: pg\n    listen: *:5433\n    backends: [{name: a, address: 10.0.0.1:5432}]\n", 3, "",
               "(a value starting with '*' must be quoted: \"*...\")");
  expect_error(vrrp_with("    authentication: {type: pass, password: @Bac1}\n"), 6, "",
               "(a value starting with '@' must be quoted");
  expect_error(vrrp_with("    authentication:\n      type: pass\n      password: %Bac1\n"), 8, "",
               "(a value starting with '%' must be quoted");
  // '!' starts a YAML tag, which yaml-cpp takes off the value: the password
  // was read as "" (or as the word after a space), and the message said "got 0".
  expect_error(vrrp_with("    authentication: {type: pass, password: !Bac1234}\n"), 6, "authentication.password",
               "a value starting with '!' must be quoted");
  expect_error(vrrp_with("    notify: {master: !x /bin/true}\n"), 6, "notify.master",
               "a value starting with '!' must be quoted");
  // The standard tags are YAML's own way to say a type.
  BOOST_TEST(error_of(vrrp_with("    priority: !!int 100\n    notify: {master: !!str /bin/true}\n")).empty());
  expect_error("proxies:\n  - {name: pg\n", 3, "", "YAML syntax error");
  // Deep nesting is stopped by yaml-cpp's depth guard, not by a stack overflow.
  std::string deep(100000, '[');
  BOOST_TEST(has(error_of(deep), "t.yaml:"));
}

BOOST_AUTO_TEST_CASE(binary_and_bad_encoding) {
  using namespace std::string_literals;
  expect_error(
      "node: a\x00"
      "b\n"s,
      1, "", "NUL byte: expected UTF-8 text");
  expect_error("node: ok\nproxies: \xff\xfe\n"s, 2, "", "invalid UTF-8 byte 0xFF: expected UTF-8 text");
  expect_error("node: caf\xc3\n"s, 1, "", "invalid UTF-8 sequence starting with 0xC3: expected UTF-8 text");
  expect_error("node: \xc0\xaf\n"s, 1, "", "invalid UTF-8 byte 0xC0: expected UTF-8");  // overlong '/'
  expect_error("node: \xed\xa0\x80\n"s, 1, "", "invalid UTF-8 sequence starting with 0xED");  // surrogate
  expect_error("node: a\x1b[0m\n"s, 1, "", "control character 0x1B: expected UTF-8 text");
  // Every byte value, and an ELF header: an error, never a crash.
  std::string all;
  for (int i = 255; i >= 0; --i) all += static_cast<char>(i);
  BOOST_TEST(!error_of(all).empty());
  BOOST_TEST(has(error_of("\x7f"
                          "ELF\x02\x01\x01\x00\x00"s),
                 "t.yaml:1:1:"));
  // Valid UTF-8 is fine in values.
  BOOST_TEST(error_of("node: café\n" + vrrp_with("")).empty());
}

// A FIFO nobody writes to (the file replaced by one): open() used to wait
// for a writer, and a SIGHUP reads the file on the control thread, which
// sends the VRRP adverts. It must come back at once as an empty file.
BOOST_AUTO_TEST_CASE(a_fifo_without_a_writer_does_not_block) {
  char dir[] = "/tmp/cfg_test.XXXXXX";
  BOOST_REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string fifo = std::string(dir) + "/vipproxy.yaml";
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto loading = std::async(std::launch::async, [&] {
    try {
      cfg::load_file(fifo);
    } catch (const cfg::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  });
  const bool returned = loading.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  if (!returned) {
    // Unblock it (open() for writing succeeds once a reader waits): EOF.
    for (int i = 0; i < 500; ++i) {
      int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (w >= 0) {
        ::close(w);
        break;
      }
      ::usleep(10'000);
    }
  }
  const std::string msg = loading.get();
  BOOST_TEST(returned, "load_file() waited for a writer");
  BOOST_TEST(has(msg, fifo + ": the file is empty"), msg);
  ::unlink(fifo.c_str());
  ::rmdir(dir);
}

// An editor or tool that writes the file in place (truncate, then write)
// leaves a prefix on disk until it is done; a SIGHUP (or `vipproxy -t`) then
// read that prefix, and when it was valid YAML (cut at the end of a line: a
// backend, a proxy, the whole vrrp section missing) it was applied: backends
// removed, VIPs released. A file open for writing is now refused.
BOOST_AUTO_TEST_CASE(a_file_still_open_for_writing_is_refused) {
  char dir[] = "/tmp/cfg_test.XXXXXX";
  BOOST_REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/vipproxy.yaml";
  const std::string whole =
      proxy_with("  - name: pg2\n    listen: 0.0.0.0:5434\n    backends: [{name: a, address: 10.0.0.1:5432}]\n");
  {
    std::ofstream f(path);
    f << whole;
  }
  // Leases (fcntl(2) F_SETLEASE) are what tells; without them (not the
  // file's owner, a file system without leases) nothing can be said.
  int probe = ::open(path.c_str(), O_RDONLY);
  BOOST_REQUIRE(probe >= 0);
  const bool leases = ::fcntl(probe, F_SETLEASE, F_RDLCK) == 0;
  (void)::fcntl(probe, F_SETLEASE, F_UNLCK);
  ::close(probe);
  if (leases) {
    // The writer has truncated the file and written the first proxy so far:
    // a valid file of one proxy.
    int w = ::open(path.c_str(), O_WRONLY | O_TRUNC);
    BOOST_REQUIRE(w >= 0);
    const std::string part = proxy_with("");
    BOOST_REQUIRE(error_of(part).empty());
    BOOST_REQUIRE(::write(w, part.data(), part.size()) == static_cast<ssize_t>(part.size()));
    try {
      cfg::load_file(path);
      BOOST_FAIL("a file open for writing loaded");
    } catch (const cfg::Error& e) {
      BOOST_TEST(e.file() == path);
      BOOST_TEST(has(e.reason(), "open for writing"), e.what());
    }
    BOOST_REQUIRE(::write(w, whole.data() + part.size(), whole.size() - part.size()) ==
                  static_cast<ssize_t>(whole.size() - part.size()));
    ::close(w);
  } else {
    BOOST_TEST_MESSAGE("no file leases here: only the complete file is checked");
  }
  BOOST_TEST(cfg::load_file(path).proxies.size() == 2u);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

BOOST_AUTO_TEST_CASE(files_that_cannot_be_read) {
  for (const std::string& path : {std::string("/nonexistent/vipproxy.yaml"), std::string(VIPPROXY_SOURCE_DIR)}) {
    try {
      cfg::load_file(path);
      BOOST_FAIL("expected cfg::Error for " << path);
    } catch (const cfg::Error& e) {
      BOOST_TEST(e.file() == path);
      BOOST_TEST(e.line() == 0);
      BOOST_TEST(has(e.what(), "cannot"));
    }
  }
  try {
    cfg::load_file(kFixtures + "bad/unknown-key.yaml");
    BOOST_FAIL("expected cfg::Error");
  } catch (const cfg::Error& e) {
    BOOST_TEST(e.line() == 9);
    BOOST_TEST(e.column() == 7);
    BOOST_TEST(e.key() == "proxies[0].check.intervall");
    BOOST_TEST(e.reason() == "unknown key 'intervall'; did you mean 'interval'?");
    BOOST_TEST(
        std::string(e.what()) ==
        kFixtures +
            "bad/unknown-key.yaml:9:7: proxies[0].check.intervall: unknown key 'intervall'; did you mean 'interval'?");
  }
}

// ------------------------------------------------------------------ keys

BOOST_AUTO_TEST_CASE(unknown_keys_suggest_the_nearest) {
  expect_error(check_with("      intervall: 2s\n"), 6, "proxies[0].check.intervall", "did you mean 'interval'?");
  expect_error(vrrp_with("    virtual_ipaddress: [10.0.0.1]\n"), 6, "vrrp[0].virtual_ipaddress",
               "did you mean 'virtual_ipaddresses'?");
  expect_error(vrrp_with("    advert_interval: 1s\n"), 6, "vrrp[0].advert_interval", "did you mean 'advert_int'?");
  expect_error("nodes: x\n", 1, "nodes", "did you mean 'node'?");
  expect_error(vrrp_with("    unicast_peer: [1.2.3.4]\n"), 6, "unicast_peer", "did you mean 'unicast_peers'?");
  // Nothing close: list what is valid.
  expect_error(proxy_with("    zzzzzz: 1\n"), 5, "proxies[0].zzzzzz", "expected one of: name, listen, check");
  // keepalived and HAProxy spellings get the vipproxy name.
  expect_error(vrrp_with("    nopreempt: true\n"), 6, "vrrp[0].nopreempt", "write 'preempt: false'");
  expect_error(vrrp_with("    auth_pass: x\n"), 6, "vrrp[0].auth_pass", "authentication: {type: pass");
  expect_error(vrrp_with("    track_script: [x]\n"), 6, "vrrp[0].track_script", "track: {scripts");
  expect_error(check_with("      inter: 2s\n"), 6, "check.inter", "did you mean 'interval'?");
  expect_error(proxy_with("    server: x\n"), 5, "proxies[0].server", "did you mean 'backends'?");
  expect_error("base: &b {name: a}\nproxies:\n  - <<: *b\n", 1, "base", "unknown key");
  expect_error("proxies:\n  - <<: {name: a}\n", 2, "proxies[0].<<", "merge keys");
}

BOOST_AUTO_TEST_CASE(duplicate_and_odd_keys) {
  expect_error("node: a\nnode: b\n", 2, "node", "duplicate key (first given at line 1)");
  expect_error(check_with("      rise: 2\n      rise: 3\n"), 7, "proxies[0].check.rise", "duplicate key");
  expect_error("? [a, b]\n: 1\n", 1, "", "expected a key name, got a list as a key");
}

BOOST_AUTO_TEST_CASE(wrong_types) {
  expect_error("proxies: {name: pg}\n", 1, "proxies", "expected a list of proxies");
  expect_error("proxies: [pg]\n", 1, "proxies[0]", "expected a proxy (a mapping");
  expect_error(proxy_with("    check: http\n"), 5, "proxies[0].check", "expected a check (a mapping");
  expect_error(check_with("      rise: {a: 1}\n"), 6, "proxies[0].check.rise", "got a mapping");
  expect_error(check_with("      path: [/a]\n"), 6, "proxies[0].check.path", "got a list");
  expect_error(check_with("      rise:\n"), 6, "proxies[0].check.rise", "got nothing");
  expect_error(check_with("      rise:\n      fall: 2\n"), 6, "proxies[0].check.rise", "got nothing");
  expect_error(proxy_with("    shutdown_sessions_on_down: maybe\n"), 5, "shutdown_sessions_on_down",
               "expected true or false, got 'maybe'");
  expect_error(proxy_with("    log_sessions: sometimes\n"), 5, "log_sessions", "expected true or false, got 'sometimes'");
  expect_error("admin: yes\n" + vrrp_with(""), 1, "admin", "expected a mapping with enabled, listen, token");
  expect_error(vrrp_with("    virtual_ipaddresses: 10.0.0.1\n")
                   .replace(vrrp_with("").find("    virtual_ipaddresses: [192.168.1.160/24]\n"),
                            std::string("    virtual_ipaddresses: [192.168.1.160/24]\n").size(), ""),
               5, "vrrp[0].virtual_ipaddresses", "expected a list of addresses");
}

// An empty list entry ("-" and nothing after it, or only a comment: an entry
// commented out) is pointed at by its own line, not the next entry's.
BOOST_AUTO_TEST_CASE(empty_list_entries_point_at_their_dash) {
  expect_error("proxies:\n  -\n  - name: pg\n    listen: '*:1'\n    backends: [{name: a, address: 'h:1'}]\n", 2,
               "proxies[0]", "expected a proxy (a mapping");
  expect_error(proxy_with("").replace(proxy_with("").find("    backends: ["), std::string::npos,
                                      "    backends:\n"
                                      "      - # {name: a, address: 10.0.0.1:5432}\n"
                                      "\n"
                                      "      - {name: b, address: 10.0.0.2:5432}\n"),
               5, "proxies[0].backends[0]", "expected a backend (a mapping");
  // The last entry, at the end of the file and before a key.
  expect_error(vrrp_with("    unicast_peers:\n      - 10.0.0.2\n      -\n"), 8, "vrrp[0].unicast_peers[1]",
               "got nothing");
  expect_error(vrrp_with("    unicast_peers:\n      - 10.0.0.2\n      -   \r\n    preempt: true\n"), 8,
               "vrrp[0].unicast_peers[1]", "got nothing");
  // An explicit null is where it is written.
  expect_error(vrrp_with("    unicast_peers:\n      - 10.0.0.2\n      - ~\n    preempt: true\n"), 8,
               "vrrp[0].unicast_peers[1]", "got nothing");
}

BOOST_AUTO_TEST_CASE(missing_required_keys) {
  expect_error("proxies:\n  - listen: 0.0.0.0:1\n    backends: [{name: a, address: 'h:1'}]\n", 2, "proxies[0].name",
               "missing: expected the proxy's name");
  expect_error("proxies:\n  - name: p\n    backends: [{name: a, address: 'h:1'}]\n", 2, "proxies[0].listen", "missing");
  expect_error("proxies:\n  - name: p\n    listen: '*:1'\n", 2, "proxies[0].backends", "missing");
  expect_error("proxies:\n  - name: p\n    listen: '*:1'\n    backends: []\n", 4, "proxies[0].backends",
               "at least one backend");
  expect_error("proxies:\n  - name: p\n    listen: '*:1'\n    backends: [{name: a}]\n", 4,
               "proxies[0].backends[0].address", "missing");
  expect_error("vrrp:\n  - name: v\n    interface: eth0\n    virtual_ipaddresses: [10.0.0.1]\n", 2,
               "vrrp[0].virtual_router_id", "missing");
  expect_error("vrrp:\n  - name: v\n    interface: eth0\n    virtual_router_id: 1\n", 2, "vrrp[0].virtual_ipaddresses",
               "missing");
  expect_error("vrrp:\n  - name: v\n    interface: eth0\n    virtual_router_id: 1\n    virtual_ipaddresses: []\n", 5,
               "vrrp[0].virtual_ipaddresses", "at least one address");
  expect_error("vrrp:\n  - name: v\n    virtual_router_id: 1\n    virtual_ipaddresses: [10.0.0.1]\n", 2,
               "vrrp[0].interface", "missing");
}

// ------------------------------------------------------------------ range checks

BOOST_AUTO_TEST_CASE(proxy_ranges) {
  expect_error(check_with("      port: 0\n"), 6, "proxies[0].check.port", "a port number from 1 to 65535");
  expect_error(check_with("      port: 65536\n"), 6, "proxies[0].check.port", "1 to 65535, got 65536");
  expect_error(check_with("      port: -1\n"), 6, "proxies[0].check.port", "1 to 65535");
  expect_error(check_with("      rise: 0\n"), 6, "proxies[0].check.rise", "from 1 to 1000, got 0");
  expect_error(check_with("      fall: 0\n"), 6, "proxies[0].check.fall", "from 1 to 1000");
  expect_error(check_with("      timeout: 0s\n"), 6, "proxies[0].check.timeout", "greater than 0");
  expect_error(check_with("      interval: 0ms\n"), 6, "proxies[0].check.interval", "greater than 0");
  expect_error(check_with("      interval: 1s\n      fast_interval: 2s\n"), 7, "proxies[0].check.fast_interval",
               "no longer than interval (1s)");
  expect_error(check_with("      expect_status: 99\n"), 6, "expect_status", "an HTTP status from 100 to 599");
  expect_error(check_with("      expect_status: 600\n"), 6, "expect_status", "100 to 599");
  expect_error(check_with("      method: \"GET /\"\n"), 6, "proxies[0].check.method", "an HTTP method");
  expect_error(check_with("      path: primary\n"), 6, "proxies[0].check.path", "starting with '/'");
  expect_error(check_with("      path: /a b\n"), 6, "proxies[0].check.path", "without spaces");
  expect_error(check_with("      type: udp\n"), 6, "proxies[0].check.type", "one of http, tcp");
  expect_error(proxy_with("    check: {type: tcp, path: /primary}\n"), 5, "proxies[0].check.path",
               "only valid with 'type: http'");
  expect_error(check_with("      tls: {server_name: 'bad name'}\n"), 6, "check.tls.server_name", "host name");
  expect_error(proxy_with("    balance: random\n"), 5, "proxies[0].balance", "one of first, roundrobin, leastconn");
  expect_error(proxy_with("    maxconn: 0\n"), 5, "proxies[0].maxconn", "from 1 to 1000000");
  expect_error(proxy_with("    connect_timeout: 0s\n"), 5, "proxies[0].connect_timeout", "greater than 0");
  expect_error(proxy_with("    queue_timeout: -1s\n"), 5, "proxies[0].queue_timeout", "a duration");
  expect_error(proxy_with("    keepalive: {idle: 500ms}\n"), 5, "proxies[0].keepalive.idle", "at least 1s");
  expect_error(proxy_with("    keepalive: {interval: 1500ms}\n"), 5, "proxies[0].keepalive.interval",
               "whole number of seconds");
  expect_error(proxy_with("    keepalive: {count: 0}\n"), 5, "proxies[0].keepalive.count", "from 1 to 127");
  expect_error(proxy_with("    name: x\n"), 5, "proxies[0].name", "duplicate key");
}

BOOST_AUTO_TEST_CASE(endpoints) {
  auto listen = [](std::string_view v) {
    return "proxies:\n  - name: p\n    listen: '" + std::string(v) + "'\n    backends: [{name: a, address: 'h:1'}]\n";
  };
  auto backend = [](std::string_view v) {
    return "proxies:\n  - name: p\n    listen: '*:1'\n    backends: [{name: a, address: '" + std::string(v) + "'}]\n";
  };
  for (const char* ok : {"0.0.0.0:5433", "*:5433", ":5433", "[::]:5433", "[::1]:1", "127.0.0.1:65535", "localhost:5433",
                         "db-1.example.com.:5433"})
    BOOST_TEST(error_of(listen(ok)).empty(), ok);
  for (const char* ok : {"10.0.0.1:5432", "[fd00::1]:5432", "db1:5432", "db_1.lan:5432"})
    BOOST_TEST(error_of(backend(ok)).empty(), ok);
  expect_error(listen("0.0.0.0"), 3, "proxies[0].listen", "missing ':port'");
  expect_error(listen("0.0.0.0:0"), 3, "proxies[0].listen", "the port must be a number from 1 to 65535");
  expect_error(listen("0.0.0.0:70000"), 3, "proxies[0].listen", "1 to 65535");
  expect_error(listen("0.0.0.0:54x"), 3, "proxies[0].listen", "1 to 65535");
  expect_error(listen("::1:5433"), 3, "proxies[0].listen", "needs brackets");
  expect_error(listen("[::1:5433"), 3, "proxies[0].listen", "missing ']'");
  expect_error(listen("[10.0.0.1]:5433"), 3, "proxies[0].listen", "not an IPv6 address");
  expect_error(backend("300.1.1.1:5432"), 4, "proxies[0].backends[0].address", "not an IPv4 address or host name");
  expect_error(backend("10.0.0:5432"), 4, "proxies[0].backends[0].address", "not an IPv4 address or host name");
  expect_error(backend("-bad-.example:5432"), 4, "proxies[0].backends[0].address", "host name");
  expect_error(backend("a b:5432"), 4, "proxies[0].backends[0].address", "host name");
  expect_error(backend("0.0.0.0:5432"), 4, "proxies[0].backends[0].address", "only valid for listen");
  expect_error(backend("*:5432"), 4, "proxies[0].backends[0].address", "not an IPv4 address or host name");
  expect_error(backend(":5432"), 4, "proxies[0].backends[0].address", "missing host");
  // A zone id was refused as "not an IPv6 address between the brackets", an
  // operator's link-local address looked wrong when it is the zone that is
  // not supported.
  expect_error(backend("[fe80::1%eth0]:5432"), 4, "proxies[0].backends[0].address",
               "an IPv6 zone ('%eth0') is not supported");
  expect_error(listen("[fe80::1%25eth0]:5433"), 3, "proxies[0].listen", "an IPv6 zone ('%25eth0') is not supported");
  expect_error(std::string(backend("h:1")).replace(backend("h:1").find("}]"), 2, ", check_port: 0}]"), 4,
               "proxies[0].backends[0].check_port", "1 to 65535");
}

BOOST_AUTO_TEST_CASE(top_level_ranges) {
  expect_error("threads: 257\n" + vrrp_with(""), 1, "threads", "from 0 (one per core) to 256");
  expect_error("threads: -1\n" + vrrp_with(""), 1, "threads", "to 256");
  expect_error("vrrp_rt_priority: 100\n" + vrrp_with(""), 1, "vrrp_rt_priority", "from 1 to 99, or 0 (off)");
  expect_error("vrrp_rt_priority: -1\n" + vrrp_with(""), 1, "vrrp_rt_priority", "from 1 to 99, or 0 (off)");
  expect_error("log_level: verbose\n" + vrrp_with(""), 1, "log_level", "one of trace, debug, info, warn");
  expect_error("node: ''\n" + vrrp_with(""), 1, "node", "got an empty string");
  expect_error("node: a b\n" + vrrp_with(""), 1, "node", "without spaces");
  expect_error("admin: {listen: nowhere}\n" + vrrp_with(""), 1, "admin.listen", "missing ':port'");
  expect_error("admin: {enabled: 2}\n" + vrrp_with(""), 1, "admin.enabled", "true or false");
}

BOOST_AUTO_TEST_CASE(vrrp_ranges) {
  auto vrid = [](std::string_view v) {
    return "vrrp:\n  - name: v\n    interface: eth0\n    virtual_router_id: " + std::string(v) +
           "\n    virtual_ipaddresses: [10.0.0.1]\n";
  };
  expect_error(vrid("0"), 4, "vrrp[0].virtual_router_id", "from 1 to 255, got 0");
  expect_error(vrid("256"), 4, "vrrp[0].virtual_router_id", "from 1 to 255");
  expect_error(vrid("0x33"), 4, "vrrp[0].virtual_router_id", "from 1 to 255");
  expect_error(vrrp_with("    priority: 0\n"), 6, "vrrp[0].priority", "from 1 to 255");
  expect_error(vrrp_with("    priority: 256\n"), 6, "vrrp[0].priority", "from 1 to 255");
  expect_error(vrrp_with("    version: 4\n"), 6, "vrrp[0].version", "2 or 3");
  expect_error(vrrp_with("    state: primary\n"), 6, "vrrp[0].state", "one of master, backup");
  expect_error(vrrp_with("    interface: x\n"), 6, "vrrp[0].interface", "duplicate key");
  expect_error(vrrp_with("    preempt: sometimes\n"), 6, "vrrp[0].preempt", "true or false");
  expect_error(
      "vrrp:\n  - name: v\n    interface: a-very-long-interface0\n    virtual_router_id: 1\n"
      "    virtual_ipaddresses: [10.0.0.1]\n",
      3, "vrrp[0].interface", "1-15 characters");
  expect_error("vrrp:\n  - name: 'bad name'\n", 2, "vrrp[0].name", "expected a name");
}

BOOST_AUTO_TEST_CASE(advert_int_rules) {
  // Version 2: whole seconds 1-255 (RFC 3768).
  expect_error(vrrp_with("    advert_int: 0.5\n"), 6, "vrrp[0].advert_int", "whole seconds from 1s to 255s");
  expect_error(vrrp_with("    advert_int: 1500ms\n"), 6, "vrrp[0].advert_int", "whole seconds");
  expect_error(vrrp_with("    advert_int: 256\n"), 6, "vrrp[0].advert_int", "whole seconds");
  expect_error(vrrp_with("    advert_int: 0\n"), 6, "vrrp[0].advert_int", "whole seconds");
  // Version 3: centiseconds, 10ms to 40.95s (RFC 5798).
  expect_error(vrrp_with("    version: 3\n    advert_int: 15ms\n"), 7, "vrrp[0].advert_int", "multiple of 10ms");
  expect_error(vrrp_with("    version: 3\n    advert_int: 41s\n"), 7, "vrrp[0].advert_int", "40.95s");
  expect_error(vrrp_with("    version: 3\n    advert_int: 0.005\n"), 7, "vrrp[0].advert_int", "multiple of 10ms");
  expect_error(vrrp_with("    advert_int: fast\n"), 6, "vrrp[0].advert_int", "an advertisement interval");
  // Order in the file does not matter: version is read first.
  BOOST_TEST(
      cfg::load_string(vrrp_with("    advert_int: 20ms\n    version: 3\n"), "t.yaml").vrrp[0].advert_int.count() == 20);
}

BOOST_AUTO_TEST_CASE(authentication_rules) {
  expect_error(vrrp_with("    authentication: {type: pass, password: 123456789}\n"), 6,
               "vrrp[0].authentication.password", "1 to 8 characters, got 9");
  expect_error(vrrp_with("    authentication: {type: pass, password: ''}\n"), 6, "authentication.password",
               "1 to 8 characters");
  expect_error(vrrp_with("    authentication: {type: pass}\n"), 6, "vrrp[0].authentication.password", "missing");
  expect_error(vrrp_with("    version: 3\n    authentication: {type: pass, password: x}\n"), 7,
               "vrrp[0].authentication.type", "VRRPv2 only");
  expect_error(vrrp_with("    authentication: {type: ah, password: x}\n"), 6, "authentication.type",
               "one of pass, none");
  expect_error(vrrp_with("    authentication: {type: none, password: x}\n"), 6, "authentication.password",
               "only used with type: pass");
  expect_error(vrrp_with("    authentication: {password: x}\n"), 6, "vrrp[0].authentication.type", "missing");
  // A numeric password is still a string.
  BOOST_TEST(cfg::load_string(vrrp_with("    authentication: {type: PASS, password: 12345678}\n"), "t.yaml")
                 .vrrp[0]
                 .auth_password == "12345678");
}

BOOST_AUTO_TEST_CASE(virtual_address_rules) {
  auto vips = [](std::string_view list) {
    return "vrrp:\n  - name: v\n    interface: eth0\n    virtual_router_id: 1\n    version: 3\n"
           "    virtual_ipaddresses:\n" +
           std::string(list);
  };
  expect_error(vips("      - 10.0.0.1/33\n"), 7, "vrrp[0].virtual_ipaddresses[0]", "prefix length from 0 to 32");
  expect_error(vips("      - fd00::1/129\n"), 7, "vrrp[0].virtual_ipaddresses[0]", "from 0 to 128");
  expect_error(vips("      - 10.0.0.1/x\n"), 7, "virtual_ipaddresses[0]", "prefix length");
  expect_error(vips("      - {address: 10.0.0.1, prefix: 40}\n"), 7, "virtual_ipaddresses[0].prefix", "from 0 to 32");
  expect_error(vips("      - {address: 10.0.0.1, prefix: 24, prefix_len: 24}\n"), 7, "prefix_len", "not both");
  expect_error(vips("      - {address: 10.0.0.1/24, prefix: 24}\n"), 7, "prefix", "give it once");
  expect_error(vips("      - vip.example.com\n"), 7, "vrrp[0].virtual_ipaddresses[0]", "an IPv4 or IPv6 address");
  expect_error(vips("      - {address: 10.0.0.300}\n"), 7, "virtual_ipaddresses[0].address", "IPv4 or IPv6");
  expect_error(vips("      - {prefix: 24}\n"), 7, "virtual_ipaddresses[0].address", "missing");
  expect_error(vips("      - 0.0.0.0/0\n"), 7, "virtual_ipaddresses[0]", "unspecified");
  expect_error(vips("      - 10.0.0.1\n      - fd00::1\n"), 8, "virtual_ipaddresses[1]", "an instance is IPv4 or IPv6");
  expect_error(vips("      - 10.0.0.1/24\n      - 10.0.0.1/32\n"), 8, "virtual_ipaddresses[1]", "duplicate address");
  {
    // 255 addresses load; a 256th is refused (the advert's count is one byte).
    std::string list;
    for (int i = 0; i < 256; ++i) list += "      - 10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + "\n";
    expect_error(vips(list), 7 + 255, "virtual_ipaddresses[255]", "at most 255 addresses");
    const auto first255 = list.substr(0, list.rfind("      - "));
    BOOST_TEST(cfg::load_string(vips(first255), "t.yaml").vrrp[0].virtual_ipaddresses.size() == 255u);
  }
  expect_error(vips("      - {address: fd00::1, label: 'eth0:x'}\n"), 7, "virtual_ipaddresses[0].label",
               "IPv4 addresses only");
  expect_error(vips("      - {address: 10.0.0.1, label: 'vip'}\n"), 7, "virtual_ipaddresses[0].label", "eth0:<suffix>");
  expect_error(vips("      - {address: 10.0.0.1, device: eth1, label: 'eth0:x'}\n"), 7, "label", "eth1:<suffix>");
  expect_error(vips("      - {address: 10.0.0.1, mask: 24}\n"), 7, "virtual_ipaddresses[0].mask", "unknown key");
  // IPv6 needs VRRPv3.
  expect_error(vrrp_with("    version: 2\n").replace(vrrp_with("").find("192.168.1.160/24"), 16, "fd00::1"), 6,
               "vrrp[0].version", "set version: 3 for IPv6");
  // Defaults: /32 and /128.
  cfg::Config c = cfg::load_string(vips("      - 10.0.0.1\n"), "t.yaml");
  BOOST_TEST(c.vrrp[0].virtual_ipaddresses[0].prefix_len == 32u);
  c = cfg::load_string(vips("      - FD00::1\n"), "t.yaml");
  BOOST_TEST(c.vrrp[0].virtual_ipaddresses[0].prefix_len == 128u);
  BOOST_TEST(c.vrrp[0].virtual_ipaddresses[0].is_ipv6);
}

BOOST_AUTO_TEST_CASE(unicast_and_checksum_rules) {
  expect_error(vrrp_with("    unicast_peers: []\n"), 6, "vrrp[0].unicast_peers", "at least one peer address");
  expect_error(vrrp_with("    unicast_peers: [fd00::2]\n"), 6, "vrrp[0].unicast_peers[0]", "an IPv4 address");
  expect_error(vrrp_with("    unicast_peers: [10.0.0.2, 10.0.0.2]\n"), 6, "vrrp[0].unicast_peers[1]", "duplicate peer");
  expect_error(vrrp_with("    unicast_src_ip: 10.0.0.2\n    unicast_peers: [10.0.0.2]\n"), 7,
               "vrrp[0].unicast_peers[0]", "this node's own address");
  expect_error(vrrp_with("    unicast_src_ip: host.example\n"), 6, "vrrp[0].unicast_src_ip", "an IPv4 address");
  expect_error(vrrp_with("    unicast_peers: 10.0.0.2\n"), 6, "vrrp[0].unicast_peers", "expected a list");
  expect_error(vrrp_with("    checksum: rfc9568\n"), 6, "vrrp[0].checksum", "only applies to version 3 over IPv4");
  expect_error(vrrp_with("    version: 3\n    checksum: crc\n"), 7, "vrrp[0].checksum", "one of keepalived, rfc9568");
}

// IPv6 adverts go out from the link-local address unless unicast_src_ip
// says otherwise (RFC 5798 §5.1.2.1), and the IPv6 socket, bound to that
// source, hears only what is sent to it: a peer listed by a global address
// never gets our adverts, nor we its (it sends to the global address its
// own file lists for us). Both nodes were MASTER, each holding the VIP,
// with no drop counted (tests/integration/test_vrrp_netns.py
// VrrpIpv6NetnsTest test_4). Link-local peers, or a global unicast_src_ip,
// are fine.
BOOST_AUTO_TEST_CASE(ipv6_unicast_to_global_peers_needs_unicast_src_ip) {
  auto v6 = [](std::string_view extra) {
    return "vrrp:\n  - name: VI_6\n    interface: eth0\n    virtual_router_id: 51\n    version: 3\n"
           "    virtual_ipaddresses: [fd00::160/64]\n" + std::string(extra);
  };
  expect_error(v6("    unicast_peers: [fe80::2, fd00::2]\n"), 7, "vrrp[0].unicast_peers[1]", "unicast_src_ip");
  auto c = cfg::load_string(v6("    unicast_peers: [fe80::2]\n"), "t.yaml");
  BOOST_TEST(c.vrrp[0].unicast);
  c = cfg::load_string(v6("    unicast_src_ip: fd00::1\n    unicast_peers: [fd00::2]\n"), "t.yaml");
  BOOST_TEST(c.vrrp[0].unicast_src_ip == "fd00::1");
}

BOOST_AUTO_TEST_CASE(track_notify_garp_rules) {
  std::string base = proxy_with("") + vrrp_with("");
  auto with = [&](std::string_view extra) { return base + std::string(extra); };  // extra starts at line 10
  expect_error(with("    track: {proxies: [pg, ~]}\n"), 10, "vrrp[0].track.proxies[1]", "expected a name, got nothing");
  expect_error(with("    track: {proxies: [other]}\n"), 10, "vrrp[0].track.proxies[0]",
               "no proxy named 'other'; expected one of: pg");
  expect_error(vrrp_with("    track: {proxies: [pg]}\n"), 6, "vrrp[0].track.proxies[0]", "no proxies are defined");
  expect_error(with("    track: {proxies: [{name: pg, weight: 255}]}\n"), 10, "vrrp[0].track.proxies[0].weight",
               "from -254 to 254");
  expect_error(with("    track: {proxies: [{name: pg, weight: -255}]}\n"), 10, "weight", "-254 to 254");
  expect_error(with("    track: {proxies: [pg, pg]}\n"), 10, "vrrp[0].track.proxies[1]", "already tracked");
  expect_error(with("    track: {interfaces: [{name: eth1, weight: 300}]}\n"), 10, "track.interfaces[0].weight",
               "-254 to 254");
  expect_error(with("    track: {interfaces: ['a/b']}\n"), 10, "track.interfaces[0]", "network interface name");
  expect_error(with("    track: {scripts: [{name: s}]}\n"), 10, "vrrp[0].track.scripts[0].command", "missing");
  expect_error(with("    track: {scripts: [{name: s, command: x, rise: 0}]}\n"), 10, "track.scripts[0].rise",
               "from 1 to 1000");
  expect_error(with("    track: {scripts: [{name: s, command: x, interval: 5}]}\n"), 10, "track.scripts[0].interval",
               "bare number");
  expect_error(with("    track: {scripts: [{name: s, command: x}, {name: s, command: y}]}\n"), 10,
               "track.scripts[1].name", "duplicate script name");
  expect_error(with("    track: {proxys: [x]}\n"), 10, "vrrp[0].track.proxys", "did you mean 'proxies'?");
  expect_error(with("    notify: {master: [a, b]}\n"), 10, "vrrp[0].notify.master", "expected a string");
  expect_error(with("    notify: {down: x}\n"), 10, "vrrp[0].notify.down", "unknown key");
  expect_error(with("    notify: {timeout: none}\n"), 10, "vrrp[0].notify.timeout", "a duration");
  expect_error(with("    notify: {timeout: 2h}\n"), 10, "vrrp[0].notify.timeout", "at most 3600s");
  expect_error(with("    notify: {max_running: 0}\n"), 10, "vrrp[0].notify.max_running", "1");
  expect_error(with("    garp: {master_repeat: 0}\n"), 10, "vrrp[0].garp.master_repeat", "from 1 to 255");
  expect_error(with("    garp: {interval: 1m}\n"), 10, "vrrp[0].garp.interval", "at most 10s");
  expect_error(with("    garp: {master_delay: 5}\n"), 10, "vrrp[0].garp.master_delay", "bare number");
}

// ------------------------------------------------------------------ cross checks

BOOST_AUTO_TEST_CASE(cross_checks) {
  const char* two_proxies = R"(proxies:
  - name: pg
    listen: 0.0.0.0:5433
    backends: [{name: a, address: 10.0.0.1:5432}]
  - name: %NAME%
    listen: %LISTEN%
    backends: [{name: a, address: 10.0.0.1:5432}]
)";
  auto two = [&](std::string_view name, std::string_view listen) {
    std::string s = two_proxies;
    s.replace(s.find("%NAME%"), 6, name);
    s.replace(s.find("%LISTEN%"), 8, listen);
    return s;
  };
  BOOST_TEST(error_of(two("ro", "0.0.0.0:5434")).empty());
  BOOST_TEST(error_of(two("ro", "'[::1]:5433'")).empty());  // other family, no clash
  expect_error(two("pg", "0.0.0.0:5434"), 5, "proxies[1].name", "duplicate proxy name 'pg' (first at line 2)");
  expect_error(two("ro", "0.0.0.0:5433"), 6, "proxies[1].listen", "clashes with proxies[0].listen");
  expect_error(two("ro", "127.0.0.1:5433"), 6, "proxies[1].listen", "expected each listen address:port once");
  expect_error(two("ro", "'*:5433'"), 6, "proxies[1].listen", "clashes");
  expect_error(two("ro", "'[::]:5433'"), 6, "proxies[1].listen", "clashes");
  expect_error(two("ro", "0.0.0.0:8405"), 6, "proxies[1].listen", "clashes with admin.listen");
  // One IPv6 address written two ways is one address: every worker binds
  // with SO_REUSEPORT, so the kernel would take both and split the clients.
  auto two_v6 = [&](std::string_view first, std::string_view second) {
    std::string s = two("ro", second);
    s.replace(s.find("0.0.0.0:5433"), 12, first);
    return s;
  };
  expect_error(two_v6("'[::1]:5433'", "'[0::1]:5433'"), 6, "proxies[1].listen", "clashes with proxies[0].listen");
  expect_error(two_v6("'[fd00::1]:5433'", "'[FD00:0:0::1]:5433'"), 6, "proxies[1].listen", "clashes");
  expect_error(two_v6("'[0::0]:5433'", "'[::1]:5433'"), 6, "proxies[1].listen", "clashes");
  BOOST_TEST(error_of(two_v6("'[::1]:5433'", "'[::2]:5433'")).empty());
  BOOST_TEST(error_of("admin: {enabled: false}\n" + two("ro", "0.0.0.0:8405")).empty());

  expect_error(proxy_with("").replace(proxy_with("").find("}]"), 2, "}, {name: a, address: 10.0.0.2:5432}]"), 4,
               "proxies[0].backends[1].name", "duplicate backend name 'a'");
  expect_error(proxy_with("").replace(proxy_with("").find("}]"), 2, "}, {name: b, address: 10.0.0.1:5432}]"), 4,
               "proxies[0].backends[1].address", "duplicate backend address");
  // One IPv6 address written two ways is one backend (checked and balanced
  // twice, its sessions counted apart).
  std::string v6 = proxy_with("");
  v6.replace(v6.find("10.0.0.1:5432}]"), 15, "'[fd00::1]:5432'}, {name: b, address: '[FD00:0::1]:5432'}]");
  expect_error(v6, 4, "proxies[0].backends[1].address", "duplicate backend address");
  BOOST_TEST(error_of(v6.replace(v6.find("FD00:0::1"), 9, "fd00::2")).empty());

  std::string two_vrrp = vrrp_with("") +
                         "  - name: VI_2\n"
                         "    interface: eth0\n"
                         "    virtual_router_id: 51\n"
                         "    virtual_ipaddresses: [192.168.1.161/24]\n";
  expect_error(two_vrrp, 8, "vrrp[1].virtual_router_id", "VRID 51 on eth0 (IPv4) is already used by vrrp[0].name");
  std::string s = two_vrrp;
  s.replace(s.find("VI_2"), 4, "VI_1");
  expect_error(s, 6, "vrrp[1].name", "duplicate instance name 'VI_1'");
  s = two_vrrp;
  s.replace(s.rfind("virtual_router_id: 51"), 21, "virtual_router_id: 52");
  BOOST_TEST(error_of(s).empty());
  s.replace(s.find("192.168.1.161"), 13, "192.168.1.160");
  expect_error(s, 6, "vrrp[1].name", "also managed by instance 'VI_1'");
  s = two_vrrp;
  s.replace(s.rfind("eth0"), 4, "eth1");  // same VRID on another LAN is fine
  BOOST_TEST(error_of(s).empty());
}

// A host name and a literal the loader cannot compare ("localhost" and
// "[::1]") are compared again as bound: the daemon refuses the pair at start
// and at reload (tests/integration/test_listen_rebind.py).
BOOST_AUTO_TEST_CASE(bound_listens_clash_by_address_not_spelling) {
  using cfg::BoundListen;
  BoundListen a{"pg", {"localhost", 5433}, {"::1", 5433}};
  BoundListen b{"ro", {"::1", 5433}, {"::1", 5433}};
  std::string why = cfg::bound_listen_clash({a, b});
  BOOST_TEST(why ==
             "proxy ro: listen [::1]:5433 clashes with proxy pg's localhost:5433 (bound to [::1]:5433): expected "
             "each listen address:port once (the kernel would split clients between them)");
  BOOST_TEST(cfg::bound_listen_clash({a, {"ro", {"127.0.0.1", 5433}, {"127.0.0.1", 5433}}}).empty());
  BOOST_TEST(cfg::bound_listen_clash({a, {"ro", {"localhost", 5434}, {"::1", 5434}}}).empty());
  BOOST_TEST(!cfg::bound_listen_clash({a, {"ro", {"::", 5433}, {"::", 5433}}}).empty());  // the wildcard covers it
  BOOST_TEST(!cfg::bound_listen_clash({{"pg", {"db.example", 5433}, {"10.0.0.5", 5433}},
                                       {"ro", {"0.0.0.0", 5433}, {"0.0.0.0", 5433}}})
                  .empty());
  BOOST_TEST(cfg::bound_listen_clash({a}).empty());
}

BOOST_AUTO_TEST_CASE(error_accessors) {
  try {
    cfg::load_string(check_with("      rise: 0\n"), "x.yaml");
    BOOST_FAIL("expected cfg::Error");
  } catch (const cfg::Error& e) {
    BOOST_TEST(e.file() == "x.yaml");
    BOOST_TEST(e.line() == 6);
    BOOST_TEST(e.column() == 13);
    BOOST_TEST(e.key() == "proxies[0].check.rise");
    BOOST_TEST(e.reason() == "expected a whole number from 1 to 1000, got 0");
    BOOST_TEST(std::string(e.what()) ==
               "x.yaml:6:13: proxies[0].check.rise: expected a whole number from 1 to 1000, got 0");
  }
}

// Every file under tests/fixtures/config/bad/ must be refused with a located
// error (and never crash); the files double as fuzz seeds.
BOOST_AUTO_TEST_CASE(bad_fixture_files) {
  for (const char* name : {"unknown-key.yaml", "empty.yaml", "truncated.yaml", "tabs.yaml", "vrid-range.yaml",
                           "auth-v3.yaml", "track-undefined.yaml"}) {
    BOOST_TEST_INFO(name);
    try {
      cfg::load_file(kFixtures + "bad/" + name);
      BOOST_FAIL("expected cfg::Error for " << name);
    } catch (const cfg::Error& e) {
      BOOST_TEST(has(e.what(), kFixtures + "bad/" + name + ":"));
      if (std::string_view(name) != "empty.yaml") BOOST_TEST(e.line() > 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(expect_role_defaults_to_auto) {
  cfg::Config c = cfg::load_string(check_with("      interval: 2s\n"), "t.yaml");
  BOOST_TEST((c.proxies[0].check.expect_role == cfg::ExpectRole::automatic));
  c = cfg::load_string(check_with("      expect_role: primary\n"), "t.yaml");
  BOOST_TEST((c.proxies[0].check.expect_role == cfg::ExpectRole::primary));
  c = cfg::load_string(check_with("      expect_role: ANY\n"), "t.yaml");
  BOOST_TEST((c.proxies[0].check.expect_role == cfg::ExpectRole::any));
  const std::string e = error_of(check_with("      expect_role: master\n"));
  BOOST_TEST(e.find("expect_role") != std::string::npos);
  BOOST_TEST(e.find("auto") != std::string::npos);
  expect_error(proxy_with("    check: {type: tcp, expect_role: primary}\n"), 5, "proxies[0].check.expect_role",
               "only valid with 'type: http'");
}

// A TCP check only connects: it never did a TLS handshake, so `tls: true`
// with `type: tcp` (HAProxy's "check-ssl" on a tcp-check) was taken and
// silently checked in plain TCP. A TLS block that turns TLS off is harmless.
BOOST_AUTO_TEST_CASE(tls_on_a_tcp_check_is_refused) {
  expect_error(proxy_with("    check: {type: tcp, tls: true}\n"), 5, "proxies[0].check.tls", "only valid with 'type: http'");
  expect_error(check_with("      type: tcp\n      tls: {ca_file: /etc/ssl/ca.pem}\n"), 7, "proxies[0].check.tls",
               "only valid with 'type: http'");
  BOOST_TEST(error_of(proxy_with("    check: {type: tcp, tls: false}\n")).empty());
  BOOST_TEST(error_of(proxy_with("    check: {type: tcp, tls: {enabled: false}}\n")).empty());
  BOOST_TEST(error_of(proxy_with("    check: {type: http, tls: true}\n")).empty());
}

BOOST_AUTO_TEST_CASE(down_on_status_defaults_on_and_can_be_turned_off) {
  cfg::Config c = cfg::load_string(check_with("      interval: 2s\n"), "t.yaml");
  BOOST_TEST(c.proxies[0].check.down_on_status);
  c = cfg::load_string(check_with("      down_on_status: false\n"), "t.yaml");
  BOOST_TEST(!c.proxies[0].check.down_on_status);
  BOOST_TEST(error_of(check_with("      down_on_status: maybe\n")).find("down_on_status") != std::string::npos);
}

// A backend at the proxy's own listen address is the proxy itself: each
// client session opened another session to itself, and so on until maxconn
// or the file descriptors ran out, with a TCP check (or a check_port on
// Patroni's API) reporting it UP. The file loaded without a word.
BOOST_AUTO_TEST_CASE(a_backend_that_is_the_proxy_itself_is_refused) {
  auto file = [](std::string_view listen, std::string_view backend, std::string_view vrrp = {}) {
    return "proxies:\n  - name: pg\n    listen: '" + std::string(listen) +
           "'\n    backends:\n      - {name: a, address: '10.0.0.9:5432'}\n      - {name: b, address: '" +
           std::string(backend) + "'}\n" + std::string(vrrp);
  };
  const std::string vips =
      "vrrp:\n  - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ipaddresses: [192.168.1.160/24]}\n";
  for (auto [listen, backend] : std::initializer_list<std::pair<std::string_view, std::string_view>>{
           {"10.0.0.1:5433", "10.0.0.1:5433"},
           {"0.0.0.0:5433", "127.0.0.1:5433"},
           {"*:5433", "127.0.1.1:5433"},
           {"0.0.0.0:5433", "localhost:5433"},
           {"[::]:5433", "[::1]:5433"},
           {"[::]:5433", "[0::1]:5433"},
           {"[::]:5433", "127.0.0.1:5433"},
           {"127.0.0.1:5433", "LOCALHOST.:5433"},
           {"localhost:5433", "127.0.0.1:5433"},
           {"localhost:5433", "[::1]:5433"},
       })
    BOOST_TEST_CONTEXT(listen << " -> " << backend) {
      expect_error(file(listen, backend), 6, "proxies[0].backends[1].address", "the proxy itself");
    }
  // A VIP of this file is this node's address while it is MASTER.
  expect_error(file("0.0.0.0:5432", "192.168.1.160:5432", vips), 6, "proxies[0].backends[1].address",
               "the proxy itself");
  expect_error(file("192.168.1.160:5432", "192.168.1.160:5432", vips), 6, "proxies[0].backends[1].address",
               "the proxy itself");
  // Another port, or a remote address on the listen port, is a database.
  BOOST_TEST(error_of(file("0.0.0.0:5433", "127.0.0.1:5432")).empty());
  BOOST_TEST(error_of(file("0.0.0.0:5432", "10.0.0.1:5432")).empty());
  BOOST_TEST(error_of(file("127.0.0.1:5432", "10.0.0.1:5432")).empty());
  BOOST_TEST(error_of(file("10.0.0.1:5432", "127.0.0.1:5432")).empty());
  BOOST_TEST(error_of(file("localhost:5432", "10.0.0.1:5432")).empty());
  BOOST_TEST(error_of(file("0.0.0.0:5433", "192.168.1.160:5432", vips)).empty());
  BOOST_TEST(error_of(file("192.168.1.160:5432", "192.168.1.161:5432", vips)).empty());
}

// yaml-cpp's depth guard throws with the text "bad file", which the message
// passed on as "YAML syntax error: bad file": no word of what is wrong.
BOOST_AUTO_TEST_CASE(deep_nesting_says_so) {
  for (const std::string& deep : {std::string(100000, '['), "a: " + std::string(2000, '['),
                                  [] {
                                    std::string s;
                                    for (int i = 0; i < 1000; ++i) s += "{x: ";
                                    return s;
                                  }()})
    BOOST_TEST_CONTEXT(deep.substr(0, 20)) {
      expect_error(deep, 1, "", "nested more than");
      BOOST_TEST(!has(error_of(deep), "bad file"));
    }
}

// A key of another section (hard_stop_after inside a proxy, interval at the
// proxy level instead of under check, priority in a proxy) was answered with
// the list of this level's keys only: the operator was not told where the
// key goes, and a typo of such a key ('intervall' in a proxy) got no hint.
BOOST_AUTO_TEST_CASE(keys_of_another_section_say_where_they_belong) {
  expect_error(proxy_with("    hard_stop_after: 1s\n"), 5, "proxies[0].hard_stop_after",
               "unknown key 'hard_stop_after' here: it is a key of the top level");
  expect_error(proxy_with("    interval: 2s\n"), 5, "proxies[0].interval", "it is a key of check");
  expect_error(proxy_with("    intervall: 2s\n"), 5, "proxies[0].intervall", "did you mean 'interval'? (a key of check");
  expect_error(proxy_with("    priority: 100\n"), 5, "proxies[0].priority", "it is a key of a vrrp instance");
  expect_error(vrrp_with("    listen: 0.0.0.0:5433\n"), 6, "vrrp[0].listen", "it is a key of admin, a proxy");
  expect_error("advert_int: 1\n" + vrrp_with(""), 1, "advert_int", "it is a key of a vrrp instance");
  expect_error(proxy_with("    check_port: 8008\n"), 5, "proxies[0].check_port", "it is a key of a backend");
  // The list of this level's keys still ends the message.
  BOOST_TEST(has(error_of(proxy_with("    hard_stop_after: 1s\n")), "; expected one of: name, listen, check"));
  // A typo of a key of this level is still answered with that key alone.
  expect_error(check_with("      intervall: 2s\n"), 6, "proxies[0].check.intervall", "did you mean 'interval'?");
  BOOST_TEST(!has(error_of(check_with("      intervall: 2s\n")), "a key of"));
}

// yaml-cpp 0.7 takes a quoted value that is never closed as running to the
// end of the file: 'password: "secret' as the last line loaded as "secret "
// (a password the peer does not have: each side drops the other's adverts,
// both become MASTER), 'token: "abc' swallowed the lines after it into the
// token, and when it swallowed the proxies the error was "nothing to do".
BOOST_AUTO_TEST_CASE(a_quote_that_is_never_closed_is_refused) {
  expect_error(vrrp_with("    authentication:\n      type: pass\n      password: \"secret\n"), 8, "",
               "the quote (\") that starts this value is never closed");
  expect_error(proxy_with("admin:\n  token: \"abc\n  enabled: true\n"), 6, "", "never closed");
  expect_error("admin:\n  token: 'abc\nproxies:\n  - {name: pg, listen: 0.0.0.0:5433, backends: [{name: a, address: "
               "10.0.0.1:5432}]}\n",
               2, "", "the quote (') that starts this value is never closed");
  // Closed quotes, escaped quotes inside them, and quotes inside plain
  // values or comments are fine.
  BOOST_TEST(error_of(proxy_with("admin:\n  token: \"a\\\"b\"\n")).empty());
  BOOST_TEST(error_of(proxy_with("admin:\n  token: 'it''s'\n")).empty());
  BOOST_TEST(error_of(proxy_with("admin:\n  token: it's\n")).empty());
  BOOST_TEST(error_of(proxy_with("admin:\n  token: \"two\n    lines\"\n")).empty());
  BOOST_TEST(error_of(proxy_with("admin:\n  token: x # it's \"\n")).empty());
  BOOST_TEST(error_of("\xEF\xBB\xBF" + proxy_with("admin:\n  token: 'x'\n")).empty());
  BOOST_TEST(error_of("\xEF\xBB\xBF\"node\": a\n" + proxy_with("")).empty());
  expect_error("\xEF\xBB\xBFnode: \"a\n", 1, "", "never closed");
}

// yaml-cpp's own words ("illegal map value", "end of map flow not found")
// name its parser's states, not what the operator got wrong: the common
// ones are said plainly.
BOOST_AUTO_TEST_CASE(yaml_syntax_errors_say_what_is_wrong) {
  const std::string head = "proxies:\n  - name: pg\n";
  expect_error(head + "    listen: 0.0.0.0:5433 extra: x\n", 3, "", "a ':' where none may be");
  expect_error(head + "    listen: [0.0.0.0:5433\n", 4, "", "a '[' is not closed by ']'");
  expect_error(head + "    check: {interval: 2s\n", 4, "", "a '{' is not closed by '}'");
  expect_error(head + "    check: {interval: 2s]\n", 3, "", "a ']' or '}' that closes no bracket");
  expect_error(head + "    listen: x\n   backends: []\n", 4, "", "indentation");
  expect_error(head + "  listen: x\n", 3, "", "indentation");
  expect_error(head + "    listen: \"a\\q\"\n", 3, "", "unknown escape '\\q' in a double-quoted value");
  for (const std::string& bad : {head + "    listen: 0.0.0.0:5433 extra: x\n", head + "    listen: [0.0.0.0:5433\n",
                                 head + "    check: {interval: 2s\n", head + "    check: {interval: 2s]\n",
                                 head + "  listen: x\n", head + "    listen: x\n   backends: []\n"})
    for (std::string_view yaml_cpp : {"illegal map value", "flow not found", "illegal flow end", "end of map not found",
                                      "end of sequence not found"})
      BOOST_TEST(!has(error_of(bad), yaml_cpp), error_of(bad));
}
