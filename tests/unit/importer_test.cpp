// Over 500 lines: one test binary per component, most of it haproxy.cfg and keepalived.conf text.
// importer: haproxy.cfg + keepalived.conf -> vipproxy YAML. The parsers are
// tested on their own (durations, comments, default-server, check forms,
// nested blocks, errors with their line); the conversions are tested end to
// end: the output must pass the real loader (cfg::load_string) and, for the
// guide's files, mean the same as the hand-written catalog01/02.yaml.
#define BOOST_TEST_MODULE importer
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "cfg/load.h"
#include "importer/cli.h"
#include "importer/convert.h"
#include "importer/haproxy.h"
#include "importer/keepalived.h"

using namespace std::chrono_literals;
namespace hp = importer::haproxy;
namespace ka = importer::keepalived;

namespace {

const std::string kRoot = VIPPROXY_SOURCE_DIR;
const std::string kGuide = kRoot + "/tests/fixtures/guide/";
const std::string kImport = kRoot + "/tests/fixtures/import/";

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(f, "cannot open " + path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

bool has(std::string_view s, std::string_view sub) { return s.find(sub) != std::string_view::npos; }

// The error of `fn` ("" if none) as ParseError: file, line and message.
template <class F>
importer::ParseError parse_error(F fn) {
  try {
    fn();
  } catch (const importer::ParseError& e) {
    return e;
  }
  BOOST_FAIL("expected a ParseError");
  return importer::ParseError("", 0, "");
}

struct Imported {
  importer::Result result;
  cfg::Config loaded;
  std::string notes;  // all notes, one per line
};

Imported convert_and_load(const hp::Config* h, const ka::Config* k, const importer::Options& o);

// Parses the given files (empty path: not given), converts, and loads the YAML
// with the real loader; fails the test if it does not load.
Imported import_files(const std::string& hap_path, const std::string& ka_path, const std::string& node = "") {
  std::optional<hp::Config> h;
  std::optional<ka::Config> k;
  importer::Options o;
  o.node = node;
  o.haproxy_file = "haproxy.cfg";
  o.keepalived_file = "keepalived.conf";
  if (!hap_path.empty()) h = hp::parse(slurp(hap_path), o.haproxy_file);
  if (!ka_path.empty()) k = ka::parse(slurp(ka_path), o.keepalived_file);
  return convert_and_load(h ? &*h : nullptr, k ? &*k : nullptr, o);
}

// Converts what was parsed and loads the YAML with the real loader; fails
// the test if it does not load.
Imported convert_and_load(const hp::Config* h, const ka::Config* k, const importer::Options& o) {
  Imported r;
  r.result = importer::convert(h, k, o);
  for (const auto& n : r.result.notes) r.notes += n.to_string() + "\n";
  BOOST_TEST_INFO("yaml:\n" << r.result.yaml << "notes:\n" << r.notes);
  BOOST_TEST(r.result.load_error.empty(), r.result.load_error);
  try {
    r.loaded = cfg::load_string(r.result.yaml, "imported.yaml");
  } catch (const cfg::Error& e) {
    BOOST_FAIL("the imported configuration does not load: " << e.what() << "\n" << r.result.yaml);
  }
  return r;
}

// The fields a migration must preserve, compared between what the importer
// wrote and what a user writes by hand from the guide.
void expect_same_meaning(const cfg::Config& got, const cfg::Config& want) {
  BOOST_TEST(got.node == want.node);
  BOOST_REQUIRE_EQUAL(got.proxies.size(), want.proxies.size());
  for (std::size_t i = 0; i < got.proxies.size(); ++i) {
    const auto &g = got.proxies[i], &w = want.proxies[i];
    BOOST_TEST(g.name == w.name);
    BOOST_TEST(g.listen.to_string() == w.listen.to_string());
    BOOST_TEST((g.check.type == w.check.type));
    BOOST_TEST((g.check.port == w.check.port));
    BOOST_TEST(g.check.method == w.check.method);
    BOOST_TEST(g.check.path == w.check.path);
    BOOST_TEST(g.check.expect_status == w.check.expect_status);
    BOOST_TEST(g.check.interval.count() == w.check.interval.count());
    BOOST_TEST(g.check.timeout.count() == w.check.timeout.count());
    BOOST_TEST(g.check.rise == w.check.rise);
    BOOST_TEST(g.check.fall == w.check.fall);
    BOOST_TEST(g.check.tls.enabled == w.check.tls.enabled);
    BOOST_TEST((g.balance == w.balance));
    BOOST_TEST(g.connect_timeout.count() == w.connect_timeout.count());
    BOOST_TEST(g.idle_timeout.count() == w.idle_timeout.count());
    BOOST_TEST(g.shutdown_sessions_on_down == w.shutdown_sessions_on_down);
    BOOST_REQUIRE_EQUAL(g.backends.size(), w.backends.size());
    for (std::size_t j = 0; j < g.backends.size(); ++j) {
      BOOST_TEST(g.backends[j].name == w.backends[j].name);
      BOOST_TEST(g.backends[j].address.to_string() == w.backends[j].address.to_string());
      BOOST_TEST((g.backends[j].check_port == w.backends[j].check_port));
    }
  }
  BOOST_REQUIRE_EQUAL(got.vrrp.size(), want.vrrp.size());
  for (std::size_t i = 0; i < got.vrrp.size(); ++i) {
    const auto &g = got.vrrp[i], &w = want.vrrp[i];
    BOOST_TEST(g.name == w.name);
    BOOST_TEST(g.interface == w.interface);
    BOOST_TEST((g.state == w.state));
    BOOST_TEST(g.virtual_router_id == w.virtual_router_id);
    BOOST_TEST(g.priority == w.priority);
    BOOST_TEST(g.version == w.version);
    BOOST_TEST(g.advert_int.count() == w.advert_int.count());
    BOOST_TEST(g.preempt == w.preempt);
    BOOST_TEST((g.auth_type == w.auth_type));
    BOOST_TEST(g.auth_password == w.auth_password);
    BOOST_REQUIRE_EQUAL(g.virtual_ipaddresses.size(), w.virtual_ipaddresses.size());
    for (std::size_t j = 0; j < g.virtual_ipaddresses.size(); ++j) {
      BOOST_TEST(g.virtual_ipaddresses[j].address == w.virtual_ipaddresses[j].address);
      // The guide's keepalived.conf has no prefix (keepalived: /32); the
      // hand-written example uses /24. The difference is reported, not hidden.
      BOOST_TEST(g.virtual_ipaddresses[j].prefix_len == 32u);
      BOOST_TEST(w.virtual_ipaddresses[j].prefix_len == 24u);
    }
    BOOST_REQUIRE_EQUAL(g.track.proxies.size(), w.track.proxies.size());
    for (std::size_t j = 0; j < g.track.proxies.size(); ++j) {
      BOOST_TEST(g.track.proxies[j].name == w.track.proxies[j].name);
      BOOST_TEST(g.track.proxies[j].weight == w.track.proxies[j].weight);
    }
    BOOST_TEST(g.track.scripts.size() == w.track.scripts.size());
  }
}

}  // namespace

// ---------------------------------------------------------------- haproxy parser

BOOST_AUTO_TEST_CASE(importer_haproxy_durations) {
  importer::Duration d{};
  auto dur = [&](std::string_view s) {
    BOOST_TEST_INFO(s);
    BOOST_TEST(hp::parse_duration(s, d));
    return d.count();
  };
  BOOST_TEST(dur("2000") == 2000);  // a bare number is milliseconds in HAProxy
  BOOST_TEST(dur("500ms") == 500);
  BOOST_TEST(dur("2s") == 2000);
  BOOST_TEST(dur("30m") == 1'800'000);
  BOOST_TEST(dur("1h") == 3'600'000);
  BOOST_TEST(dur("1d") == 86'400'000);
  BOOST_TEST(dur("1500us") == 2);  // rounded up to HAProxy's millisecond tick
  BOOST_TEST(dur("0") == 0);
  for (std::string_view bad : {"", "s", "2x", "-1", "1.5s", "2 s", "99999999999999999999"}) {
    BOOST_TEST_INFO(bad);
    BOOST_TEST(!hp::parse_duration(bad, d));
  }
}

BOOST_AUTO_TEST_CASE(importer_haproxy_comments_and_httpchk_old_form) {
  auto c = hp::parse(
      "# a comment line\n"
      "backend b   # trailing comment\n"
      "  option httpchk OPTIONS /primary # patroni endpoint, GET generates tracebacks\n"
      "  http-check expect status 200 # only master returns 200\n"
      "  server s1 10.0.0.1:5432 check # comment # twice\n"
      "  server s2 10.0.0.2:5432 check\\#x\n",
      "h.cfg");
  BOOST_REQUIRE_EQUAL(c.sections.size(), 1u);
  const auto& s = c.sections[0];
  BOOST_TEST(s.name == "b");
  BOOST_TEST(s.check_option->value == "httpchk");
  BOOST_TEST(s.http_method->value == "OPTIONS");
  BOOST_TEST(s.http_uri->value == "/primary");
  BOOST_TEST(!s.http_version);  // the comment is not an HTTP version
  BOOST_TEST(s.expect_status->value == 200u);
  BOOST_TEST(s.expect_status->line == 4);
  BOOST_REQUIRE_EQUAL(s.servers.size(), 2u);
  BOOST_TEST(s.servers[0].options.unhandled.empty());
  BOOST_REQUIRE_EQUAL(s.servers[1].options.unhandled.size(), 1u);  // "check#x" is one (unknown) word
  BOOST_TEST(s.servers[1].options.unhandled[0].text == "check#x");
}

BOOST_AUTO_TEST_CASE(importer_haproxy_httpchk_forms) {
  auto c = hp::parse(
      "backend a\n  option httpchk\n"
      "backend b\n  option httpchk /replica\n"
      "backend c\n  option httpchk\n  http-check send meth HEAD uri /primary ver HTTP/1.1 hdr Host x\n"
      "  http-check expect status 503\n"
      "backend d\n  option httpchk GET /sync HTTP/1.0\\r\\nHost:\\ x\n  http-check expect rstatus ^2\n"
      "backend e\n  option tcp-check\n",
      "h.cfg");
  const auto& a = *c.find(hp::SectionKind::backend, "a");
  BOOST_TEST(!a.http_method);
  BOOST_TEST(!a.http_uri);
  const auto& b = *c.find(hp::SectionKind::backend, "b");
  BOOST_TEST(!b.http_method);
  BOOST_TEST(b.http_uri->value == "/replica");
  const auto& cc = *c.find(hp::SectionKind::backend, "c");
  BOOST_TEST(cc.http_method->value == "HEAD");
  BOOST_TEST(cc.http_uri->value == "/primary");
  BOOST_TEST(cc.http_version->value == "HTTP/1.1");
  BOOST_TEST(cc.expect_status->value == 503u);
  BOOST_REQUIRE_EQUAL(cc.unhandled.size(), 1u);
  BOOST_TEST(has(cc.unhandled[0].text, "hdr Host x"));
  const auto& d = *c.find(hp::SectionKind::backend, "d");
  BOOST_TEST(d.http_method->value == "GET");
  BOOST_TEST(d.http_uri->value == "/sync");
  BOOST_TEST(!d.expect_status);
  BOOST_REQUIRE_EQUAL(d.unhandled.size(), 1u);
  BOOST_TEST(d.unhandled[0].text == "http-check expect rstatus ^2");
  BOOST_TEST(c.find(hp::SectionKind::backend, "e")->check_option->value == "tcp-check");
}

BOOST_AUTO_TEST_CASE(importer_haproxy_default_server_applies_to_following_servers) {
  auto c = hp::parse(
      "defaults\n"
      "  timeout connect 4s\n"
      "  default-server fall 5\n"
      "listen l\n"
      "  bind :5000\n"
      "  server a 10.0.0.1:5432 check\n"
      "  default-server inter 3s rise 4 on-marked-down shutdown-sessions\n"
      "  server b 10.0.0.2:5432 check port 8008 rise 1\n"
      "  timeout connect 1s\n",
      "h.cfg");
  const auto& l = *c.find(hp::SectionKind::listen, "l");
  BOOST_REQUIRE_EQUAL(l.servers.size(), 2u);
  const auto& a = l.servers[0].options;
  BOOST_TEST(!a.inter);  // default-server comes after it
  BOOST_TEST(a.fall->value == 5u);  // from defaults
  BOOST_TEST(a.fall->line == 3);
  const auto& b = l.servers[1].options;
  BOOST_TEST(b.inter->value.count() == 3000);
  BOOST_TEST(b.inter->line == 7);
  BOOST_TEST(b.rise->value == 1u);  // the server's own wins
  BOOST_TEST(b.fall->value == 5u);
  BOOST_TEST(b.port->value == 8008u);
  BOOST_TEST(b.on_marked_down->value == "shutdown-sessions");
  BOOST_TEST(l.timeouts.at("connect").value.count() == 1000);  // own setting overrides defaults
  BOOST_TEST(l.timeouts.at("connect").line == 9);
}

BOOST_AUTO_TEST_CASE(importer_haproxy_server_options) {
  auto c = hp::parse(
      "backend b\n"
      "  server s 10.0.0.1:5432 port 8008 check inter 2500 fall 4 rise 3 fastinter 1s downinter 10s verify none "
      "check-ssl ssl ca-file /ca.pem on-marked-down shutdown-sessions backup maxconn 50 weight 10 send-proxy\n",
      "h.cfg");
  const auto& o = c.sections[0].servers[0].options;
  BOOST_TEST(o.port->value == 8008u);
  BOOST_TEST(o.check->value);
  BOOST_TEST(o.inter->value.count() == 2500);
  BOOST_TEST(o.fall->value == 4u);
  BOOST_TEST(o.rise->value == 3u);
  BOOST_TEST(o.fastinter->value.count() == 1000);
  BOOST_TEST(o.downinter->value.count() == 10000);
  BOOST_TEST(o.verify->value == "none");
  BOOST_TEST(o.check_ssl->value);
  BOOST_TEST(o.ssl->value);
  BOOST_TEST(o.ca_file->value == "/ca.pem");
  BOOST_TEST(o.backup->value);
  BOOST_TEST(o.maxconn->value == 50u);
  BOOST_REQUIRE_EQUAL(o.unhandled.size(), 2u);
  BOOST_TEST(o.unhandled[0].text == "weight 10");
  BOOST_TEST(o.unhandled[1].text == "send-proxy");
}

BOOST_AUTO_TEST_CASE(importer_haproxy_errors_name_the_line) {
  auto e = parse_error([] { hp::parse("\n  bind :5000\n", "h.cfg"); });
  BOOST_TEST(e.line() == 2);
  BOOST_TEST(has(e.what(), "h.cfg:2:"));
  e = parse_error([] { hp::parse("backend b\n  timeout connect fast\n", "h.cfg"); });
  BOOST_TEST(e.line() == 2);
  BOOST_TEST(has(e.what(), "timeout connect"));
  e = parse_error([] { hp::parse("backend b\n\n  server s1\n", "h.cfg"); });
  BOOST_TEST(e.line() == 3);
  e = parse_error([] { hp::parse("backend b\n  server s1 10.0.0.1:5432 inter\n", "h.cfg"); });
  BOOST_TEST(e.line() == 2);
  e = parse_error([] { hp::parse("frontend\n", "h.cfg"); });
  BOOST_TEST(e.line() == 1);
  e = parse_error([] { hp::parse(std::string("global\n\0\n", 9), "h.cfg"); });
  BOOST_TEST(e.line() == 2);
}

// ---------------------------------------------------------------- keepalived parser

BOOST_AUTO_TEST_CASE(importer_keepalived_nested_blocks) {
  auto tree = ka::parse_tree(
      "! comment\n"
      "vrrp_instance VI_1 {   # trailing\n"
      "  authentication {\n"
      "    auth_type PASS\n"
      "  }\n"
      "  virtual_ipaddress {192.168.1.160/24 dev eth0}\n"
      "}\n"
      "vrrp_script chk\n"
      "{\n"
      "  script \"/bin/check x # not a comment\"\n"
      "}\n",
      "k.conf");
  BOOST_REQUIRE_EQUAL(tree.size(), 2u);
  const auto& vi = tree[0];
  BOOST_TEST(vi.block);
  BOOST_TEST(vi.line == 2);
  BOOST_TEST(vi.words.size() == 2u);
  BOOST_REQUIRE_EQUAL(vi.children.size(), 2u);
  BOOST_TEST(vi.children[0].words[0] == "authentication");
  BOOST_TEST(vi.children[0].children[0].words[1] == "PASS");
  BOOST_TEST(vi.children[1].children[0].words.size() == 3u);  // braces glued to words still split
  const auto& sc = tree[1];
  BOOST_TEST(sc.block);  // '{' on the next line
  BOOST_TEST(sc.children[0].words[1] == "/bin/check x # not a comment");
}

BOOST_AUTO_TEST_CASE(importer_keepalived_unbalanced_braces) {
  auto e = parse_error([] { ka::parse_tree("global_defs {\n}\nvrrp_instance VI_1 {\n  state MASTER\n", "k.conf"); });
  BOOST_TEST(e.line() == 3);  // the line that opened the block
  BOOST_TEST(has(e.what(), "k.conf:3:"));
  BOOST_TEST(has(e.what(), "never closed"));
  e = parse_error([] { ka::parse_tree("vrrp_instance VI_1 {\n}\n}\n", "k.conf"); });
  BOOST_TEST(e.line() == 3);
  BOOST_TEST(has(e.what(), "without a matching"));
  e = parse_error([] { ka::parse_tree("vrrp_script x {\n  script \"/bin/x\n}\n", "k.conf"); });
  BOOST_TEST(e.line() == 2);
  e = parse_error([] { ka::parse_tree("{\n}\n", "k.conf"); });
  BOOST_TEST(e.line() == 1);
}

BOOST_AUTO_TEST_CASE(importer_keepalived_instance) {
  auto c = ka::parse(
      "global_defs {\n  vrrp_version 3\n  router_id x\n}\n"
      "include /etc/keepalived/conf.d/*.conf\n"
      "vrrp_instance V {\n"
      "  state BACKUP\n  interface eth0\n  virtual_router_id 7\n  priority 90\n  advert_int 0.1\n"
      "  nopreempt\n  preempt_delay 30\n"
      "  authentication { auth_type PASS auth_pass secret }\n"
      "  virtual_ipaddress {\n    10.0.0.5/24 dev eth1 label eth1:vip brd 10.0.0.255\n    10.0.0.6\n  }\n"
      "  unicast_src_ip 10.0.0.1\n  unicast_peer {\n    10.0.0.2\n  }\n"
      "  track_script {\n    chk weight -20\n  }\n  track_interface {\n    eth0\n    eth1 weight 10\n  }\n"
      "  notify_master \"/bin/n master\"\n  garp_master_delay 2\n  smtp_alert\n"
      "}\n",
      "k.conf");
  BOOST_TEST(c.vrrp_version->value == 3u);
  BOOST_REQUIRE_EQUAL(c.instances.size(), 1u);
  const auto& v = c.instances[0];
  BOOST_TEST(v.state->value == "BACKUP");
  BOOST_TEST(v.interface->value == "eth0");
  BOOST_TEST(v.virtual_router_id->value == 7u);
  BOOST_TEST(v.priority->value == 90u);
  BOOST_TEST(v.advert_int->value.count() == 100);
  BOOST_TEST(v.nopreempt.has_value());
  BOOST_TEST(v.preempt_delay->value.count() == 30000);
  BOOST_TEST(v.auth_type->value == "PASS");
  BOOST_TEST(v.auth_pass->value == "secret");
  BOOST_REQUIRE_EQUAL(v.virtual_ipaddresses.size(), 2u);
  BOOST_TEST(v.virtual_ipaddresses[0].address == "10.0.0.5");
  BOOST_TEST(*v.virtual_ipaddresses[0].prefix == 24u);
  BOOST_TEST(v.virtual_ipaddresses[0].device == "eth1");
  BOOST_TEST(v.virtual_ipaddresses[0].label == "eth1:vip");
  BOOST_TEST(v.virtual_ipaddresses[0].unhandled.size() == 1u);
  BOOST_TEST(!v.virtual_ipaddresses[1].prefix);
  BOOST_TEST(v.unicast_src_ip->value == "10.0.0.1");
  BOOST_TEST(v.unicast_peers.size() == 1u);
  BOOST_REQUIRE_EQUAL(v.track_scripts.size(), 1u);
  BOOST_TEST(*v.track_scripts[0].weight == -20);
  BOOST_REQUIRE_EQUAL(v.track_interfaces.size(), 2u);
  BOOST_TEST(!v.track_interfaces[0].weight);
  BOOST_TEST(*v.track_interfaces[1].weight == 10);
  BOOST_TEST(v.notify_master->value == "/bin/n master");
  BOOST_TEST(v.garp_master_delay->value.count() == 2000);
  BOOST_REQUIRE_EQUAL(v.unhandled.size(), 1u);
  BOOST_TEST(v.unhandled[0].text == "smtp_alert");
  BOOST_REQUIRE_EQUAL(c.unhandled.size(), 2u);  // router_id, include
  BOOST_TEST(has(c.unhandled[1].text, "include"));
  BOOST_TEST(has(c.unhandled[1].reason, "not read"));

  auto e = parse_error([] { ka::parse("vrrp_instance V {\n  virtual_router_id x\n}\n", "k.conf"); });
  BOOST_TEST(e.line() == 2);
}

// ---------------------------------------------------------------- conversions

BOOST_AUTO_TEST_CASE(importer_guide_catalog01_matches_hand_written_config) {
  auto r = import_files(kGuide + "haproxy.cfg", kGuide + "keepalived-catalog01.conf", "catalog01");
  expect_same_meaning(r.loaded, cfg::load_file(kRoot + "/tests/fixtures/config/catalog01.yaml"));
  BOOST_TEST_INFO(r.notes);
  // What could not be translated, one line each, at the right place.
  BOOST_TEST(has(r.notes, "haproxy.cfg:12: 'timeout server 30s' not translated: vipproxy has no idle timeout by "
                          "default (keepalive instead); set idle_timeout if you want one\n"));
  BOOST_TEST(has(r.notes, "haproxy.cfg:8: 'option tcp-check' not translated: overridden by 'option httpchk' on line 9"));
  BOOST_TEST(has(r.notes, "haproxy.cfg:13: 'verify none' ignored"));
  BOOST_TEST(has(r.notes, "haproxy.cfg:14: 'verify none' ignored"));
  BOOST_TEST(has(r.notes, "vipproxy closes sessions on a demoted backend by default"));
  BOOST_TEST(has(r.notes, "check.timeout 1s"));
  BOOST_TEST(has(r.notes, "keepalived.conf:5: vrrp_script check_haproxy"));
  BOOST_TEST(has(r.notes, "replaced by track: {proxies: [postgres]}"));
  BOOST_TEST(has(r.notes, "stricter"));
  BOOST_TEST(has(r.notes, "listener is up AND at least one backend is eligible"));
  // What Daemon::proxy_healthy does: a node whose backends still answer
  // (every Patroni saying 503 during an election) keeps the VIP.
  BOOST_TEST(has(r.notes, "or, while none is, one still answers its check"));
  BOOST_TEST(has(r.notes, "a node that reaches none of its backends gives the VIP away"));
  BOOST_TEST(has(r.notes, "keepalived.conf:22: virtual address 192.168.1.160 has no prefix"));
  BOOST_TEST(has(r.notes, "/32"));
  BOOST_TEST(has(r.notes, "/24"));
  BOOST_TEST(has(r.notes, "keepalived.conf:2: 'enable_script_security' not translated"));
  // Every note is one line.
  for (const auto& n : r.result.notes) BOOST_TEST(!has(n.text, "\n"));
}

BOOST_AUTO_TEST_CASE(importer_guide_catalog02_matches_hand_written_config) {
  auto r = import_files(kGuide + "haproxy.cfg", kGuide + "keepalived-catalog02.conf", "catalog02");
  expect_same_meaning(r.loaded, cfg::load_file(kRoot + "/tests/fixtures/config/catalog02.yaml"));
  BOOST_TEST(r.loaded.vrrp[0].priority == 50u);
  BOOST_TEST((r.loaded.vrrp[0].state == cfg::VrrpState::backup));
}

BOOST_AUTO_TEST_CASE(importer_guide_haproxy_appended_to_debian_default) {
  // The guide appends its sections to Debian's default haproxy.cfg, whose
  // defaults say "mode http" and "timeout connect 5000" (milliseconds).
  auto r = import_files(kImport + "debian-appended-haproxy.cfg", kGuide + "keepalived-catalog01.conf", "catalog01");
  auto want = cfg::load_file(kRoot + "/tests/fixtures/config/catalog01.yaml");
  expect_same_meaning(r.loaded, want);
  BOOST_TEST(has(r.notes, "haproxy.cfg:5: 'stats socket"));
  BOOST_TEST(has(r.notes, "admin endpoint"));
  BOOST_TEST(has(r.notes, "haproxy.cfg:28: 'errorfile 400"));
}

BOOST_AUTO_TEST_CASE(importer_patroni_sample) {
  auto r = import_files(kImport + "patroni-haproxy.cfg", "");
  BOOST_REQUIRE_EQUAL(r.loaded.proxies.size(), 1u);  // listen stats is not a TCP proxy
  const auto& p = r.loaded.proxies[0];
  BOOST_TEST(p.name == "batman");
  BOOST_TEST(p.listen.to_string() == "0.0.0.0:5000");
  BOOST_TEST((p.check.type == cfg::CheckType::http));
  BOOST_TEST(p.check.method == "OPTIONS");  // HAProxy's default method
  BOOST_TEST(p.check.path == "/");          // Patroni answers 200 on / only on the leader
  BOOST_TEST(p.check.expect_status == 200u);
  BOOST_TEST(p.check.interval.count() == 3000);  // default-server inter 3s
  BOOST_TEST(p.check.rise == 2u);
  BOOST_TEST(p.check.fall == 3u);
  BOOST_TEST(p.check.timeout.count() == 5000);  // timeout check 5s from defaults
  BOOST_TEST(!p.check.port);
  BOOST_TEST(p.connect_timeout.count() == 4000);
  BOOST_TEST(p.maxconn == 100u);  // global maxconn
  BOOST_TEST(p.idle_timeout.count() == 0);
  BOOST_REQUIRE_EQUAL(p.backends.size(), 3u);
  BOOST_TEST(p.backends[0].name == "postgresql_127.0.0.1_5432");
  BOOST_TEST(p.backends[0].address.to_string() == "127.0.0.1:5432");
  BOOST_TEST(*p.backends[0].check_port == 8008);  // ports differ: per backend
  BOOST_TEST(*p.backends[2].check_port == 8010);
  BOOST_TEST_INFO(r.notes);
  BOOST_TEST(has(r.notes, "haproxy.cfg:15: 'listen stats' not translated: mode http"));
  BOOST_TEST(has(r.notes, "haproxy.cfg:10: 'timeout client 30m' not translated"));
  BOOST_TEST(has(r.notes, "haproxy.cfg:12: 'timeout server 30m' not translated"));
  BOOST_TEST(has(r.notes, "haproxy.cfg:25: 'on-marked-down shutdown-sessions' is vipproxy's default"));
  BOOST_TEST(has(r.notes, "haproxy.cfg:26: 'maxconn 100' not translated"));
  BOOST_TEST(has(r.notes, "haproxy.cfg:9: 'retries 2' not translated"));
  BOOST_TEST(!has(r.notes, "stats enable"));  // the skipped section is reported once
}

BOOST_AUTO_TEST_CASE(importer_modern_haproxy_tls_backup_replicas) {
  auto r = import_files(kImport + "modern-haproxy.cfg", "");
  BOOST_REQUIRE_EQUAL(r.loaded.proxies.size(), 2u);
  const auto& rw = r.loaded.proxies[0];
  BOOST_TEST(rw.name == "pg-rw");  // "-frontend" dropped
  BOOST_TEST(rw.listen.to_string() == "10.0.0.50:5432");
  BOOST_TEST(rw.check.method == "HEAD");
  BOOST_TEST(rw.check.path == "/primary");
  BOOST_TEST(*rw.check.port == 8008);
  BOOST_TEST(rw.check.tls.enabled);
  BOOST_TEST(!rw.check.tls.verify);
  BOOST_TEST(rw.check.interval.count() == 1000);
  BOOST_TEST(rw.check.fast_interval.count() == 500);
  BOOST_TEST(rw.check.rise == 3u);
  BOOST_TEST(rw.check.fall == 2u);
  BOOST_TEST(rw.check.timeout.count() == 2000);
  BOOST_TEST((rw.balance == cfg::Balance::first));
  BOOST_REQUIRE_EQUAL(rw.backends.size(), 3u);
  BOOST_TEST(rw.backends[2].name == "pg3");  // the backup server, last
  const auto& ro = r.loaded.proxies[1];
  BOOST_TEST(ro.name == "pg-ro");
  BOOST_TEST(ro.listen.to_string() == "0.0.0.0:5433");
  BOOST_TEST((ro.balance == cfg::Balance::leastconn));
  BOOST_TEST(ro.check.method == "GET");
  BOOST_TEST(ro.check.path == "/replica?lag=10MB");
  BOOST_TEST(!ro.check.tls.enabled);
  BOOST_TEST_INFO(r.notes);
  BOOST_TEST(has(r.notes, "'backup' not translated"));
  BOOST_TEST(has(r.notes, "'downinter 5s' not translated"));
  BOOST_TEST(has(r.notes, "hdr Host patroni"));
}

BOOST_AUTO_TEST_CASE(importer_unicast_keepalived_with_haproxy) {
  auto r = import_files(kImport + "patroni-haproxy.cfg", kImport + "unicast-keepalived.conf", "pg1");
  BOOST_TEST(r.loaded.node == "pg1");
  BOOST_REQUIRE_EQUAL(r.loaded.vrrp.size(), 2u);
  const auto& v = r.loaded.vrrp[0];
  BOOST_TEST(v.name == "PG_V4");
  BOOST_TEST(v.version == 3u);
  BOOST_TEST(v.advert_int.count() == 100);
  BOOST_TEST(!v.preempt);
  BOOST_TEST(v.preempt_delay.count() == 30000);
  BOOST_TEST(v.unicast);
  BOOST_TEST(v.unicast_src_ip == "10.0.0.11");
  BOOST_TEST(v.unicast_peers.size() == 2u);
  BOOST_REQUIRE_EQUAL(v.virtual_ipaddresses.size(), 1u);
  BOOST_TEST(v.virtual_ipaddresses[0].prefix_len == 24u);
  BOOST_TEST(v.virtual_ipaddresses[0].label == "eth0:vip");
  BOOST_REQUIRE_EQUAL(v.track.proxies.size(), 1u);
  BOOST_TEST(v.track.proxies[0].name == "batman");
  BOOST_TEST(v.track.proxies[0].weight == -20);  // the script's weight is kept
  BOOST_REQUIRE_EQUAL(v.track.scripts.size(), 1u);
  BOOST_TEST(v.track.scripts[0].name == "chk_uplink");
  BOOST_TEST(v.track.scripts[0].weight == -5);  // track_script's weight overrides the script's
  BOOST_TEST(v.track.scripts[0].interval.count() == 5000);
  BOOST_TEST(v.track.scripts[0].user == "keepalived_script");
  BOOST_REQUIRE_EQUAL(v.track.interfaces.size(), 2u);
  BOOST_TEST(v.track.interfaces[1].weight == -30);
  BOOST_TEST(v.notify.master == "/etc/keepalived/notify.sh MASTER");
  BOOST_TEST(v.notify.any == "/etc/keepalived/notify_any.sh");
  BOOST_TEST(v.garp.master_delay.count() == 2000);
  BOOST_TEST(v.garp.master_repeat == 3u);
  BOOST_TEST(v.garp.master_refresh.count() == 60000);
  const auto& v6 = r.loaded.vrrp[1];
  BOOST_TEST(v6.virtual_ipaddresses[0].is_ipv6);
  BOOST_TEST(v6.virtual_ipaddresses[0].prefix_len == 64u);
  BOOST_TEST(v6.version == 3u);  // global vrrp_version 3
  BOOST_TEST_INFO(r.notes);
  BOOST_TEST(has(r.notes, "keepalived.conf:12: vrrp_script chk_haproxy (killall -0 haproxy) replaced by track"));
  BOOST_TEST(has(r.notes, "keepalived.conf:5: 'router_id pg1' not translated"));
  // global_defs vrrp_rt_priority is ours (the control thread's), not a note.
  BOOST_TEST(r.loaded.vrrp_rt_priority == 10u);
  BOOST_TEST(r.result.yaml.find("vrrp_rt_priority: 10") != std::string::npos);
  BOOST_TEST(!has(r.notes, "vrrp_rt_priority"));
}

BOOST_AUTO_TEST_CASE(importer_either_file_alone) {
  auto h = import_files(kGuide + "haproxy.cfg", "");
  BOOST_TEST(h.loaded.proxies.size() == 1u);
  BOOST_TEST(h.loaded.vrrp.empty());
  auto k = import_files("", kGuide + "keepalived-catalog01.conf");
  BOOST_TEST(k.loaded.proxies.empty());
  BOOST_REQUIRE_EQUAL(k.loaded.vrrp.size(), 1u);
  // Without a proxy to track, the HAProxy check script is kept, and the user
  // is told how to replace it.
  BOOST_REQUIRE_EQUAL(k.loaded.vrrp[0].track.scripts.size(), 1u);
  BOOST_TEST(k.loaded.vrrp[0].track.scripts[0].command == "/etc/keepalived/check_haproxy.sh");
  BOOST_TEST(k.loaded.vrrp[0].track.scripts[0].interval.count() == 2000);
  BOOST_TEST(k.loaded.vrrp[0].track.scripts[0].fall == 3u);
  BOOST_TEST(k.loaded.vrrp[0].track.scripts[0].rise == 2u);
  BOOST_TEST(has(k.notes, "kept as a script because no haproxy.cfg was imported"));
  auto u = import_files("", kImport + "unicast-keepalived.conf");
  BOOST_TEST(u.loaded.vrrp.size() == 2u);
}

BOOST_AUTO_TEST_CASE(importer_odd_values_are_quoted_and_load) {
  // A password with YAML-special characters, a bare IPv6 server address,
  // a server without port, a TCP check and a keepalived v2 password cut to 8.
  auto h = hp::parse(
      "frontend f\n  bind [::]:6432\n  default_backend b\n"
      "backend b\n  timeout connect 1500ms\n  server n1 fd00::1:5432 check\n  server n2 db-2.example.com\n",
      "h.cfg");
  auto k = ka::parse(
      "vrrp_instance yes {\n  interface eth0\n  virtual_router_id 9\n"
      "  authentication {\n    auth_type PASS\n    auth_pass \"a: #b'cdefg\"\n  }\n"
      "  virtual_ipaddress {\n    10.1.1.1/24\n  }\n}\n",
      "k.conf");
  auto r = importer::convert(&h, &k, {});
  BOOST_TEST_INFO(r.yaml);
  BOOST_TEST(r.load_error.empty(), r.load_error);
  auto c = cfg::load_string(r.yaml, "t.yaml");
  BOOST_TEST(c.proxies[0].name == "f");
  BOOST_TEST(c.proxies[0].listen.host == "::");
  BOOST_TEST((c.proxies[0].check.type == cfg::CheckType::tcp));
  BOOST_TEST(c.proxies[0].connect_timeout.count() == 1500);
  BOOST_TEST(c.proxies[0].backends[0].address.host == "fd00::1");
  BOOST_TEST(c.proxies[0].backends[0].address.port == 5432);
  BOOST_TEST(c.proxies[0].backends[1].address.port == 6432);  // the listen port, as HAProxy
  BOOST_TEST(c.vrrp[0].name == "yes");
  BOOST_TEST(c.vrrp[0].auth_password == "a: #b'cd");
  std::string notes;
  for (const auto& n : r.notes) notes += n.to_string() + "\n";
  BOOST_TEST(has(notes, "longer than 8 characters"));
  BOOST_TEST(has(notes, "server n2 has no port"));
}

BOOST_AUTO_TEST_CASE(importer_half_closed_timeouts) {
  // timeout client-fin is the frontend's (here from defaults), server-fin the
  // backend's; neither is reported as untranslated.
  auto h = hp::parse(
      "defaults\n  mode tcp\n  timeout client-fin 30s\n"
      "frontend f\n  bind :5433\n  default_backend b\n"
      "backend b\n  timeout connect 1s\n  timeout server-fin 0\n  server n1 10.0.0.1:5432 check\n",
      "h.cfg");
  auto r = importer::convert(&h, nullptr, {});
  BOOST_TEST_INFO(r.yaml);
  BOOST_TEST(r.load_error.empty(), r.load_error);
  auto c = cfg::load_string(r.yaml, "t.yaml");
  BOOST_TEST(c.proxies.at(0).client_fin_timeout.count() == 30000);
  BOOST_TEST(c.proxies.at(0).server_fin_timeout.count() == 0);  // HAProxy's 0: no timeout
  std::string notes;
  for (const auto& n : r.notes) notes += n.to_string() + "\n";
  BOOST_TEST(!has(notes, "-fin"), notes);
  // Absent: vipproxy's default bound (1h), not HAProxy's "timeout client".
  auto plain = hp::parse("listen l\n  mode tcp\n  bind :5433\n  timeout connect 1s\n  server n1 10.0.0.1:5432\n",
                         "h.cfg");
  auto rp = importer::convert(&plain, nullptr, {});
  BOOST_TEST(!has(rp.yaml, "fin_timeout"), rp.yaml);
  BOOST_TEST(cfg::load_string(rp.yaml, "t.yaml").proxies.at(0).client_fin_timeout.count() == 3600000);
}

BOOST_AUTO_TEST_CASE(importer_duration_text) {
  BOOST_TEST(cfg::duration_text(2000ms) == "2s");
  BOOST_TEST(cfg::duration_text(100ms) == "100ms");
  BOOST_TEST(cfg::duration_text(1800000ms) == "30m");
  BOOST_TEST(cfg::duration_text(3600000ms) == "1h");
  BOOST_TEST(cfg::duration_text(1500ms) == "1500ms");
  BOOST_TEST(cfg::duration_text(0ms) == "0s");
}

// ---------------------------------------------------------------- CLI

namespace {
struct Run {
  int rc;
  std::string out, err;
};
Run cli(std::vector<std::string> args) {
  args.insert(args.begin(), "import");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  int rc = importer::run_cli(static_cast<int>(argv.size()), argv.data(), out, err);
  return {rc, out.str(), err.str()};
}
}  // namespace

BOOST_AUTO_TEST_CASE(importer_cli_exit_codes) {
  auto ok = cli({"--haproxy", kGuide + "haproxy.cfg", "--keepalived", kGuide + "keepalived-catalog01.conf", "--node",
                 "catalog01"});
  BOOST_TEST(ok.rc == 0);
  BOOST_TEST(has(ok.out, "node: catalog01"));
  BOOST_TEST(has(ok.err, kGuide + "haproxy.cfg:12: 'timeout server 30s' not translated"));
  BOOST_TEST(!has(ok.out, "not translated"));  // notes go to stderr only

  auto missing = cli({"--haproxy", "/nonexistent/haproxy.cfg"});
  BOOST_TEST(missing.rc == 1);
  BOOST_TEST(has(missing.err, "/nonexistent/haproxy.cfg: cannot read"));

  auto bad = cli({"--keepalived", kRoot + "/tests/fixtures/config/catalog01.yaml"});
  BOOST_TEST(bad.rc == 1, bad.err);  // YAML is not keepalived.conf: no vrrp_instance, does not load

  auto tmp = std::filesystem::temp_directory_path() / ("importer_test_" + std::to_string(::getpid()) + ".conf");
  {
    std::ofstream f(tmp);
    f << "vrrp_instance VI_1 {\n  state MASTER\n";
  }
  auto unbalanced = cli({"--keepalived", tmp.string()});
  std::filesystem::remove(tmp);
  BOOST_TEST(unbalanced.rc == 1);
  BOOST_TEST(has(unbalanced.err, tmp.string() + ":1: "), unbalanced.err);
  BOOST_TEST(unbalanced.out.empty());

  auto usage = cli({});
  BOOST_TEST(usage.rc == 2);
  BOOST_TEST(cli({"--bogus"}).rc == 2);
  BOOST_TEST(cli({"--haproxy"}).rc == 2);
}

// Every prefix of the real inputs either parses or throws ParseError, and what
// parses converts without crashing (run under the sanitizers by scripts/test).
// A refusal names the file and a line within the prefix; the whole file
// converts to a configuration that loads (so the loop saw both outcomes).
BOOST_AUTO_TEST_CASE(importer_truncated_inputs_never_crash) {
  auto check = [](const std::string& name, const std::string& file, auto parse_and_convert) {
    std::string text = slurp(name);
    std::size_t parsed = 0, refused = 0;
    for (std::size_t n = 0; n <= text.size(); n += 3) {
      std::string_view prefix = std::string_view(text).substr(0, n);
      BOOST_TEST_CONTEXT(name << " cut at " << n) {
        try {
          (void)parse_and_convert(prefix, file);
          ++parsed;
        } catch (const importer::ParseError& e) {
          ++refused;
          std::string what = e.what();
          BOOST_TEST(what.rfind(file + ":", 0) == 0, what);
          auto lines = static_cast<int>(std::count(prefix.begin(), prefix.end(), '\n')) + 1;
          BOOST_TEST((e.line() >= 1 && e.line() <= lines), what);
        }
      }
    }
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST(parsed > 0u);
      BOOST_TEST(refused > 0u);  // e.g. cut inside a braced block or after a keyword
      importer::Result whole = parse_and_convert(text, file);
      BOOST_TEST(whole.load_error.empty(), whole.load_error);
      BOOST_TEST(!whole.yaml.empty());
    }
  };
  auto haproxy = [](std::string_view t, const std::string& f) {
    auto h = hp::parse(t, f);
    return importer::convert(&h, nullptr, {});
  };
  auto keepalived = [](std::string_view t, const std::string& f) {
    auto k = ka::parse(t, f);
    return importer::convert(nullptr, &k, {});
  };
  for (const std::string& name : {kGuide + "haproxy.cfg", kImport + "modern-haproxy.cfg"})
    check(name, "h.cfg", haproxy);
  for (const std::string& name : {kGuide + "keepalived-catalog01.conf", kImport + "unicast-keepalived.conf"})
    check(name, "k.conf", keepalived);
}

