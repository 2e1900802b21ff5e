// cfg::to_yaml: whatever a Config holds, the loader reads the dump back to
// the same Config, in both key sets (every key, and the importer's migration
// keys). The config of every_key_set() sets every member of every struct to
// something other than its default somewhere, which the members test checks
// generically, so a key added to cfg/config.h but not to this config (and so
// perhaps not to the dump) fails here.
#define BOOST_TEST_MODULE cfg_dump
#include <boost/core/demangle.hpp>
#include <boost/test/unit_test.hpp>
#include <typeinfo>
#include <cstddef>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cfg/dump.h"
#include "cfg/load.h"

using namespace std::chrono_literals;
using cfg::Duration;

namespace {

// ---- members of an aggregate, generically (count, then tie by position)

struct Any {
  template <class T>
  operator T() const;
};

template <class T, class... A>
constexpr std::size_t member_count() {
  if constexpr (requires { T{A{}..., Any{}}; })
    return member_count<T, A..., Any>();
  else
    return sizeof...(A);
}

template <class T>
auto tie_members(const T& x) {
  constexpr std::size_t n = member_count<T>();
  if constexpr (n == 1) {
    const auto& [m0] = x;
    return std::tie(m0);
  } else if constexpr (n == 2) {
    const auto& [m0, m1] = x;
    return std::tie(m0, m1);
  } else if constexpr (n == 3) {
    const auto& [m0, m1, m2] = x;
    return std::tie(m0, m1, m2);
  } else if constexpr (n == 4) {
    const auto& [m0, m1, m2, m3] = x;
    return std::tie(m0, m1, m2, m3);
  } else if constexpr (n == 5) {
    const auto& [m0, m1, m2, m3, m4] = x;
    return std::tie(m0, m1, m2, m3, m4);
  } else if constexpr (n == 6) {
    const auto& [m0, m1, m2, m3, m4, m5] = x;
    return std::tie(m0, m1, m2, m3, m4, m5);
  } else if constexpr (n == 7) {
    const auto& [m0, m1, m2, m3, m4, m5, m6] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6);
  } else if constexpr (n == 8) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7);
  } else if constexpr (n == 9) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8);
  } else if constexpr (n == 10) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9);
  } else if constexpr (n == 11) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10);
  } else if constexpr (n == 12) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11);
  } else if constexpr (n == 13) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12);
  } else if constexpr (n == 14) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13);
  } else if constexpr (n == 15) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14);
  } else if constexpr (n == 16) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15);
  } else if constexpr (n == 17) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16);
  } else if constexpr (n == 18) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17);
  } else if constexpr (n == 19) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17, m18] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17, m18);
  } else if constexpr (n == 20) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17, m18, m19] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17, m18, m19);
  } else if constexpr (n == 21) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17, m18, m19, m20] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17, m18, m19, m20);
  } else if constexpr (n == 22) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17, m18, m19, m20, m21] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17, m18, m19, m20, m21);
  } else if constexpr (n == 23) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17, m18, m19, m20, m21, m22] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17, m18, m19, m20, m21, m22);
  } else if constexpr (n == 24) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17, m18, m19, m20, m21, m22, m23] = x;
    return std::tie(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17, m18, m19, m20, m21, m22, m23);
  } else {
    static_assert(n == 0, "more than 24 members: add cases");
  }
}

// Which members of T were seen different from T{} in at least one value.
template <class T>
struct Coverage {
  std::vector<bool> differs = std::vector<bool>(member_count<T>(), false);
  void see(const T& x) {
    const T d{};
    auto a = tie_members(x);
    auto b = tie_members(d);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((differs[I] = differs[I] || !(std::get<I>(a) == std::get<I>(b))), ...);
    }(std::make_index_sequence<member_count<T>()>{});
  }
  std::vector<std::size_t> never_set() const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < differs.size(); ++i)
      if (!differs[i]) out.push_back(i);
    return out;
  }
};

// ---- a configuration that sets every key

