// health/patroni_defects: the table of known acknowledged-write-loss defects,
// version parsing, which defects apply to a version and DCS, and the version
// read from Patroni 3.0.2's real replies (tests/fixtures/patroni/).
#define BOOST_TEST_MODULE health_patroni_defects
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "health/http_reply.h"
#include "health/patroni_defects.h"

using health::Dcs;
using health::PatroniVersion;

namespace {

std::string body_of(const std::string& file) {
  std::ifstream f(std::string(VIPPROXY_SOURCE_DIR) + "/tests/fixtures/patroni/" + file, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  health::HttpReplyParser p;
  p.feed(s.str());
  p.finish();
  BOOST_REQUIRE(p.complete());
  return p.body();
}

PatroniVersion v(unsigned a, unsigned b, unsigned c) { return {a, b, c}; }

}  // namespace

BOOST_AUTO_TEST_CASE(parses_versions) {
  struct Case {
    const char* text;
    std::optional<PatroniVersion> want;
  };
  const Case cases[] = {
      {"3.0.2", v(3, 0, 2)},          {"3.0.3", v(3, 0, 3)},       {"4.0.4", v(4, 0, 4)},
      {"2.1.7", v(2, 1, 7)},          {"3.1", v(3, 1, 0)},         {"4.0.0rc1", v(4, 0, 0)},
      {"3.0.2.dev1", v(3, 0, 2)},     {"3.3.10", v(3, 3, 10)},     {"10.20.30", v(10, 20, 30)},
      {"", std::nullopt},             {"3", std::nullopt},         {"v3.0.2", std::nullopt},
      {"3.x", std::nullopt},          {".3.0", std::nullopt},      {"unknown", std::nullopt},
      {"99999999.0.0", std::nullopt},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.text) {
      auto got = health::parse_patroni_version(c.text);
      BOOST_TEST(got.has_value() == c.want.has_value());
      if (got && c.want) BOOST_TEST(health::to_string(*got) == health::to_string(*c.want));
    }
  }
}

BOOST_AUTO_TEST_CASE(version_order) {
  BOOST_TEST((v(3, 0, 2) < v(3, 0, 3)));
  BOOST_TEST((v(2, 9, 9) < v(3, 0, 0)));
  BOOST_TEST((v(3, 0, 10) > v(3, 0, 3)));
  BOOST_TEST((v(3, 0, 3) == v(3, 0, 3)));
}

BOOST_AUTO_TEST_CASE(dcs_names_round_trip) {
  for (Dcs d : {Dcs::etcd, Dcs::etcd3, Dcs::consul, Dcs::zookeeper, Dcs::exhibitor, Dcs::kubernetes, Dcs::raft})
    BOOST_TEST((health::parse_dcs(health::to_string(d)) == d));
  BOOST_TEST((health::parse_dcs("etcd4") == Dcs::unknown));
  BOOST_TEST((health::parse_dcs("") == Dcs::unknown));
}

// The table stays small, sourced and consistent.
BOOST_AUTO_TEST_CASE(table_entries_are_sourced_and_consistent) {
  auto table = health::known_write_loss_defects();
  BOOST_TEST(!table.empty());
  BOOST_TEST(table.size() <= 8u);
  for (const auto& d : table) {
    BOOST_TEST_CONTEXT(d.reference) {
      BOOST_TEST(d.reference.rfind("patroni#", 0) == 0u);
      BOOST_TEST((d.introduced < d.fixed));
      BOOST_TEST((d.dcs != Dcs::unknown));
      BOOST_TEST(!d.what.empty());
    }
  }
}