// ---------------------------------------------------------------- review: keepalived semantics

namespace {
// keepalived.conf text (as k.conf) -> import_files' result; the YAML must load.
Imported import_keepalived(const std::string& text) {
  importer::Options o;
  o.keepalived_file = "k.conf";
  auto k = ka::parse(text, o.keepalived_file);
  return convert_and_load(nullptr, &k, o);
}
std::string ka_instance(const std::string& name, unsigned vrid, const std::string& body) {
  return "vrrp_instance " + name + " {\n  interface eth0\n  virtual_router_id " + std::to_string(vrid) + "\n" + body +
         "  virtual_ipaddress {\n    10.0.0." + std::to_string(vrid) + "/24\n  }\n}\n";
}
}  // namespace

// keepalived (vrrp.c, vrrp_complete_instance): no priority with state MASTER
// is priority 255, the address owner, not 100. The old importer wrote the
// default 100: a node that won every election under keepalived lost it to a
// BACKUP at 150 after the migration.
BOOST_AUTO_TEST_CASE(importer_keepalived_master_without_priority_is_255) {
  auto k = import_keepalived(ka_instance("M", 1, "  state MASTER\n") + ka_instance("B", 2, "  state BACKUP\n") +
                             ka_instance("N", 3, ""));
  BOOST_REQUIRE_EQUAL(k.loaded.vrrp.size(), 3u);
  BOOST_TEST(k.loaded.vrrp[0].priority == 255u);
  BOOST_TEST(k.loaded.vrrp[1].priority == 100u);
  BOOST_TEST(k.loaded.vrrp[2].priority == 100u);
  BOOST_TEST(has(k.notes, "k.conf:4: vrrp_instance M has 'state MASTER' and no 'priority'"));
}