cfg::Config every_key_set() {
  cfg::Config c;
  c.source = "every-key.yaml";
  c.node = "catalog09";
  c.threads = 3;
  c.vrrp_rt_priority = 7;
  c.log_level = "debug";
  c.hard_stop_after = 7s;
  c.admin = {false, {"127.0.0.1", 9405}, "s3cret token"};

  cfg::Proxy p;
  p.name = "postgres";
  p.listen = {"10.1.0.1", 5433};
  p.check.type = cfg::CheckType::http;
  p.check.port = 8009;
  p.check.method = "GET";
  p.check.path = "/read-write";
  p.check.expect_status = 204;
  p.check.interval = 3s;
  p.check.fast_interval = 250ms;
  p.check.timeout = 1500ms;
  p.check.rise = 4;
  p.check.fall = 5;
  p.check.down_on_status = false;
  p.check.expect_role = cfg::ExpectRole::any;
  p.check.tls = {true, false, "/etc/ssl/ca one.pem", "patroni.example.com", "/etc/vipproxy/client.pem", "/etc/vipproxy/client key.pem"};
  p.balance = cfg::Balance::leastconn;
  p.backends = {{"a", {"10.0.0.1", 5432}, 8010}, {"b", {"fd00::2", 5432}, std::nullopt}};
  p.connect_timeout = 2s;
  p.queue_timeout = 0ms;
  p.idle_timeout = 1h;
  p.client_fin_timeout = 30s;
  p.server_fin_timeout = 0ms;
  p.maxconn = 500;
  p.shutdown_sessions_on_down = false;
  p.keepalive = {false, 60s, 5s, 9};
  p.tcp_user_timeout = 0ms;
  p.data_path = cfg::DataPath::copy;
  p.log_sessions = true;
  c.proxies.push_back(p);

  cfg::Proxy r;
  r.name = "replicas";
  r.listen = {"::", 5434};
  r.check.type = cfg::CheckType::tcp;
  r.balance = cfg::Balance::roundrobin;
  r.backends = {{"r1", {"db1.example.com", 5432}, std::nullopt}};
  c.proxies.push_back(r);

  cfg::VrrpInstance v;
  v.name = "VI_1";
  v.interface = "eth0";
  v.state = cfg::VrrpState::master;
  v.virtual_router_id = 51;
  v.priority = 150;
  v.advert_int = 2s;
  v.preempt = false;
  v.preempt_delay = 30s;
  v.auth_type = cfg::AuthType::pass;
  v.auth_password = "secret12";
  v.virtual_ipaddresses = {{"192.168.1.160", 24, "eth1", "eth1:vip", false, "t.yaml:1:1: (not a setting: not dumped)"}, {"192.168.1.161", 32, "", "", false, ""}};
  v.unicast_src_ip = "192.168.1.151";
  v.unicast_peers = {"192.168.1.152", "192.168.1.153"};
  v.unicast = true;
  v.track.proxies = {{"postgres", -50}, {"replicas", 0}};
  v.track.interfaces = {{"eth1", 10}};
  v.track.scripts = {{"chk", "/usr/local/bin/chk --fast \"quoted\"", 5s, 3s, 2, 3, 20, "nobody"},
                     {"chk2", "true", 2s, 2s, 1, 1, 0, ""}};
  v.notify = {"/bin/notify master", "/bin/notify backup", "/bin/notify fault", "/bin/notify stop", "/bin/any", 5s, 3};
  v.garp = {0ms, 3, 60s, 10ms};
  c.vrrp.push_back(v);

  // VRRPv3 instances on the same interface, IPv4 and IPv6.
  auto v3 = [](std::string name, unsigned vrid, Duration advert_int, cfg::VirtualAddress vip) {
    cfg::VrrpInstance i;
    i.name = std::move(name);
    i.interface = "eth0";
    i.virtual_router_id = vrid;
    i.version = 3;
    i.advert_int = advert_int;
    i.virtual_ipaddresses = {std::move(vip)};
    return i;
  };
  c.vrrp.push_back(v3("VI_2", 52, 100ms, {"10.0.0.160", 32, "", "", false, ""}));
  c.vrrp.back().checksum = cfg::ChecksumForm::rfc9568;
  c.vrrp.back().track.proxies = {{"replicas", 0}};
  c.vrrp.push_back(v3("VI_6", 51, 1s, {"fd00::160", 64, "", "", true, ""}));
  c.vrrp.back().unicast_src_ip = "fd00::151";  // a global peer needs it (cfg_test ipv6_unicast_...)
  c.vrrp.back().unicast_peers = {"fd00::152"};
  c.vrrp.back().unicast = true;
  return c;
}

