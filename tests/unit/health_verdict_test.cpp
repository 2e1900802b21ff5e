// health/verdict: what a check's answer means, as tables. classify(): every
// outcome's effect on the backend, whether it shows the node reachable (VRRP
// proxy tracking depends on it) and whether it counts as malformed. judge():
// the status line and Patroni's body against the check rule.
#define BOOST_TEST_MODULE health_verdict
#include <boost/test/unit_test.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "health/verdict.h"

using health::Classification;
using health::Outcome;
using Effect = Classification::Effect;

namespace health {
std::ostream& operator<<(std::ostream& os, Outcome o) { return os << to_string(o); }
std::ostream& operator<<(std::ostream& os, const Classification& c) {
  const char* e = c.effect == Effect::no_evidence ? "no_evidence"
                  : c.effect == Effect::success   ? "success"
                  : c.effect == Effect::failure   ? "failure"
                                                  : "definitive";
  return os << "{" << e << ", reachable " << c.reachable << ", malformed " << c.malformed << "}";
}
}  // namespace health

BOOST_AUTO_TEST_CASE(classify_every_outcome) {
  struct Row {
    Outcome outcome;
    Classification want;
  };
  const std::vector<Row> rows = {
      // No evidence about the backend: its state stays.
      {Outcome::none, {Effect::no_evidence, false, false}},
      {Outcome::local_error, {Effect::no_evidence, false, false}},
      {Outcome::ok, {Effect::success, true, false}},
      // Layer 4: nothing answered; smoothed by `fall`; not reachable, so a
      // VRRP instance tracking the proxy gives the VIP away.
      {Outcome::l4_refused, {Effect::failure, false, false}},
      {Outcome::l4_timeout, {Effect::failure, false, false}},
      {Outcome::l4_error, {Effect::failure, false, false}},
      {Outcome::tls_error, {Effect::failure, false, false}},
      // The node's own answer that it is not primary: definitive, and the
      // node is reachable (a failover in progress, not a cut-off node).
      {Outcome::l7_status, {Effect::definitive, true, false}},
      {Outcome::l7_not_primary, {Effect::definitive, true, false}},
      // A primary whose PostgreSQL is restarting: may be a blip, reachable.
      {Outcome::l7_not_running, {Effect::failure, true, false}},
      // Not valid HTTP: no statement from the node.
      {Outcome::l7_malformed, {Effect::failure, false, true}},
  };
  BOOST_TEST(rows.size() == 11u);  // every value of health::Outcome
  for (const auto& row : rows) {
    health::CheckResult r;
    r.outcome = row.outcome;
    BOOST_TEST_INFO(row.outcome);
    BOOST_TEST(health::classify(r) == row.want);
  }
}

namespace {

const char* kPrimaryRunning = R"({"state": "running", "role": "master", "timeline": 2})";
const char* kReplica = R"({"state": "running", "role": "replica"})";
const char* kCrashed = R"({"state": "crashed", "role": "master"})";

}  // namespace

BOOST_AUTO_TEST_CASE(judge_table) {
  using R = cfg::ExpectRole;
  struct Row {
    const char* what;
    const char* path;
    R role;
    unsigned expect_status, status;
    const char* body;
    bool truncated;
    Outcome want;
    const char* detail_has;
  };
  const std::vector<Row> rows = {
      {"wrong status", "/primary", R::automatic, 200, 503, kReplica, false, Outcome::l7_status, "HTTP 503"},
      {"expected status elsewhere", "/replica", R::automatic, 503, 503, "", false, Outcome::ok, "HTTP 503"},
      {"not a primary endpoint: status alone", "/health", R::automatic, 200, 200, "", false, Outcome::ok, "HTTP 200"},
      {"running primary", "/primary", R::automatic, 200, 200, kPrimaryRunning, false, Outcome::ok, "role master"},
      {"replica behind a 200", "/primary", R::automatic, 200, 200, kReplica, false, Outcome::l7_not_primary, "role replica"},
      {"crashed primary", "/master", R::automatic, 200, 200, kCrashed, false, Outcome::l7_not_running, "crashed"},
      {"auto, not JSON: the status decides", "/primary", R::automatic, 200, 200, "OK", false, Outcome::ok, "HTTP 200"},
      {"primary asked, not JSON", "/primary", R::primary, 200, 200, "OK", false, Outcome::l7_malformed, "HTTP 200,"},
      {"any: body ignored", "/primary", R::any, 200, 200, kReplica, false, Outcome::ok, "HTTP 200"},
      {"primary asked on any path", "/health", R::primary, 200, 200, kReplica, false, Outcome::l7_not_primary,
       "replica"},
  };
  for (const auto& row : rows) {
    BOOST_TEST_CONTEXT(row.what) {
      cfg::Check rule;
      rule.path = row.path;
      rule.expect_role = row.role;
      rule.expect_status = row.expect_status;
      const health::CheckResult r = health::judge(rule, row.status, row.body, row.truncated);
      BOOST_TEST(r.outcome == row.want);
      BOOST_TEST(r.http_status == row.status);
      BOOST_TEST(r.detail.find(row.detail_has) != std::string::npos, r.detail);
    }
  }
}