// Priority 255 (written, or keepalived's for state MASTER without one) is
// imported as is; the RFC 5798 address owner whose VIP is the host's own
// address is refused when the daemon starts (the file alone cannot show
// it), so the report says what the start will check. The old importer said
// nothing, and the first sign was the node's own address gone.
BOOST_AUTO_TEST_CASE(importer_keepalived_priority_255_says_the_vip_must_be_free) {
  auto k = import_keepalived(ka_instance("O", 1, "  state BACKUP\n  priority 255\n") +
                             ka_instance("M", 2, "  state MASTER\n") + ka_instance("B", 3, "  priority 254\n"));
  BOOST_REQUIRE_EQUAL(k.loaded.vrrp.size(), 3u);
  BOOST_TEST(k.loaded.vrrp[0].priority == 255u);
  BOOST_TEST(k.loaded.vrrp[1].priority == 255u);
  BOOST_TEST(has(k.notes, "k.conf:5: vrrp_instance O runs at priority 255"));
  BOOST_TEST(has(k.notes, "k.conf:13: vrrp_instance M runs at priority 255"));
  BOOST_TEST(has(k.notes, "is refused at start (vipproxy never removes the host's own address)"));
  BOOST_TEST(!has(k.notes, "vrrp_instance B runs at priority 255"));
}