cfg::Config round_trip(const cfg::Config& c, cfg::DumpKeys keys) {
  std::string y = cfg::to_yaml(c, {keys, {"a header comment"}});
  BOOST_TEST_MESSAGE("dump:\n" << y);
  try {
    return cfg::load_string(y, c.source);
  } catch (const cfg::Error& e) {
    BOOST_FAIL("the dump does not load: " << e.what() << "\n" << y);
    throw;
  }
}

template <class T>
void expect_all_members_set(const Coverage<T>& cov) {
  std::string unset;
  for (std::size_t i : cov.never_set()) unset += " #" + std::to_string(i);
  BOOST_TEST_INFO("members of " << boost::core::demangle(typeid(T).name()) << " left at their default everywhere in "
                                << "every_key_set() (by position in cfg/config.h, from 0):" << unset
                                << "; set them there, and write them in cfg/dump.cpp");
  BOOST_TEST(unset.empty());
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_key_set_sets_every_member_somewhere) {
  const cfg::Config c = every_key_set();
  std::tuple<Coverage<cfg::Config>, Coverage<cfg::Admin>, Coverage<cfg::Proxy>, Coverage<cfg::Check>,
             Coverage<cfg::TlsCheck>, Coverage<cfg::TcpKeepalive>, Coverage<cfg::Backend>, Coverage<cfg::VrrpInstance>,
             Coverage<cfg::VirtualAddress>, Coverage<cfg::Track>, Coverage<cfg::TrackProxy>,
             Coverage<cfg::TrackInterface>, Coverage<cfg::TrackScript>, Coverage<cfg::Notify>, Coverage<cfg::Garp>>
      cov;
  auto see = [&](const auto& x) { std::get<Coverage<std::decay_t<decltype(x)>>>(cov).see(x); };
  auto see_all = [&](const auto& list) {
    for (const auto& x : list) see(x);
  };
  see(c);
  see(c.admin);
  for (const auto& p : c.proxies) {
    see(p);
    see(p.check);
    see(p.check.tls);
    see(p.keepalive);
    see_all(p.backends);
  }
  for (const auto& v : c.vrrp) {
    see(v);
    see_all(v.virtual_ipaddresses);
    see(v.track);
    see_all(v.track.proxies);
    see_all(v.track.interfaces);
    see_all(v.track.scripts);
    see(v.notify);
    see(v.garp);
  }
  std::apply([](const auto&... each) { (expect_all_members_set(each), ...); }, cov);
}

BOOST_AUTO_TEST_CASE(every_key_round_trips_in_both_key_sets) {
  const cfg::Config c = every_key_set();
  // The loader itself accepts it as it is (it is a valid configuration).
  BOOST_TEST((round_trip(c, cfg::DumpKeys::all) == c));
  BOOST_TEST((round_trip(c, cfg::DumpKeys::migration) == c));
}

