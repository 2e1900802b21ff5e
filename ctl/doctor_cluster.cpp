// Pure verdict logic of `vipproxy doctor` about the cluster behind the
// backends: each backend's check, its Patroni version against the known
// write-loss defects (health/patroni_defects.h), the DCS and the etcd
// members. The verdicts about this host and its VRRP: doctor_verdicts.cpp.
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <cstdio>
#include <set>
#include <sstream>

#include "ctl/doctor.h"

namespace ctl {

std::vector<Verdict> patroni_verdicts(const cfg::Config& c, const std::vector<CheckProbe>& probes) {
  std::vector<Verdict> out;
  for (const auto& p : c.proxies) {
    int passing = 0, reached = 0, total = 0;
    for (const auto& pr : probes) {
      if (pr.proxy != p.name) continue;
      ++total;
      std::string check = "check " + p.name + "/" + pr.backend;
      if (!pr.reached) {
        out.push_back({Level::fail, check, pr.target + " unreachable: " + pr.error});
        continue;
      }
      ++reached;
      char lat[32];
      std::snprintf(lat, sizeof lat, "%.1f ms", pr.latency_ms);
      if (p.check.type == cfg::CheckType::tcp) {
        ++passing;
        out.push_back({Level::ok, check, pr.target + " accepts connections (" + lat + ")"});
      } else if (pr.http_status == p.check.expect_status) {
        ++passing;
        out.push_back({Level::ok, check, pr.target + " answers " + std::to_string(pr.http_status) + " (passes, " +
                                             lat + ")"});
      } else {
        out.push_back({Level::ok, check, pr.target + " answers " + std::to_string(pr.http_status) +
                                             " (reachable, does not pass: not " + p.check.path + ", " + lat + ")"});
      }
    }
    if (total == 0) continue;
    std::string check = "proxy " + p.name;
    if (passing == 0)
      out.push_back({reached ? Level::warn : Level::fail, check,
                     "no backend passes its check now: clients wait queue_timeout, then are refused"});
    else if (passing > 1 && p.check.path == "/primary")
      out.push_back({Level::warn, check, std::to_string(passing) + " backends claim to be primary (split brain?)"});
    else
      out.push_back({Level::ok, check, std::to_string(passing) + " of " + std::to_string(total) +
                                           " backend(s) pass the check"});
  }
  return out;
}

std::vector<Verdict> tls_key_verdicts(const cfg::Config& c,
                                      const std::function<std::optional<unsigned>(const std::string&)>& mode_of) {
  std::vector<Verdict> out;
  std::set<std::string> seen;
  for (const auto& p : c.proxies) {
    const auto& tls = p.check.tls;
    if (p.check.type != cfg::CheckType::http || !tls.enabled || tls.cert_file.empty()) continue;
    const std::string& key = tls.key_file.empty() ? tls.cert_file : tls.key_file;
    if (!seen.insert(key).second) continue;
    const auto mode = mode_of(key);
    if (!mode) continue;
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", *mode & 07777u);
    const std::string check = "check key " + p.name;
    if (*mode & 0006u)
      out.push_back({Level::warn, check,
                     key + " (the TLS check's client key) is " + ((*mode & 0002u) ? "writable" : "readable") +
                         " by every user of this host (mode " + octal +
                         "): any of them can present the certificate Patroni trusts; chmod o-rwx (0640 root:vipproxy "
                         "under the packaged unit)"});
    else
      out.push_back({Level::ok, check, key + " (the TLS check's client key) is not readable by other users (mode " +
                                           std::string(octal) + ")"});
  }
  return out;
}

health::Dcs dcs_from_patroni_yaml(const std::string& yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const std::exception&) {
    return health::Dcs::unknown;
  }
  if (!root.IsMap()) return health::Dcs::unknown;
  health::Dcs found = health::Dcs::unknown;
  for (const auto& kv : root) {
    if (!kv.first.IsScalar()) continue;
    health::Dcs d = health::parse_dcs(kv.first.as<std::string>());
    if (d == health::Dcs::unknown) continue;
    if (found != health::Dcs::unknown) return health::Dcs::unknown;  // several: Patroni would refuse it
    found = d;
  }
  return found;
}