// keepalived clears nopreempt and preempt_delay with state MASTER ("Warning -
// nopreempt will not work with initial state MASTER - clearing") and
// nopreempt at priority 255: it preempts. The old importer wrote
// preempt: false / preempt_delay, a node that never took its VIP back.
BOOST_AUTO_TEST_CASE(importer_keepalived_nopreempt_cleared_as_keepalived_does) {
  auto k = import_keepalived(
      ka_instance("MN", 1, "  state MASTER\n  priority 150\n  nopreempt\n") +
      ka_instance("MD", 2, "  state MASTER\n  priority 150\n  preempt_delay 30\n") +
      ka_instance("ON", 3, "  state BACKUP\n  priority 255\n  nopreempt\n") +
      ka_instance("BN", 4, "  state BACKUP\n  priority 90\n  nopreempt\n") +
      ka_instance("BD", 5, "  state BACKUP\n  priority 90\n  preempt_delay 30\n") +
      ka_instance("ND", 6, "  state BACKUP\n  priority 90\n  nopreempt\n  preempt_delay 30\n"));
  BOOST_REQUIRE_EQUAL(k.loaded.vrrp.size(), 6u);
  BOOST_TEST(k.loaded.vrrp[0].preempt);
  BOOST_TEST(k.loaded.vrrp[1].preempt_delay.count() == 0);
  BOOST_TEST(k.loaded.vrrp[2].preempt);
  BOOST_TEST(!k.loaded.vrrp[3].preempt);  // BACKUP: nopreempt as written
  BOOST_TEST(k.loaded.vrrp[4].preempt_delay.count() == 30000);
  BOOST_TEST(!k.loaded.vrrp[5].preempt);  // (keepalived resets the delay too; it has no effect either way)
  BOOST_TEST(has(k.notes, "k.conf:6: 'nopreempt' has no effect with 'state MASTER'"));
  BOOST_TEST(has(k.notes, "k.conf:16: 'preempt_delay' has no effect with state MASTER"));
  BOOST_TEST(has(k.notes, "k.conf:26: 'nopreempt' has no effect at priority 255"));
}

