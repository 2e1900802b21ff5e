#include "health/verdict.h"

#include <string>

#include "health/patroni.h"

namespace health {

CheckResult judge(const cfg::Check& rule, unsigned status, std::string_view body, bool body_truncated) {
  const std::string detail = "HTTP " + std::to_string(status);
  if (status != rule.expect_status) return make_result(Outcome::l7_status, detail, status);
  if (!judges_primary_role(rule)) return make_result(Outcome::ok, detail, status);
  const RoleVerdict v = judge_primary_body(body, body_truncated);
  switch (v.kind) {
    case RoleVerdict::writable: return make_result(Outcome::ok, detail + ", " + v.detail, status);
    case RoleVerdict::not_primary: return make_result(Outcome::l7_not_primary, detail + ", " + v.detail, status);
    case RoleVerdict::not_running: return make_result(Outcome::l7_not_running, detail + ", " + v.detail, status);
    case RoleVerdict::no_verdict: break;
  }
  // `auto`: not Patroni's JSON, the status alone decides. `primary` was
  // asked for explicitly: a reply that cannot show it is not good enough.
  if (rule.expect_role == cfg::ExpectRole::primary)
    return make_result(Outcome::l7_malformed, detail + ", " + v.detail, status);
  return make_result(Outcome::ok, detail, status);
}

Classification classify(const CheckResult& r) {
  using E = Classification::Effect;
  switch (r.outcome) {
    case Outcome::none:
    case Outcome::local_error: return {E::no_evidence, false, false};
    case Outcome::ok: return {E::success, true, false};
    case Outcome::l4_refused:
    case Outcome::l4_timeout:
    case Outcome::l4_error:
    case Outcome::tls_error: return {E::failure, false, false};
    // "Not primary": the node said so itself.
    case Outcome::l7_status:
    case Outcome::l7_not_primary: return {E::definitive, true, false};
    // A primary whose PostgreSQL is not running (crashed, restarting) may be
    // back within a check or two: smoothed by `fall`, but the node answered.
    case Outcome::l7_not_running: return {E::failure, true, false};
    // Not valid HTTP (or, with expect_role: primary, not Patroni's JSON):
    // no statement from the node, so neither definitive nor "reachable".
    case Outcome::l7_malformed: return {E::failure, false, true};
  }
  return {E::failure, false, false};
}

}  // namespace health