// Debian 12 ships Patroni 3.0.2 and the guide uses etcd3: the lab's case.
BOOST_AUTO_TEST_CASE(which_versions_and_dcs_match_patroni_2689) {
  struct Case {
    PatroniVersion version;
    Dcs dcs;
    size_t matches;
    bool confirmed;
  };
  const Case cases[] = {
      {v(3, 0, 2), Dcs::etcd3, 1, true},     // Debian 12 + the guide
      {v(3, 0, 2), Dcs::unknown, 1, false},  // the daemon: Patroni's REST API does not name its DCS
      {v(2, 0, 0), Dcs::etcd3, 1, true},     // etcd3 support came with 2.0.0
      {v(2, 1, 4), Dcs::etcd3, 1, true},     // Debian 11's
      {v(3, 0, 3), Dcs::etcd3, 0, false},    // the fix
      {v(3, 0, 4), Dcs::etcd3, 0, false},
      {v(4, 0, 4), Dcs::unknown, 0, false},
      {v(1, 6, 5), Dcs::etcd3, 0, false},    // no etcd3 DCS before 2.0
      {v(3, 0, 2), Dcs::etcd, 0, false},     // the v2 API client compares (test_and_set)
      {v(3, 0, 2), Dcs::consul, 0, false},
      {v(3, 0, 2), Dcs::kubernetes, 0, false},
      {v(3, 0, 2), Dcs::zookeeper, 0, false},
      {v(3, 0, 2), Dcs::raft, 0, false},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(health::to_string(c.version) << " " << health::to_string(c.dcs)) {
      auto m = health::write_loss_defects(c.version, c.dcs);
      BOOST_TEST(m.size() == c.matches);
      if (!m.empty()) {
        BOOST_TEST(m[0].defect->reference == "patroni#2689");
        BOOST_TEST(m[0].dcs_confirmed == c.confirmed);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(describes_the_defect_and_the_fixed_version) {
  auto confirmed = health::write_loss_defects(v(3, 0, 2), Dcs::etcd3);
  BOOST_REQUIRE(confirmed.size() == 1u);
  auto line = health::describe(confirmed[0], v(3, 0, 2));
  BOOST_TEST(line.rfind("Patroni 3.0.2 with etcd3 has patroni#2689: ", 0) == 0u, line);
  BOOST_TEST(line.find("acknowledged") != std::string::npos, line);
  BOOST_TEST(line.find("fixed in Patroni 3.0.3") != std::string::npos, line);

  auto maybe = health::write_loss_defects(v(3, 0, 2), Dcs::unknown);
  BOOST_REQUIRE(maybe.size() == 1u);
  line = health::describe(maybe[0], v(3, 0, 2));
  BOOST_TEST(line.rfind("Patroni 3.0.2 has patroni#2689 if its DCS is etcd3: ", 0) == 0u, line);
}

BOOST_AUTO_TEST_CASE(version_from_real_patroni_replies) {
  for (const char* f : {"primary-200-running-master.http", "crash-200-running-replica.http",
                        "crash-200-crashed-master.http"}) {
    BOOST_TEST_CONTEXT(f) {
      auto ver = health::patroni_version_from_status(body_of(f));
      BOOST_REQUIRE(ver.has_value());
      BOOST_TEST(*ver == "3.0.2");
    }
  }
}

BOOST_AUTO_TEST_CASE(version_from_bad_bodies) {
  const char* bodies[] = {
      "",
      "not json",
      "[]",
      "{}",
      R"({"patroni": "3.0.2"})",
      R"({"patroni": {"scope": "catalog"}})",
      R"({"patroni": {"version": 302}})",
      R"({"patroni": {"version": "3.0.2")",
  };
  for (const char* b : bodies) {
    BOOST_TEST_CONTEXT(b) { BOOST_TEST(!health::patroni_version_from_status(b).has_value()); }
  }
  BOOST_TEST(*health::patroni_version_from_status(R"({"state": "running", "patroni": {"version": "4.0.4", "scope": "x"}})") ==
             "4.0.4");
}

BOOST_AUTO_TEST_CASE(primary_timeline_from_real_patroni_replies) {
  std::string why;
  // A running primary (Patroni 3.0.2 says "master"), and the replica
  // promoted after the crash on the next timeline.
  auto tl = health::primary_timeline_from_status(body_of("primary-200-running-master.http"), why);
  BOOST_REQUIRE(tl.has_value());
  BOOST_TEST(*tl == 2u);
  tl = health::primary_timeline_from_status(body_of("crash-200-running-master-promoted.http"), why);
  BOOST_REQUIRE(tl.has_value());
  BOOST_TEST(*tl == 3u);
  // A replica's reply is not a primary's, whatever its timeline.
  BOOST_TEST(!health::primary_timeline_from_status(body_of("crash-200-running-replica.http"), why).has_value());
  BOOST_TEST(why == "role 'replica', not a primary's");
  // The crashed primary: PostgreSQL is down, Patroni reports no timeline.
  BOOST_TEST(!health::primary_timeline_from_status(body_of("crash-200-crashed-master.http"), why).has_value());
  BOOST_TEST(why == "no timeline in the reply");
}

BOOST_AUTO_TEST_CASE(primary_timeline_from_bad_bodies) {
  const std::pair<const char*, const char*> bodies[] = {
      {"", "the reply is not a JSON object"},
      {"this is not HTTP at all", "the reply is not a JSON object"},
      {"[7]", "the reply is not a JSON object"},
      {R"({"role": "primary", "timeline": 7)", "the reply is not a JSON object"},  // cut short
      {"{}", "no role in the reply"},
      {R"({"role": 1, "timeline": 7})", "no role in the reply"},
      {R"({"role": "standby_leader", "timeline": 7})", "role 'standby_leader', not a primary's"},
      {R"({"role": "primary"})", "no timeline in the reply"},
      {R"({"role": "primary", "timeline": "7"})", "timeline \"7\" is not a timeline number"},
      {R"({"role": "primary", "timeline": 7.5})", "timeline 7.5E0 is not a timeline number"},
      {R"({"role": "primary", "timeline": 0})", "timeline 0 is not a timeline number"},
      {R"({"role": "primary", "timeline": -3})", "timeline -3 is not a timeline number"},
      {R"({"role": "primary", "timeline": 4294967296})", "timeline 4294967296 is not a timeline number"},
      {R"({"role": "primary", "timeline": 18446744073709551615})",
       "timeline 18446744073709551615 is not a timeline number"},
      {R"({"role": "primary", "timeline": null})", "timeline null is not a timeline number"},
      {R"([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]])", "the reply is not a JSON object"},
  };
  for (const auto& [body, want] : bodies) {
    BOOST_TEST_CONTEXT(body) {
      std::string why;
      BOOST_TEST(!health::primary_timeline_from_status(body, why).has_value());
      BOOST_TEST(why == want);
    }
  }
  std::string why;
  auto tl = health::primary_timeline_from_status(
      R"({"role": "primary", "timeline": 7, "patroni": {"version": "4.0.4"}})", why);
  BOOST_REQUIRE(tl.has_value());
  BOOST_TEST(*tl == 7u);
  tl = health::primary_timeline_from_status(R"({"role": "master", "timeline": 4294967295})", why);
  BOOST_REQUIRE(tl.has_value());
  BOOST_TEST(*tl == 4294967295u);
}