// ---------------------------------------------------------------- review: haproxy semantics

namespace {
// haproxy.cfg text (as h.cfg) -> import_files' result; the YAML must load.
Imported import_haproxy(const std::string& text) {
  importer::Options o;
  o.haproxy_file = "h.cfg";
  auto h = hp::parse(text, o.haproxy_file);
  return convert_and_load(&h, nullptr, o);
}
}  // namespace

// `server ... disabled` is a server in maintenance: HAProxy sends it nothing.
// The old importer wrote it as a backend like the others ('disabled' only
// reported as an option with no equivalent): vipproxy sent clients to the
// node being rebuilt as soon as its check passed. A `disabled` proxy is not
// started by HAProxy; the old importer listened on its port.
BOOST_AUTO_TEST_CASE(importer_haproxy_disabled_servers_and_proxies) {
  auto h = import_haproxy(
      "defaults\n  mode tcp\n  timeout connect 2s\n"
      "listen pg\n  bind *:5000\n  option httpchk GET /primary\n  http-check expect status 200\n"
      "  default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions\n"
      "  server n1 10.0.0.1:5432 check port 8008\n"
      "  server n2 10.0.0.2:5432 check port 8008 disabled\n"
      "  server n3 10.0.0.3:5432 check port 8008\n"
      "listen old\n  disabled\n  bind *:5001\n  server n1 10.0.0.1:5432 check\n"
      "frontend f\n  bind *:5002\n  default_backend b\n"
      "backend b\n  default-server disabled\n  server n1 10.0.0.1:5432 check\n  server n2 10.0.0.2:5432 check enabled\n");
  BOOST_REQUIRE_EQUAL(h.loaded.proxies.size(), 2u);
  const auto& pg = h.loaded.proxies[0];
  BOOST_TEST(pg.name == "pg");
  BOOST_REQUIRE_EQUAL(pg.backends.size(), 2u);
  BOOST_TEST(pg.backends[0].name == "n1");
  BOOST_TEST(pg.backends[1].name == "n3");
  BOOST_TEST(has(h.notes, "h.cfg:10: 'server n2 10.0.0.2:5432 disabled' not translated"));
  BOOST_TEST(has(h.notes, "h.cfg:13: 'listen old' not translated: it is 'disabled'"));
  const auto& f = h.loaded.proxies[1];
  BOOST_TEST(f.name == "f");
  BOOST_REQUIRE_EQUAL(f.backends.size(), 1u);  // default-server disabled, n2 enabled again
  BOOST_TEST(f.backends[0].name == "n2");
}

// HAProxy 2.4+ named defaults: `backend NAME from DEFAULTS` (and `defaults B
// from A`) start from that section, not from the last one. The old importer
// took the last defaults section and reported only "extra words after the
// section name" (nothing at all for a defaults section): the backend got the
// other section's check, timeouts and balance.
BOOST_AUTO_TEST_CASE(importer_haproxy_named_defaults_from) {
  auto h = import_haproxy(
      "defaults pg\n  mode tcp\n  timeout connect 3s\n  timeout check 2s\n  option httpchk GET /primary\n"
      "  http-check expect status 200\n  default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions\n"
      "defaults pgro from pg\n  balance leastconn\n"
      "defaults web\n  mode http\n  timeout connect 9s\n"
      "listen primary from pg\n  bind *:5000\n  server n1 10.0.0.1:5432 check port 8008\n"
      "listen replicas from pgro\n  bind *:5001\n  option httpchk GET /replica\n"
      "  server n1 10.0.0.1:5432 check port 8008\n");
  BOOST_REQUIRE_EQUAL(h.loaded.proxies.size(), 2u);
  const auto& p = h.loaded.proxies[0];
  BOOST_TEST(p.name == "primary");
  BOOST_TEST(p.connect_timeout.count() == 3000);
  BOOST_TEST((p.check.type == cfg::CheckType::http));
  BOOST_TEST(p.check.path == "/primary");
  BOOST_TEST(p.check.interval.count() == 1000);
  BOOST_TEST(p.check.timeout.count() == 2000);
  const auto& r = h.loaded.proxies[1];
  BOOST_TEST(r.connect_timeout.count() == 3000);
  BOOST_TEST(r.check.path == "/replica");
  BOOST_TEST((r.balance == cfg::Balance::leastconn));
  BOOST_TEST(!has(h.notes, "extra words"));

  auto e = parse_error([] { hp::parse("defaults a\nbackend b from nope\n  server n 10.0.0.1:1\n", "h.cfg"); });
  BOOST_TEST(e.line() == 2);
  BOOST_TEST(has(e.reason(), "no defaults section of that name"));
}

// keepalived's notify_* lines are "<STRING>|<QUOTED-STRING> [username
// [groupname]]": a word after the command is the user to run it as, not an
// argument. The old importer joined them: `notify_master "/x.sh master" root`
// became the command `/x.sh master root` (an extra argument, the user lost
// without a word).
BOOST_AUTO_TEST_CASE(importer_keepalived_notify_user_is_not_an_argument) {
  auto k = import_keepalived(ka_instance(
      "N", 1,
      "  notify_master \"/etc/keepalived/notify.sh master\" root\n"
      "  notify_backup /etc/keepalived/notify.sh backup\n"
      "  notify_fault \"/bin/bash -c 'echo fault > /tmp/state'\"\n"
      "  notify \"/usr/local/bin/any.sh\" keepalived_script keepalived_script\n"));
  const auto& n = k.loaded.vrrp.at(0).notify;
  BOOST_TEST(n.master == "/etc/keepalived/notify.sh master");
  BOOST_TEST(n.backup == "/etc/keepalived/notify.sh");
  BOOST_TEST(n.fault == "/bin/bash -c 'echo fault > /tmp/state'");
  BOOST_TEST(n.any == "/usr/local/bin/any.sh");
  BOOST_TEST(has(k.notes, "k.conf:4: 'notify_master ... root' not translated: keepalived runs the command as this user"));
  BOOST_TEST(has(k.notes, "k.conf:5: 'notify_backup ... backup' not translated"));
  BOOST_TEST(has(k.notes, "k.conf:7: 'notify ... keepalived_script keepalived_script' not translated"));
}

// keepalived runs notify and track scripts as root with the file system
// writable; the packaged unit runs them as vipproxy under
// ProtectSystem=strict and PrivateTmp=yes. A notify script writing its
// state to /var/run/... failed after the migration (Read-only file system)
// and one writing /tmp/... wrote where no other process looks, with no word
// from the importer. Now a note per instance with hooks or kept scripts,
// and one per redirect in a command line that the unit stops or hides.
BOOST_AUTO_TEST_CASE(importer_keepalived_hooks_and_the_units_writable_paths) {
  auto k = import_keepalived(
      "vrrp_script chk_disk {\n  script \"/usr/bin/df / >> /var/log/keepalived/chk_disk.log\"\n}\n" +
      ka_instance("N", 1,
                  "  track_script {\n    chk_disk\n  }\n"
                  "  notify_master \"/bin/sh -c 'echo MASTER > /var/run/vip.state'\"\n"
                  "  notify_backup \"/bin/sh -c 'echo BACKUP >/tmp/vip.state 2>&1'\"\n"
                  "  notify_fault \"/bin/sh -c 'echo FAULT > /var/lib/vipproxy/state 2>/dev/null'\"\n"
                  "  notify_stop \"/bin/sh -c 'echo STOP >/run/vipproxy/state'\"\n") +
      ka_instance("Q", 2, ""));
  BOOST_TEST_INFO(k.notes);
  BOOST_TEST(has(k.notes, "k.conf:4: vrrp_instance N: notify commands and track scripts run as the vipproxy user "
                          "under the packaged unit (ProtectSystem=strict)"));
  BOOST_TEST(has(k.notes, "ReadWritePaths=DIR"));
  BOOST_TEST(has(k.notes, "k.conf:2: vrrp_script chk_disk writes /var/log/keepalived/chk_disk.log: read-only "
                          "under the packaged unit (ProtectSystem=strict): write it under /var/lib/vipproxy or "
                          "/run/vipproxy (/run/vipproxy/chk_disk.log), or allow /var/log/keepalived with a drop-in "
                          "(systemctl edit vipproxy: [Service] ReadWritePaths=/var/log/keepalived)\n"));
  // Not ReadWritePaths=/run: every service's runtime directory.
  BOOST_TEST(has(k.notes, "notify_master writes /var/run/vip.state: read-only under the packaged unit "
                          "(ProtectSystem=strict): write it under /var/lib/vipproxy or /run/vipproxy "
                          "(/run/vipproxy/vip.state)\n"));
  BOOST_TEST(has(k.notes, "notify_backup writes /tmp/vip.state: the packaged unit has a private /tmp"));
  BOOST_TEST(!has(k.notes, "notify_fault writes"));  // the unit's StateDirectory=
  BOOST_TEST(!has(k.notes, "/dev/null"));
  BOOST_TEST(!has(k.notes, "notify_stop writes"));    // its RuntimeDirectory=
  BOOST_TEST(!has(k.notes, "vrrp_instance Q: notify"));  // no hook, no script: nothing to say
}