BOOST_AUTO_TEST_CASE(the_keys_the_importer_used_to_drop_are_written) {
  // keepalive, tcp_user_timeout, down_on_status, expect_role and checksum
  // were silently left out of the importer's YAML before cfg::to_yaml.
  const std::string y = cfg::to_yaml(every_key_set(), {cfg::DumpKeys::migration, {}});
  for (const char* key : {"keepalive:", "tcp_user_timeout:", "down_on_status:", "expect_role:", "checksum:"}) {
    BOOST_TEST_INFO(key);
    BOOST_TEST(y.find(key) != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(defaults_round_trip_and_migration_keys_leave_them_out) {
  const cfg::Config c = cfg::load_string(
      "node: n1\n"
      "proxies:\n"
      "  - {name: pg, listen: '*:5433', backends: [{name: a, address: 10.0.0.1:5432}]}\n"
      "vrrp:\n"
      "  - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ipaddresses: [10.0.0.160]}\n",
      "d.yaml");
  BOOST_TEST((round_trip(c, cfg::DumpKeys::all) == c));
  BOOST_TEST((round_trip(c, cfg::DumpKeys::migration) == c));
  const std::string all = cfg::to_yaml(c, {cfg::DumpKeys::all, {}});
  const std::string mig = cfg::to_yaml(c, {cfg::DumpKeys::migration, {}});
  // Every key, defaults too...
  for (const char* key : {"threads: 0", "vrrp_rt_priority: 0", "log_level: info", "hard_stop_after: 5s",
                          "balance: first", "maxconn: 10000",
                          "keepalive:", "tcp_user_timeout: 30s", "down_on_status: true", "expect_role: auto",
                          "queue_timeout: 10s", "garp:", "master_repeat: 5", "authentication:", "type: none"}) {
    BOOST_TEST_INFO(key);
    BOOST_TEST(all.find(key) != std::string::npos);
    BOOST_TEST(mig.find(key) == std::string::npos);
  }
  // ...while the migration keys still spell out the check's timing and the
  // VRRP role, as the importer's readers expect.
  for (const char* key : {"interval: 2s", "timeout: 1s", "rise: 2", "fall: 3", "connect_timeout: 5s",
                          "state: backup", "priority: 100", "advert_int: 1s"}) {
    BOOST_TEST_INFO(key);
    BOOST_TEST(mig.find(key) != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(the_catalog_examples_round_trip) {
  for (const char* f : {"catalog01.yaml", "catalog02.yaml"}) {
    const cfg::Config c = cfg::load_file(std::string(VIPPROXY_SOURCE_DIR) + "/tests/fixtures/config/" + f);
    BOOST_TEST_INFO(f);
    BOOST_TEST((round_trip(c, cfg::DumpKeys::all) == c));
    BOOST_TEST((round_trip(c, cfg::DumpKeys::migration) == c));
  }
}

BOOST_AUTO_TEST_CASE(strings_that_yaml_would_misread_are_quoted) {
  cfg::Config c = every_key_set();
  // Each would read back as something else (a bool, null, a number, a
  // comment, a mapping) if written plain.
  for (const char* s : {"yes", "null", "~", "-x", "a: b", "# c", "", "x'y", "tab\there", "back\\slash", "é", "@x", "a@b"}) {
    c.vrrp[0].notify.any = s;
    BOOST_TEST_INFO("notify.any = '" << s << "'");
    BOOST_TEST((round_trip(c, cfg::DumpKeys::all) == c));
  }
}

BOOST_AUTO_TEST_CASE(duration_text_is_exact_and_reads_back) {
  struct Row {
    Duration d;
    const char* text;
  };
  const Row rows[] = {{0ms, "0s"},     {1ms, "1ms"},         {100ms, "100ms"}, {1500ms, "1500ms"},
                      {2000ms, "2s"}, {90'000ms, "90s"},    {1800000ms, "30m"}, {3600000ms, "1h"},
                      {5400000ms, "90m"}, {86'400'000ms, "24h"}};
  for (const auto& r : rows) {
    BOOST_TEST_INFO(r.text);
    BOOST_TEST(cfg::duration_text(r.d) == r.text);
    Duration back{};
    BOOST_TEST(cfg::parse_duration(r.text, back));
    BOOST_TEST(back.count() == r.d.count());
  }
}