std::vector<Verdict> patroni_version_verdicts(const std::vector<PatroniVersionProbe>& probes, const DcsFacts& dcs) {
  std::vector<Verdict> out;
  for (const auto& pr : probes) {
    std::string check = "patroni " + pr.proxy + "/" + pr.backend;
    if (!pr.reached) {
      out.push_back({Level::warn, check, "version unknown: " + pr.target + " unreachable: " + pr.error});
      continue;
    }
    if (pr.http_status != 200) {
      out.push_back({Level::warn, check, "version unknown: " + pr.target + " answered HTTP " +
                                             std::to_string(pr.http_status)});
      continue;
    }
    auto text = health::patroni_version_from_status(pr.body);
    if (!text) {
      out.push_back({Level::warn, check, "version unknown: the reply to " + pr.target + " has no patroni.version"});
      continue;
    }
    auto ver = health::parse_patroni_version(*text);
    if (!ver) {
      out.push_back({Level::warn, check, "Patroni version '" + *text + "' (" + pr.target + ") not understood"});
      continue;
    }
    auto matches = health::write_loss_defects(*ver, dcs.dcs);
    std::string dcs_text = dcs.dcs == health::Dcs::unknown
                               ? "DCS unknown: " + (dcs.error.empty() ? std::string("no patroni.yml read") : dcs.error) +
                                     "; pass --patroni-config FILE"
                               : std::string("DCS ") + health::to_string(dcs.dcs) + " from " + dcs.source;
    if (matches.empty()) {
      out.push_back({Level::ok, check, "Patroni " + *text + " (" + dcs_text + "): no known acknowledged-write-loss "
                                       "defect"});
      continue;
    }
    for (const auto& m : matches) out.push_back({Level::warn, check, health::describe(m, *ver) + " (" + dcs_text + ")"});
  }
  return out;
}

Verdict etcd_verdict(const EtcdFacts& f) {
  std::string check = "etcd members";
  if (f.members) {
    int n = *f.members;
    std::string src = " (asked " + (f.hosts.empty() ? std::string("etcd") : f.hosts.front()) + ")";
    if (n >= 3 && n % 2 == 1) return {Level::ok, check, std::to_string(n) + " members" + src};
    if (n >= 3) return {Level::ok, check, std::to_string(n) + " members" + src + "; an odd number tolerates the same failures with one less"};
    return {Level::warn, check, std::to_string(n) + " member(s)" + src +
                                    ": losing either node loses quorum, Patroni cannot fail over and the primary "
                                    "demotes itself; add a third member (e.g. on the Director host)"};
  }
  if (!f.hosts.empty()) {
    std::string h;
    for (const auto& x : f.hosts) h += (h.empty() ? "" : ", ") + x;
    std::string r = "unknown (members API not reachable: " + f.error + "); " + f.source + " lists " +
                    std::to_string(f.hosts.size()) + " host(s): " + h;
    // Patroni's own list is a good guess at the member count; --etcd is not.
    bool from_patroni = f.source != "--etcd";
    if (from_patroni && f.hosts.size() <= 2)
      r += " — if those are all the members, losing one loses quorum (three are needed to survive one failure)";
    return {Level::warn, check, r};
  }
  return {Level::warn, check, "unknown: " + (f.error.empty() ? "no etcd hosts found" : f.error) +
                                  " (Patroni's REST API does not list etcd members; pass --etcd HOST:PORT or "
                                  "--patroni-config FILE)"};
}

std::vector<std::string> etcd_hosts_from_patroni_yaml(const std::string& yaml_text) {
  std::vector<std::string> out;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const std::exception&) {
    return out;
  }
  if (!root.IsMap()) return out;
  auto add_csv = [&](const std::string& s) {
    std::string cur;
    std::istringstream in(s);
    while (std::getline(in, cur, ',')) {
      while (!cur.empty() && cur.front() == ' ') cur.erase(cur.begin());
      while (!cur.empty() && cur.back() == ' ') cur.pop_back();
      if (auto p = cur.find("://"); p != std::string::npos) cur = cur.substr(p + 3);
      while (!cur.empty() && cur.back() == '/') cur.pop_back();
      if (!cur.empty()) out.push_back(cur);
    }
  };
  for (const char* sect : {"etcd3", "etcd"}) {
    YAML::Node e = root[sect];
    if (!e || !e.IsMap()) continue;
    for (const char* key : {"hosts", "host", "urls", "url"}) {
      YAML::Node h = e[key];
      if (!h) continue;
      if (h.IsSequence()) {
        for (const auto& x : h)
          if (x.IsScalar()) add_csv(x.as<std::string>());
      } else if (h.IsScalar()) {
        add_csv(h.as<std::string>());
      }
    }
    if (!out.empty()) break;
  }
  return out;
}

std::optional<int> count_etcd_members(const std::string& json_text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(json_text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  if (auto* m = v.as_object().if_contains("members"); m && m->is_array()) return static_cast<int>(m->as_array().size());
  return std::nullopt;
}

}  // namespace ctl