// keepalived's `auth_type AH` (VRRPv2) cannot be written: keepalived peers
// using AH drop adverts without it, so a node migrated first and the
// keepalived nodes would each hold the VIP. The old importer printed a note
// and exited 0 with an instance without authentication; now the import fails
// (the YAML is still printed, the error names the line). PASS and AH under
// VRRPv3 are ignored by keepalived itself: a note only.
BOOST_AUTO_TEST_CASE(importer_keepalived_auth_ah_is_refused) {
  auto k = ka::parse(ka_instance("A", 1, "  authentication {\n    auth_type AH\n    auth_pass secret\n  }\n"), "k.conf");
  importer::Options o;
  o.keepalived_file = "k.conf";
  auto r = importer::convert(nullptr, &k, o);
  BOOST_REQUIRE_EQUAL(r.refused.size(), 1u);
  BOOST_TEST(r.refused[0].to_string().rfind("k.conf:5: 'auth_type AH' cannot be translated", 0) == 0,
             r.refused[0].to_string());

  auto v3 = import_keepalived(ka_instance("A", 1, "  version 3\n  authentication {\n    auth_type AH\n  }\n"));
  BOOST_TEST(has(v3.notes, "'auth_type AH' not translated: VRRPv3 has no authentication"));

  auto tmp = std::filesystem::temp_directory_path() / ("importer_ah_" + std::to_string(::getpid()) + ".conf");
  {
    std::ofstream f(tmp);
    f << ka_instance("A", 1, "  authentication {\n    auth_type AH\n    auth_pass secret\n  }\n");
  }
  auto run = cli({"--keepalived", tmp.string()});
  std::filesystem::remove(tmp);
  BOOST_TEST(run.rc == 1, run.err);
  BOOST_TEST(has(run.err, "vipproxy import: error: " + tmp.string() + ":5: 'auth_type AH' cannot be translated"), run.err);
  BOOST_TEST(has(run.out, "virtual_router_id: 1"));  // the YAML is still printed
}

// keepalived rounds a VRRPv2 advert_int to whole seconds (0.5 -> 1, 1.4 ->
// 1, 300 -> 255) and keeps VRRPv3's in 10 ms steps up to 40.95 s
// (vrrp_complete_instance). The old importer wrote 500ms for version 2: the
// output did not load ("expected whole seconds from 1s to 255s for version
// 2") and the import failed on a file keepalived runs.
BOOST_AUTO_TEST_CASE(importer_keepalived_advert_int_as_keepalived_rounds_it) {
  auto k = import_keepalived(ka_instance("A", 1, "  advert_int 0.5\n") + ka_instance("B", 2, "  advert_int 300\n") +
                             ka_instance("C", 3, "  advert_int 1.4\n") + ka_instance("D", 4, "  advert_int 2\n") +
                             ka_instance("E", 5, "  version 3\n  advert_int 0.125\n") +
                             ka_instance("F", 6, "  version 3\n  advert_int 50\n") +
                             ka_instance("G", 7, "  version 3\n  advert_int 0.05\n"));
  BOOST_REQUIRE_EQUAL(k.loaded.vrrp.size(), 7u);
  BOOST_TEST(k.loaded.vrrp[0].advert_int.count() == 1000);
  BOOST_TEST(k.loaded.vrrp[1].advert_int.count() == 255000);
  BOOST_TEST(k.loaded.vrrp[2].advert_int.count() == 1000);
  BOOST_TEST(k.loaded.vrrp[3].advert_int.count() == 2000);
  BOOST_TEST(k.loaded.vrrp[4].advert_int.count() == 130);
  BOOST_TEST(k.loaded.vrrp[5].advert_int.count() == 40950);
  BOOST_TEST(k.loaded.vrrp[6].advert_int.count() == 50);
  BOOST_TEST(has(k.notes, "k.conf:4: advert_int 0.5 is not a VRRPv2 interval: keepalived rounds it"));
  BOOST_TEST(!has(k.notes, "advert_int 2 "));
}

// `bind ipv6@:5001` (or tcp6@, or ipv6@*:5001) listens on IPv6's any-address
// in HAProxy. The old importer wrote 0.0.0.0:5001 (the prefix dropped, the
// empty host read as IPv4's any-address): IPv6 clients were refused after the
// migration.
BOOST_AUTO_TEST_CASE(importer_haproxy_bind_ipv6_prefix_keeps_the_family) {
  auto h = import_haproxy(
      "defaults\n  mode tcp\n  timeout connect 2s\n"
      "listen a\n  bind ipv6@:5001\n  server n1 10.0.0.1:5432 check\n"
      "listen b\n  bind tcp6@*:5002\n  server n1 10.0.0.1:5432 check\n"
      "listen c\n  bind ipv4@:5003\n  server n1 10.0.0.1:5432 check\n"
      "listen d\n  bind :5004\n  server n1 10.0.0.1:5432 check\n");
  BOOST_REQUIRE_EQUAL(h.loaded.proxies.size(), 4u);
  BOOST_TEST(h.loaded.proxies[0].listen.host == "::");
  BOOST_TEST(h.loaded.proxies[0].listen.port == 5001);
  BOOST_TEST(h.loaded.proxies[1].listen.host == "::");
  BOOST_TEST(h.loaded.proxies[2].listen.host == "0.0.0.0");
  BOOST_TEST(h.loaded.proxies[3].listen.host == "0.0.0.0");
}

// A `backup` server is used by HAProxy only when no other server is up.
// vipproxy has none: the server is listed last, which keeps that meaning
// with balance first only. With roundrobin/leastconn the old note still said
// "with balance first it is used only when the others are not eligible",
// while the primary listed as backup of a replica pool took its share of the
// read traffic all the time. The note now says what happens.
BOOST_AUTO_TEST_CASE(importer_haproxy_backup_note_follows_the_balance) {
  auto h = import_haproxy(
      "defaults\n  mode tcp\n  timeout connect 2s\n"
      "listen ro\n  bind *:5001\n  balance roundrobin\n"
      "  server r1 10.0.0.2:5432 check\n  server p 10.0.0.1:5432 check backup\n"
      "listen rw\n  bind *:5000\n  balance first\n"
      "  server a 10.0.0.1:5432 check\n  server b 10.0.0.2:5432 check backup\n");
  BOOST_REQUIRE_EQUAL(h.loaded.proxies.size(), 2u);
  BOOST_TEST(h.loaded.proxies[0].backends.back().name == "p");
  BOOST_TEST(has(h.notes, "h.cfg:8: 'backup' not translated: vipproxy has no backup servers; with balance roundrobin p "
                          "gets its share of clients at all times"));
  BOOST_TEST(!has(h.notes, "h.cfg:8: 'backup' not translated: vipproxy has no backup servers; p is listed last"));
  BOOST_TEST(has(h.notes, "h.cfg:13: 'backup' not translated: vipproxy has no backup servers; b is listed last, so with "
                          "balance first"));
}

// A directory given for a file (`--haproxy /etc/haproxy`) opened as a stream
// and read as nothing: the old importer said "the generated configuration
// does not load ... the file is empty". Now: cannot read, it is a directory.
BOOST_AUTO_TEST_CASE(importer_cli_directory_is_not_a_file) {
  auto dir = std::filesystem::temp_directory_path();
  auto r = cli({"--haproxy", dir.string()});
  BOOST_TEST(r.rc == 1);
  BOOST_TEST(has(r.err, dir.string() + ": cannot read the file: it is a directory"), r.err);
  BOOST_TEST(!has(r.err, "does not load"), r.err);
  BOOST_TEST(r.out.empty());
}

// HAProxy expands "$NAME", "${NAME}" and "${NAME-default}" inside double
// quotes from its environment (configuration manual section 2.3). The old
// importer kept the text: `server pg1 "${PG1}":5432` was dropped as "needs an
// IP address or a DNS name", `bind "*:${PGPORT}"` as "expected one port",
// and `timeout connect "${T}"` failed the whole import as not a time. Now the
// variable is read from the environment given (the CLI's own), each use is
// reported, a default applies when unset, and an unset variable without one
// is an error naming the line. Single quotes and comments expand nothing.
BOOST_AUTO_TEST_CASE(importer_haproxy_environment_variables) {
  hp::Env env = [](const std::string& n) -> std::optional<std::string> {
    if (n == "PG1") return "10.0.0.1";
    if (n == "PGPORT") return "5000";
    return std::nullopt;
  };
  std::string text =
      "defaults\n  mode tcp\n  timeout connect \"${T-3s}\"\n"
      "listen pg\n  bind \"*:${PGPORT}\"\n  # server x \"${UNSET}\":1\n"
      "  server pg1 \"${PG1}\":5432 check\n  server pg2 \"$PG1\"0:5432 check\n  server pg3 '${PG1}':5432 check\n";
  auto h = hp::parse(text, "h.cfg", env);
  importer::Options o;
  o.haproxy_file = "h.cfg";
  auto r = importer::convert(&h, nullptr, o);
  std::string notes;
  for (const auto& n : r.notes) notes += n.to_string() + "\n";
  BOOST_TEST_INFO(r.yaml << notes);
  BOOST_REQUIRE(r.load_error.empty());
  auto c = cfg::load_string(r.yaml, "t.yaml");
  BOOST_REQUIRE_EQUAL(c.proxies.size(), 1u);
  BOOST_TEST(c.proxies[0].listen.port == 5000);
  BOOST_TEST(c.proxies[0].connect_timeout.count() == 3000);
  BOOST_REQUIRE_EQUAL(c.proxies[0].backends.size(), 2u);  // pg3's single-quoted '${PG1}' is not expanded
  BOOST_TEST(c.proxies[0].backends[0].address.host == "10.0.0.1");
  BOOST_TEST(c.proxies[0].backends[1].address.host == "10.0.0.10");
  BOOST_TEST(has(notes, "h.cfg:7: environment variable ${PG1} read as '10.0.0.1' (from the importer's environment"));
  BOOST_TEST(has(notes, "h.cfg:3: environment variable ${T} read as '3s' (the default"));

  auto e = parse_error([&] { hp::parse("listen a\n  bind \"*:${NOPE}\"\n", "h.cfg", env); });
  BOOST_TEST(e.line() == 2);
  BOOST_TEST(has(e.reason(), "environment variable 'NOPE' is not set"));
  // Without an environment, nothing is set.
  BOOST_TEST(parse_error([&] { hp::parse(text, "h.cfg"); }).line() == 5);
}

