#include "health/patroni.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cctype>

namespace health {

bool judges_primary_role(const cfg::Check& rule) {
  if (rule.type != cfg::CheckType::http) return false;
  switch (rule.expect_role) {
    case cfg::ExpectRole::primary: return true;
    case cfg::ExpectRole::any: return false;
    case cfg::ExpectRole::automatic: break;
  }
  std::string_view p = rule.path;
  p = p.substr(0, p.find('?'));
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  // Patroni's own routing is by substring; only the exact primary
  // endpoints turn the body check on by default (/leader also answers 200
  // for a standby cluster's leader, which is read-only by design).
  return p == "/primary" || p == "/master" || p == "/read-write";
}

std::string method_sent(const cfg::Check& rule) {
  if (judges_primary_role(rule)) return "GET";
  std::string m = rule.method;
  for (auto& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return m;
}

RoleVerdict judge_primary_body(std::string_view body, bool truncated) {
  RoleVerdict v;
  if (truncated) {
    v.detail = "body too long to be Patroni's status";
    return v;
  }
  boost::system::error_code ec;
  boost::json::parse_options opt;
  opt.max_depth = 16;
  const boost::json::value doc = boost::json::parse(boost::json::string_view(body.data(), body.size()), ec, {}, opt);
  if (ec || !doc.is_object()) {
    v.detail = body.empty() ? "no body" : "body is not a JSON object";
    return v;
  }
  const auto& o = doc.get_object();
  const auto* role = o.if_contains("role");
  const auto* state = o.if_contains("state");
  if (!role || !role->is_string()) {
    v.detail = "no \"role\" in the body";
    return v;
  }
  const std::string r(role->get_string());
  const std::string s = state && state->is_string() ? std::string(state->get_string()) : std::string("absent");
  v.detail = "role " + r + ", state " + s;
  if (r != "master" && r != "primary") {
    v.kind = RoleVerdict::not_primary;
  } else if (s != "running") {
    v.kind = RoleVerdict::not_running;
  } else {
    v.kind = RoleVerdict::writable;
  }
  return v;
}

}  // namespace health
