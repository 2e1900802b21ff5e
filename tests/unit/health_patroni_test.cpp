// health/patroni: which checks judge Patroni's body, and what the body says,
// from Patroni 3.0.2's real replies captured during a postmaster crash
// (tests/fixtures/patroni/README.md).
#define BOOST_TEST_MODULE health_patroni
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "health/http_reply.h"
#include "health/patroni.h"

using health::RoleVerdict;

namespace {

const std::string kFixtures = std::string(VIPPROXY_SOURCE_DIR) + "/tests/fixtures/patroni/";

// The body of a captured reply, through the very parser the checker uses.
std::string body_of(const std::string& file) {
  std::ifstream f(kFixtures + file, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  health::HttpReplyParser p;
  p.feed(s.str());
  p.finish();
  BOOST_REQUIRE(p.complete());
  BOOST_REQUIRE(p.status() == 200u);
  return p.body();
}

cfg::Check rule(const std::string& path, cfg::ExpectRole role = cfg::ExpectRole::automatic,
                const std::string& method = "OPTIONS") {
  cfg::Check c;
  c.path = path;
  c.expect_role = role;
  c.method = method;
  return c;
}

}  // namespace

BOOST_AUTO_TEST_CASE(auto_judges_patroni_primary_endpoints_only) {
  for (const char* p : {"/primary", "/primary?lag=1MB", "/primary/", "/master", "/read-write"})
    BOOST_TEST(health::judges_primary_role(rule(p)), p);
  for (const char* p : {"/replica", "/leader", "/standby-leader", "/health", "/read-only", "/", "/primaryx",
                        "/sync", "/async", "/x/primary"})
    BOOST_TEST(!health::judges_primary_role(rule(p)), p);
  BOOST_TEST(health::judges_primary_role(rule("/leader", cfg::ExpectRole::primary)));
  BOOST_TEST(!health::judges_primary_role(rule("/primary", cfg::ExpectRole::any)));
  auto tcp = rule("/primary");
  tcp.type = cfg::CheckType::tcp;
  BOOST_TEST(!health::judges_primary_role(tcp));
}

BOOST_AUTO_TEST_CASE(a_judged_check_is_sent_as_get) {
  // Patroni writes only the status line for OPTIONS and HEAD.
  BOOST_TEST(health::method_sent(rule("/primary")) == "GET");
  BOOST_TEST(health::method_sent(rule("/primary", cfg::ExpectRole::automatic, "HEAD")) == "GET");
  BOOST_TEST(health::method_sent(rule("/primary", cfg::ExpectRole::any)) == "OPTIONS");
  BOOST_TEST(health::method_sent(rule("/replica", cfg::ExpectRole::automatic, "head")) == "HEAD");
  BOOST_TEST(health::method_sent(rule("/replica", cfg::ExpectRole::automatic, "Get")) == "GET");
}

BOOST_AUTO_TEST_CASE(the_postmaster_crash_as_patroni_told_it) {
  struct Case {
    const char* file;
    RoleVerdict::Kind kind;
    const char* detail;
  } cases[] = {
      {"primary-200-running-master.http", RoleVerdict::writable, "role master, state running"},
      {"crash-200-unknown-master.http", RoleVerdict::not_running, "role master, state unknown"},
      {"crash-200-crashed-master.http", RoleVerdict::not_running, "role master, state crashed"},
      {"crash-200-starting-replica.http", RoleVerdict::not_primary, "role replica, state starting"},
      {"crash-200-running-replica.http", RoleVerdict::not_primary, "role replica, state running"},
      {"crash-200-running-master-promoted.http", RoleVerdict::writable, "role master, state running"},
  };
  for (const auto& c : cases) {
    const auto v = health::judge_primary_body(body_of(c.file), false);
    BOOST_TEST(v.kind == c.kind, c.file);
    BOOST_TEST(v.detail == c.detail, c.file);
  }
}

BOOST_AUTO_TEST_CASE(other_roles_and_newer_patroni) {
  using K = RoleVerdict::Kind;
  auto kind = [](const char* body) { return health::judge_primary_body(body, false).kind; };
  BOOST_TEST(kind(R"({"state": "running", "role": "primary"})") == K::writable);  // Patroni >= 3.1 says primary
  BOOST_TEST(kind(R"({"role":"master","state":"running","pending_restart":true})") == K::writable);
  BOOST_TEST(kind(R"({"state": "running", "role": "standby_leader"})") == K::not_primary);
  BOOST_TEST(kind(R"({"state": "running", "role": "demoted"})") == K::not_primary);
  BOOST_TEST(kind(R"({"state": "restarting", "role": "master"})") == K::not_running);
  BOOST_TEST(kind(R"({"state": "stopped", "role": "primary"})") == K::not_running);
  BOOST_TEST(kind(R"({"role": "master"})") == K::not_running);  // no state: not shown running
  BOOST_TEST(health::judge_primary_body(R"({"role": "master"})", false).detail == "role master, state absent");
}

BOOST_AUTO_TEST_CASE(bodies_that_are_not_patronis_give_no_verdict) {
  using K = RoleVerdict::Kind;
  struct Case {
    const char* body;
    const char* detail;
  } cases[] = {
      {"", "no body"},
      {"OK", "body is not a JSON object"},
      {"[1,2]", "body is not a JSON object"},
      {R"({"state": "running")", "body is not a JSON object"},
      {R"({"state": "running"})", "no \"role\" in the body"},
      {R"({"role": 1, "state": "running"})", "no \"role\" in the body"},
      {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "body is not a JSON object"},
  };
  for (const auto& c : cases) {
    const auto v = health::judge_primary_body(c.body, false);
    BOOST_TEST(v.kind == K::no_verdict, c.body);
    BOOST_TEST(v.detail == c.detail, c.body);
  }
  const auto t = health::judge_primary_body(R"({"state": "running", "role": "master"})", true);
  BOOST_TEST(t.kind == K::no_verdict);
  BOOST_TEST(t.detail == "body too long to be Patroni's status");
}