// What decides which server is eligible must not be lost on the way. Old
// Patroni layouts check with `option tcp-check` + `tcp-check send GET
// /master...` + `tcp-check expect string ...`, or `option httpchk GET
// /patroni` + `http-check expect string "role":"master"` (every node answers
// /patroni with 200). The old importer wrote a plain TCP connect check (or
// status 200 on /patroni) with a "not translated" note among many: every
// node passed, and with the default roundrobin clients went to replicas.
// Now a role rule becomes expect_role: primary, and anything else the
// importer cannot express fails the import.
BOOST_AUTO_TEST_CASE(importer_haproxy_check_rules_that_pick_the_primary) {
  auto role = hp::parse(
      "defaults\n  mode tcp\n  timeout connect 2s\n"
      "listen pg\n  bind *:5000\n  option httpchk GET /patroni\n  http-check expect string \"role\":\\ \"master\"\n"
      "  server n1 10.0.0.1:5432 check port 8008\n",
      "h.cfg");
  importer::Options o;
  o.haproxy_file = "h.cfg";
  auto r = importer::convert(&role, nullptr, o);
  BOOST_TEST(r.refused.empty());
  BOOST_REQUIRE(r.load_error.empty());
  auto c = cfg::load_string(r.yaml, "t.yaml");
  BOOST_TEST((c.proxies.at(0).check.expect_role == cfg::ExpectRole::primary));
  BOOST_TEST(c.proxies.at(0).check.path == "/patroni");

  auto other = hp::parse(
      "listen pg\n  mode tcp\n  bind *:5000\n  option httpchk GET /health\n  http-check expect string OK\n"
      "  server n1 10.0.0.1:5432 check port 8008\n",
      "h.cfg");
  auto r2 = importer::convert(&other, nullptr, o);
  BOOST_REQUIRE_EQUAL(r2.refused.size(), 1u);
  BOOST_TEST(r2.refused[0].to_string().rfind("h.cfg:5: 'http-check expect string OK' cannot be translated", 0) == 0,
             r2.refused[0].to_string());

  auto tcp = hp::parse(
      "listen pg\n  mode tcp\n  bind *:5000\n  option tcp-check\n  tcp-check connect port 8008\n"
      "  tcp-check send GET\\ /master\\ HTTP/1.0\\r\\n\\r\\n\n  tcp-check expect string HTTP/1.1\\ 200\n"
      "  server n1 10.0.0.1:5432 check\n",
      "h.cfg");
  auto r3 = importer::convert(&tcp, nullptr, o);
  BOOST_REQUIRE_EQUAL(r3.refused.size(), 1u);
  BOOST_TEST(r3.refused[0].to_string().rfind("h.cfg:6: 'tcp-check send GET /master", 0) == 0, r3.refused[0].to_string());

  // A plain `option tcp-check` (connect only) is still a TCP check, no error.
  auto plain = hp::parse("listen pg\n  mode tcp\n  bind *:5000\n  option tcp-check\n  server n1 10.0.0.1:5432 check\n",
                         "h.cfg");
  BOOST_TEST(importer::convert(&plain, nullptr, o).refused.empty());
}

// keepalived's mcast_src_ip and unicast_src_ip are one setting
// (vrrp_srcip_handler): the advert source, which is also the address the
// election's tie-break compares at equal priority. vipproxy's unicast_src_ip
// is the source of every advert, multicast too. The old importer dropped
// mcast_src_ip ("vipproxy sends multicast adverts from the interface's
// address"): adverts left from another address than keepalived's.
BOOST_AUTO_TEST_CASE(importer_keepalived_mcast_src_ip_is_the_advert_source) {
  auto k = import_keepalived(ka_instance("M", 1, "  mcast_src_ip 10.0.0.20\n"));
  BOOST_TEST(k.loaded.vrrp.at(0).unicast_src_ip == "10.0.0.20");
  BOOST_TEST(!k.loaded.vrrp.at(0).unicast);
  BOOST_TEST(has(k.notes, "k.conf:4: mcast_src_ip 10.0.0.20 written as unicast_src_ip"));
  BOOST_TEST(!has(k.notes, "not translated"));
}

// HAProxy keeps a time of 0 as "not set" (no limit; check falls back to inter,
// queue to timeout connect). The old importer wrote `timeout connect 0` as
// connect_timeout 1ms and `timeout check 0` as check.timeout 1ms (every
// connect and every check failed: no backend ever eligible) and `timeout
// queue 0` as queue_timeout 0s ("refuse at once"). Now 0 is reported and
// handled as absent.
BOOST_AUTO_TEST_CASE(importer_haproxy_timeout_zero_is_not_set) {
  auto h = import_haproxy(
      "defaults\n  mode tcp\n  timeout connect 0\n  timeout check 0\n  timeout queue 0\n"
      "listen pg\n  bind *:5000\n  server n1 10.0.0.1:5432 check\n");
  const auto& p = h.loaded.proxies.at(0);
  BOOST_TEST(p.connect_timeout.count() == 5000);
  BOOST_TEST(p.check.timeout.count() == 1000);
  BOOST_TEST(p.queue_timeout.count() == 10000);  // vipproxy's default, as if absent
  BOOST_TEST(has(h.notes, "h.cfg:3: 'timeout connect 0' is HAProxy's \"not set\""));
  BOOST_TEST(has(h.notes, "h.cfg:4: 'timeout check 0'"));
  BOOST_TEST(has(h.notes, "h.cfg:5: 'timeout queue 0'"));
}

// ---------------------------------------------------------------- review: importer2

// HAProxy (configuration.txt, "timeout queue"): "If unspecified, the same
// value as the backend's connection timeout ("timeout connect") is used". The
// old importer left vipproxy's default 10s: a site with `timeout connect 3s`
// and no `timeout queue` had its clients wait 10s for a backend during a
// failover where HAProxy gave up after 3s. Now queue_timeout is the connect
// timeout, reported; with neither set (HAProxy: no limit) the 10s default
// stays.
BOOST_AUTO_TEST_CASE(importer_haproxy_queue_timeout_falls_back_to_connect) {
  auto h = import_haproxy(
      "defaults\n  mode tcp\n  timeout connect 3s\n"
      "listen pg\n  bind *:5000\n  server n1 10.0.0.1:5432 check\n"
      "listen pg2\n  bind *:5001\n  timeout queue 7s\n  server n1 10.0.0.1:5432 check\n");
  BOOST_TEST(h.loaded.proxies.at(0).queue_timeout.count() == 3000);
  BOOST_TEST(h.loaded.proxies.at(1).queue_timeout.count() == 7000);
  BOOST_TEST(has(h.notes, "h.cfg:4: no 'timeout queue' for pg: HAProxy uses 'timeout connect' (3s) for the queue"));
  BOOST_TEST(!has(h.notes, "no 'timeout queue' for pg2"));
}

// keepalived 2.x (vrrp_parser.c vrrp_vscript_script_handler ->
// set_script_params_array) runs only the first word after `script`, a
// quoted string being one word: an unquoted `script /usr/local/bin/chk_pg
// --port 5432` runs chk_pg without its arguments. The old importer kept
// the whole line, so the imported track script ran something keepalived
// never ran (and passed or failed differently). Now the command is the
// first word, the dropped words are named in a note with the line.
BOOST_AUTO_TEST_CASE(importer_keepalived_unquoted_script_runs_its_first_word) {
  auto k = import_keepalived(
      "vrrp_script chk_pg {\n  script /usr/local/bin/chk_pg --port 5432   # the check\n  weight -20\n}\n"
      "vrrp_script chk_q {\n  script \"/usr/local/bin/chk_pg --port 5433\"\n}\n"
      "vrrp_script chk_s {\n  script '/bin/sh -c \"exit 0\"'\n}\n" +
      ka_instance("V", 1, "  track_script {\n    chk_pg\n    chk_q\n    chk_s\n  }\n"));
  const auto& scripts = k.loaded.vrrp.at(0).track.scripts;
  BOOST_REQUIRE_EQUAL(scripts.size(), 3u);
  BOOST_TEST(scripts[0].command == "/usr/local/bin/chk_pg");
  BOOST_TEST(scripts[1].command == "/usr/local/bin/chk_pg --port 5433");
  BOOST_TEST(scripts[2].command == "/bin/sh -c \"exit 0\"");
  BOOST_TEST(has(k.notes, "k.conf:2: 'script /usr/local/bin/chk_pg --port 5432' in vrrp_script chk_pg: keepalived "
                          "runs only '/usr/local/bin/chk_pg'"));
  BOOST_TEST(!has(k.notes, "k.conf:6: 'script"));
  BOOST_TEST(!has(k.notes, "k.conf:9: 'script"));
}

// The same for a check of HAProxy: `script killall -0 haproxy` unquoted ran
// `killall` alone under keepalived. Its purpose (the words keepalived
// dropped name haproxy) still makes it the proxy tracking, and the note
// names the line.
BOOST_AUTO_TEST_CASE(importer_keepalived_unquoted_haproxy_script_is_still_recognised) {
  importer::Options o;
  o.haproxy_file = "h.cfg";
  o.keepalived_file = "k.conf";
  auto h = hp::parse("listen pg\n  mode tcp\n  bind *:5000\n  timeout connect 1s\n  server n1 10.0.0.1:5432 check\n",
                     o.haproxy_file);
  auto k = ka::parse("vrrp_script chk {\n  script killall -0 haproxy\n  weight -30\n}\n" +
                         ka_instance("V", 1, "  track_script {\n    chk\n  }\n"),
                     o.keepalived_file);
  BOOST_TEST(k.scripts.at(0).script->value == "killall");
  BOOST_TEST(k.scripts.at(0).script_ignored == "-0 haproxy");
  auto r = convert_and_load(&h, &k, o);
  const auto& t = r.loaded.vrrp.at(0).track;
  BOOST_TEST(t.scripts.empty());
  BOOST_REQUIRE_EQUAL(t.proxies.size(), 1u);
  BOOST_TEST(t.proxies[0].weight == -30);
  BOOST_TEST(has(r.notes, "k.conf:2: 'script killall -0 haproxy' in vrrp_script chk: keepalived runs only 'killall'"));
}

// keepalived's virtual_ipaddress_excluded: addresses added and removed with
// the state like the others but left out of the adverts. The old importer
// reported the block as "no equivalent" and exited 0: after the migration
// the MASTER no longer took these addresses, and clients using them lost
// the service. vipproxy lists every address of an instance in its adverts,
// so the same-family ones are written with the others (they follow the
// state) and the import is refused with what to do: a keepalived peer
// ignores adverts with another address list (and vipproxy the peer's), so
// a rolling migration would leave both nodes MASTER. An excluded address
// of the other family cannot be in the instance at all: refused, named.
BOOST_AUTO_TEST_CASE(importer_keepalived_excluded_addresses_are_written_and_refused) {
  const std::string text = ka_instance("X", 1,
                                       "  virtual_ipaddress_excluded {\n    10.0.0.50/24 dev eth1\n"
                                       "    10.0.0.51\n    fd00::51/64\n  }\n");
  auto k = ka::parse(text, "k.conf");
  importer::Options o;
  o.keepalived_file = "k.conf";
  auto r = importer::convert(nullptr, &k, o);
  BOOST_TEST_INFO(r.yaml);
  BOOST_TEST(r.load_error.empty(), r.load_error);
  auto loaded = cfg::load_string(r.yaml, "imported.yaml");
  const auto& vips = loaded.vrrp.at(0).virtual_ipaddresses;
  BOOST_REQUIRE_EQUAL(vips.size(), 3u);
  BOOST_TEST(vips[0].address == "10.0.0.1");
  BOOST_TEST(vips[1].address == "10.0.0.50");
  BOOST_TEST(vips[1].prefix_len == 24u);
  BOOST_TEST(vips[1].device == "eth1");
  BOOST_TEST(vips[2].address == "10.0.0.51");
  BOOST_TEST(vips[2].prefix_len == 32u);
  std::string refused;
  for (const auto& n : r.refused) refused += n.to_string() + "\n";
  BOOST_TEST_INFO(refused);
  BOOST_REQUIRE_EQUAL(r.refused.size(), 2u);
  BOOST_TEST(has(refused, "k.conf:7: 'fd00::51' cannot be translated: an excluded address of the other family"));
  BOOST_TEST(has(refused, "k.conf:4: 'virtual_ipaddress_excluded { 10.0.0.50 10.0.0.51 }' cannot be translated"));
  BOOST_TEST(has(refused, "Move them into virtual_ipaddress on every keepalived node"));
  for (const auto& n : r.notes) BOOST_TEST(!has(n.to_string(), "virtual_ipaddress_excluded"), n.to_string());
}

// keepalived reads a notify line with its quote splitter too
// (notify.c notify_script_init: alloc_strvec_quoted, ' and " alike): the
// first word is the command, the next ones user and group. The old
// importer grouped "..." only, so `notify_master '/etc/keepalived/notify.sh
// master'` became the command `'/etc/keepalived/notify.sh` (an unterminated
// quote: /bin/sh failed every time, the hook never ran) and `master'` was
// reported as a user name.
BOOST_AUTO_TEST_CASE(importer_keepalived_single_quoted_notify_is_one_command) {
  auto k = import_keepalived(ka_instance("N", 1,
                                         "  notify_master '/etc/keepalived/notify.sh master'\n"
                                         "  notify_backup \"/etc/keepalived/notify.sh backup\" root\n"));
  const auto& n = k.loaded.vrrp.at(0).notify;
  BOOST_TEST(n.master == "/etc/keepalived/notify.sh master");
  BOOST_TEST(n.backup == "/etc/keepalived/notify.sh backup");
  BOOST_TEST(!has(k.notes, "k.conf:4: 'notify_master"));
  BOOST_TEST(has(k.notes, "k.conf:5: 'notify_backup ... root' not translated"));
}

// keepalived reads a `script` line with escapes (alloc_strvec_quoted_escaped:
// `\"` inside "..." is a quote), a notify line without (alloc_strvec_quoted:
// the backslash stays). `script "/bin/sh -c \"exit 1\""` runs /bin/sh with
// `-c` and `exit 1`; written with the backslashes kept, /bin/sh -c read
// `"exit` as its script (a syntax error: the check failed every time).
BOOST_AUTO_TEST_CASE(importer_keepalived_script_escapes_as_keepalived_reads_them) {
  auto k = import_keepalived("vrrp_script chk {\n  script \"/bin/sh -c \\\"exit 1\\\"\"\n}\n" +
                             ka_instance("E", 1, "  track_script {\n    chk\n  }\n"
                                                 "  notify_master \"/bin/echo a\\ b\"\n"));
  BOOST_REQUIRE_EQUAL(k.loaded.vrrp.at(0).track.scripts.size(), 1u);
  BOOST_TEST(k.loaded.vrrp.at(0).track.scripts[0].command == "/bin/sh -c \"exit 1\"");
  BOOST_TEST(k.loaded.vrrp.at(0).notify.master == "/bin/echo a\\ b");
}

// HAProxy's global crt-base and ca-base: a relative `crt` / `ca-file` is read
// under them (Debian's default haproxy.cfg sets both), an absolute one
// ignores them. Before, the relative path was written as is (the daemon,
// started in /, found no file) and both lines were reported as process
// settings without an equivalent.
BOOST_AUTO_TEST_CASE(importer_haproxy_crt_base_and_ca_base) {
  char tmpl[] = "/tmp/importer_test_base_XXXXXX";
  BOOST_REQUIRE(mkdtemp(tmpl));
  const std::string dir = tmpl;
  const std::string client = dir + "/client.pem";
  std::ofstream(client) << "-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n"
                           "-----BEGIN PRIVATE KEY-----\nMII=\n-----END PRIVATE KEY-----\n";
  auto import = [](const std::string& global, const std::string& server_opts) {
    return import_haproxy("global\n" + global + "listen pg\n  bind *:5000\n  option httpchk GET /primary\n"
                          "  http-check expect status 200\n"
                          "  server n1 10.0.0.1:5432 check port 8008 check-ssl " + server_opts + "\n"
                          "  server n2 10.0.0.2:5432 check port 8008 check-ssl " + server_opts + "\n");
  };
  auto r = import("  ca-base /etc/ssl/certs/\n  crt-base " + dir + "\n", "ca-file ca.pem crt client.pem");
  const auto& tls = r.loaded.proxies.at(0).check.tls;
  BOOST_TEST(tls.cert_file == client);
  BOOST_TEST(tls.key_file == "");  // client.pem, found under crt-base, holds its key
  BOOST_TEST(tls.ca_file == "/etc/ssl/certs/ca.pem");
  const std::string crt_note =
      "h.cfg:8: 'crt client.pem' is read under crt-base " + dir + " (line 3): written as check.tls.cert_file " + client;
  BOOST_TEST(has(r.notes, crt_note), r.notes);
  BOOST_TEST(!has(r.notes, "h.cfg:9: 'crt"), r.notes);  // once, not per server
  BOOST_TEST(has(r.notes, "h.cfg:8: 'ca-file ca.pem' is read under ca-base /etc/ssl/certs/ (line 2): written as "
                          "check.tls.ca_file /etc/ssl/certs/ca.pem"), r.notes);
  BOOST_TEST(!has(r.notes, "not translated"), r.notes);

  // Absolute paths ignore the bases, which are then reported as unused.
  r = import("  ca-base /etc/ssl/certs\n  crt-base /etc/ssl/private\n", "ca-file /srv/ca.pem crt " + client);
  BOOST_TEST(r.loaded.proxies.at(0).check.tls.cert_file == client);
  BOOST_TEST(r.loaded.proxies.at(0).check.tls.ca_file == "/srv/ca.pem");
  BOOST_TEST(has(r.notes, "h.cfg:2: 'ca-base /etc/ssl/certs' not translated: vipproxy writes full paths"), r.notes);
  BOOST_TEST(has(r.notes, "h.cfg:3: 'crt-base /etc/ssl/private' not translated"), r.notes);
  BOOST_TEST(!has(r.notes, "is read under"), r.notes);

  // HAProxy's @system-ca: the system store, vipproxy's default (no ca_file),
  // never read under ca-base.
  r = import("  ca-base /etc/ssl/certs\n", "ca-file @system-ca");
  BOOST_TEST(r.loaded.proxies.at(0).check.tls.enabled);
  BOOST_TEST(r.loaded.proxies.at(0).check.tls.ca_file == "");
  BOOST_TEST(has(r.notes, "'ca-file @system-ca' is the system's CA store: check.tls.ca_file left out"), r.notes);
  BOOST_TEST(!has(r.notes, "/etc/ssl/certs/@system-ca"), r.notes);

  // Relative without a base: written as is, reported.
  r = import("", "ca-file ca.pem crt client.pem");
  BOOST_TEST(r.loaded.proxies.at(0).check.tls.ca_file == "ca.pem");
  BOOST_TEST(has(r.notes, "'ca-file ca.pem' is relative and no global ca-base is set"), r.notes);
  BOOST_TEST(has(r.notes, "'crt client.pem' is relative and no global crt-base is set"), r.notes);

  std::remove(client.c_str());
  ::rmdir(dir.c_str());
}

// `crt PATH` on a server line (HAProxy's client certificate for check-ssl):
// check.tls.cert_file, and PATH.key as key_file when PATH holds no key and
// PATH.key exists where the importer runs (HAProxy's ssl-load-extra-files).
// Before, `crt` was reported as not translated: the imported check had no
// client certificate and a Patroni with verify_client: required failed it.
BOOST_AUTO_TEST_CASE(importer_haproxy_crt_is_the_check_client_certificate) {
  char tmpl[] = "/tmp/importer_test_crt_XXXXXX";
  BOOST_REQUIRE(mkdtemp(tmpl));
  const std::string dir = tmpl;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  const std::string cert = "-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n";
  const std::string key = "-----BEGIN PRIVATE KEY-----\nMII=\n-----END PRIVATE KEY-----\n";
  const std::string both = write("both.pem", cert + key);
  write("both.pem.key", key);  // ignored: both.pem holds its key, as HAProxy does
  const std::string alone = write("alone.pem", cert);
  const std::string alone_key = write("alone.pem.key", key);
  auto import = [](const std::string& server_opts) {
    return import_haproxy("listen pg\n  bind *:5000\n  option httpchk GET /primary\n  http-check expect status 200\n"
                          "  server n1 10.0.0.1:5432 check port 8008 " + server_opts + "\n");
  };
  auto r = import("check-ssl verify none crt " + both);
  BOOST_TEST(r.loaded.proxies.at(0).check.tls.cert_file == both);
  BOOST_TEST(r.loaded.proxies.at(0).check.tls.key_file == "");
  BOOST_TEST(!has(r.notes, "not translated"), r.notes);

  r = import("check-ssl verify none crt " + alone);
  BOOST_TEST(r.loaded.proxies.at(0).check.tls.cert_file == alone);
  BOOST_TEST(r.loaded.proxies.at(0).check.tls.key_file == alone_key);
  BOOST_TEST(has(r.notes, "its key written as check.tls.key_file " + alone_key), r.notes);

  r = import("check-ssl verify none crt /nonexistent/client.pem");
  BOOST_TEST(r.loaded.proxies.at(0).check.tls.cert_file == "/nonexistent/client.pem");
  BOOST_TEST(r.loaded.proxies.at(0).check.tls.key_file == "");
  BOOST_TEST(has(r.notes, "'crt /nonexistent/client.pem' cannot be read here"), r.notes);

  r = import("crt " + both);  // no TLS check: nothing to present it to
  BOOST_TEST(!r.loaded.proxies.at(0).check.tls.enabled);
  BOOST_TEST(has(r.notes, "'crt " + both + "' not translated: no TLS check"), r.notes);

  for (const char* f : {"both.pem", "both.pem.key", "alone.pem", "alone.pem.key"}) std::remove((dir + "/" + f).c_str());
  ::rmdir(dir.c_str());
}
